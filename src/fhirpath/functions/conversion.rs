//! Conversion functions: `toBoolean`, `toInteger`, `toDecimal`, `toString`, `toDate`,
//! `toDateTime`, `toTime`, `toQuantity` and their `convertsTo…` forms, which answer whether the
//! conversion would succeed.

use super::{boolean, only};
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::dates::{DateTime, Precision, Time};
use crate::fhirpath::decimal::Decimal;
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator};
use crate::fhirpath::quantity::Quantity;
use crate::fhirpath::units::calendar_keyword;
use crate::fhirpath::value::Item;

fn to_boolean(item: &Item<'_>) -> Option<bool> {
    match item {
        Item::Boolean(b) => Some(*b),
        Item::Integer(1) => Some(true),
        Item::Integer(0) => Some(false),
        Item::Decimal(d) if *d == Decimal::ONE => Some(true),
        Item::Decimal(d) if d.is_zero() => Some(false),
        Item::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn to_integer<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item {
        Item::Integer(_) => Some(item.clone()),
        Item::Boolean(b) => Some(Item::Integer(*b as i64)),
        Item::String(s) if is_integer_text(s) => s.parse().ok().map(Item::Integer),
        _ => None,
    }
}

fn to_decimal<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item {
        Item::Decimal(_) => Some(item.clone()),
        Item::Integer(i) => Some(Item::Decimal(Decimal::from_i64(*i))),
        Item::Boolean(b) => Some(Item::Decimal(Decimal::new(*b as i128 * 10, 1))),
        Item::String(s) if !s.contains(['e', 'E']) => Decimal::parse(s).map(Item::Decimal),
        _ => None,
    }
}

fn to_date<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item {
        Item::Date(_) => Some(item.clone()),
        Item::DateTime(d) => Some(Item::Date(DateTime {
            precision: d.precision.min(Precision::Day),
            hour: 0,
            minute: 0,
            second: 0,
            millisecond: 0,
            offset: None,
            ..*d
        })),
        Item::String(s) => DateTime::parse_date(s).map(Item::Date),
        _ => None,
    }
}

fn to_datetime<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item {
        Item::DateTime(_) => Some(item.clone()),
        Item::Date(d) => Some(Item::DateTime(*d)),
        Item::String(s) => DateTime::parse_datetime(s).map(Item::DateTime),
        _ => None,
    }
}

fn to_time<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item {
        Item::Time(_) => Some(item.clone()),
        Item::String(s) => Time::parse(s.strip_prefix('T').unwrap_or(s)).map(Item::Time),
        _ => None,
    }
}

/// Parses `number`, `number 'ucum'` or `number calendar-keyword`.
fn parse_quantity(text: &str) -> Option<Quantity> {
    let text = text.trim();
    let (number, unit) = match text.split_once(' ') {
        Some((number, unit)) => (number, Some(unit.trim())),
        None => (text, None),
    };
    let value = Decimal::parse(number).filter(|_| !number.contains(['e', 'E']))?;
    let unit = match unit {
        None => "1".to_owned(),
        Some(u) if u.len() >= 2 && u.starts_with('\'') && u.ends_with('\'') => u[1..u.len() - 1].to_owned(),
        Some(u) if calendar_keyword(u).is_some() => u.to_owned(),
        Some(_) => return None,
    };
    Some(Quantity::new(value, unit))
}

fn to_quantity<'a>(item: &Item<'a>) -> Option<Quantity> {
    match item {
        Item::Quantity(q) => Some((**q).clone()),
        Item::Integer(i) => Some(Quantity::new(Decimal::from_i64(*i), "1")),
        Item::Decimal(d) => Some(Quantity::new(*d, "1")),
        Item::Boolean(b) => Some(Quantity::new(Decimal::new(*b as i128 * 10, 1), "1")),
        Item::String(s) => parse_quantity(s),
        _ => None,
    }
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn conversion(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        let Some(item) = only(&focus)? else {
            return Ok(Vec::new());
        };
        let converted: Option<Item<'a>> = match func {
            Func::ToBoolean | Func::ConvertsToBoolean => to_boolean(&item).map(Item::Boolean),
            Func::ToInteger | Func::ConvertsToInteger => to_integer(&item),
            Func::ToDecimal | Func::ConvertsToDecimal => to_decimal(&item),
            Func::ToString | Func::ConvertsToString => match item {
                Item::Node(_) | Item::TypeInfo { .. } => None,
                other => Some(Item::string(other.to_string())),
            },
            Func::ToDate | Func::ConvertsToDate => to_date(&item),
            Func::ToDateTime | Func::ConvertsToDateTime => to_datetime(&item),
            Func::ToTime | Func::ConvertsToTime => to_time(&item),
            Func::ToQuantity | Func::ConvertsToQuantity => {
                let quantity = to_quantity(&item);
                match (quantity, self.string_arg(args, 0, env)?) {
                    (Some(q), Some(unit)) => Quantity::new(Decimal::ONE, unit.clone())
                        .convert_to_unit_of(&q)
                        .map(|value| Item::Quantity(Box::new(Quantity::new(value, unit)))),
                    (q, _) => q.map(|q| Item::Quantity(Box::new(q))),
                }
            }
            _ => unreachable!("not a conversion function"),
        };
        let asks = matches!(
            func,
            Func::ConvertsToBoolean
                | Func::ConvertsToInteger
                | Func::ConvertsToDecimal
                | Func::ConvertsToString
                | Func::ConvertsToDate
                | Func::ConvertsToDateTime
                | Func::ConvertsToTime
                | Func::ConvertsToQuantity
        );
        if asks {
            boolean(converted.is_some())
        } else {
            Ok(converted.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_strings_need_quoted_ucum_or_calendar_units() {
        assert_eq!(parse_quantity("1 day").unwrap().unit, "day");
        assert_eq!(parse_quantity("1 'wk'").unwrap().unit, "wk");
        assert_eq!(parse_quantity("1.0").unwrap().unit, "1");
        assert!(parse_quantity("1 wk").is_none());
        assert!(parse_quantity("1.a").is_none());
    }
}
