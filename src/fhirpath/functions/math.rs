//! Math functions. `abs`, `ceiling`, `floor`, `truncate` and `round` stay exact on decimals;
//! `exp`, `ln`, `log`, `power` and `sqrt` go through `f64` (their results are irrational anyway)
//! and give an empty result where the answer is not a real number.

use super::only;
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::decimal::Decimal;
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::value::Item;

fn number(item: &Item<'_>) -> Option<Decimal> {
    match item {
        Item::Integer(i) => Some(Decimal::from_i64(*i)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

fn from_f64<'a>(value: f64) -> Collection<'a> {
    Decimal::from_f64(value).map(Item::Decimal).into_iter().collect()
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn math(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        let Some(item) = only(&focus)? else {
            return Ok(Vec::new());
        };
        if let (Func::Abs, Item::Quantity(q)) = (func, &item) {
            let mut q = q.clone();
            q.value = q.value.abs();
            return Ok(vec![Item::Quantity(q)]);
        }
        let value = number(&item).ok_or_else(|| error(format!("{}() needs a number", func.name())))?;
        let integer = |d: Decimal| -> EvalResult<'a> { Ok(d.to_i64_exact().map(Item::Integer).into_iter().collect()) };
        match func {
            Func::Abs => Ok(vec![match item {
                Item::Integer(i) => Item::Integer(i.checked_abs().ok_or_else(|| error("overflow"))?),
                _ => Item::Decimal(value.abs()),
            }]),
            Func::Ceiling => integer(value.ceiling()),
            Func::Floor => integer(value.floor()),
            Func::Truncate => integer(value.trunc()),
            Func::Round => {
                let digits = self.integer_arg(args, 0, env)?.unwrap_or(0);
                let digits = u32::try_from(digits).map_err(|_| error("round() needs a non-negative precision"))?;
                Ok(vec![Item::Decimal(value.round(digits))])
            }
            Func::Exp => Ok(from_f64(value.to_f64().exp())),
            Func::Ln => Ok(from_f64(value.to_f64().ln())),
            Func::Sqrt => Ok(from_f64(value.to_f64().sqrt())),
            Func::Log | Func::Power => {
                let Some(other_item) = self.single_arg(args, 0, env)? else {
                    return Ok(Vec::new());
                };
                let other = number(&other_item).ok_or_else(|| error(format!("{}() needs a number", func.name())))?;
                if func == Func::Log {
                    return Ok(from_f64(value.to_f64().log(other.to_f64())));
                }
                // Integer to a non-negative integer power stays an Integer.
                if let (Item::Integer(base), Item::Integer(exponent)) = (&item, &other_item)
                    && let Ok(exponent) = u32::try_from(*exponent)
                {
                    return Ok(base.checked_pow(exponent).map(Item::Integer).into_iter().collect());
                }
                Ok(from_f64(value.to_f64().powf(other.to_f64())))
            }
            _ => unreachable!("not a math function"),
        }
    }
}
