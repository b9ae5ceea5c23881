//! The function library: one `match` from [`Func`] to its implementation, plus the helpers that
//! evaluate arguments. Arguments are expressions evaluated in the caller's environment, except for
//! the functions that iterate (`where`, `select`, `all`, …), which evaluate them once per item with
//! `$this` and `$index` bound.

mod boundary;
mod collections;
mod conversion;
mod existence;
mod fhir;
mod math;
mod strings;

use super::EvalError;
use super::ast::{Expr, Func};
use super::eval::{Collection, Env, EvalResult, Evaluator, error};
use super::value::Item;

impl<'a> Evaluator<'_, '_, 'a> {
    pub fn call(&self, func: Func, focus: Collection<'a>, args: &'a [Expr], env: &Env<'_, 'a>) -> EvalResult<'a> {
        use Func::*;
        match func {
            Empty | Exists | All | AllTrue | AnyTrue | AllFalse | AnyFalse | SubsetOf | SupersetOf | Count
            | Distinct | IsDistinct | Not => self.existence(func, focus, args, env),
            Where | Select | Repeat | Single | First | Last | Tail | Skip | Take | Intersect | Exclude | Union
            | Combine | Iif | Aggregate | Sort | Trace | Children | Descendants => {
                self.collections(func, focus, args, env)
            }
            ToBoolean | ConvertsToBoolean | ToInteger | ConvertsToInteger | ToDecimal | ConvertsToDecimal
            | ToString | ConvertsToString | ToDate | ConvertsToDate | ToDateTime | ConvertsToDateTime | ToTime
            | ConvertsToTime | ToQuantity | ConvertsToQuantity => self.conversion(func, focus, args, env),
            IndexOf | LastIndexOf | Substring | StartsWith | EndsWith | Contains | Upper | Lower | Replace
            | Matches | MatchesFull | ReplaceMatches | Length | ToChars | Trim | Split | Join | Encode | Decode
            | Escape | Unescape => self.strings(func, focus, args, env),
            Abs | Ceiling | Exp | Floor | Ln | Log | Power | Round | Sqrt | Truncate => {
                self.math(func, focus, args, env)
            }
            Extension | HasExtension | HasValue | GetValue | Resolve | MemberOf | ConformsTo | HtmlChecks | Type
            | Now | TimeOfDay | Today => self.fhir(func, focus, args, env),
            LowBoundary | HighBoundary | Precision | Comparable => self.boundary(func, focus, args, env),
        }
    }

    /// Evaluates argument `index` in the caller's environment.
    fn arg(&self, args: &'a [Expr], index: usize, env: &Env<'_, 'a>) -> EvalResult<'a> {
        match args.get(index) {
            Some(expr) => self.eval(expr, env),
            None => Ok(Vec::new()),
        }
    }

    /// Argument `index` as a single System value, `None` when it is empty.
    fn single_arg(&self, args: &'a [Expr], index: usize, env: &Env<'_, 'a>) -> Result<Option<Item<'a>>, EvalError> {
        let items = self.arg(args, index, env)?;
        self.singleton(&items)
    }

    fn string_arg(&self, args: &'a [Expr], index: usize, env: &Env<'_, 'a>) -> Result<Option<String>, EvalError> {
        match self.single_arg(args, index, env)? {
            None => Ok(None),
            Some(Item::String(s)) => Ok(Some(s.into_owned())),
            Some(other) => Err(error(format!(
                "expected a string argument, found {}",
                other.type_name().1
            ))),
        }
    }

    fn integer_arg(&self, args: &'a [Expr], index: usize, env: &Env<'_, 'a>) -> Result<Option<i64>, EvalError> {
        match self.single_arg(args, index, env)? {
            None => Ok(None),
            Some(Item::Integer(i)) => Ok(Some(i)),
            Some(other) => Err(error(format!(
                "expected an integer argument, found {}",
                other.type_name().1
            ))),
        }
    }

    /// Evaluates `expr` for one item of the focus, with `$this` and `$index` bound to it.
    fn eval_on(&self, item: &Item<'a>, index: usize, expr: &'a Expr, env: &Env<'_, 'a>) -> EvalResult<'a> {
        let inner = Env {
            this: std::slice::from_ref(item),
            index: Some(index),
            total: env.total,
        };
        self.eval(expr, &inner)
    }
}

/// A single boolean item.
fn boolean<'a>(value: bool) -> EvalResult<'a> {
    Ok(vec![Item::Boolean(value)])
}

/// The single item of the focus, as a System value; an error when there are several.
fn only<'a>(focus: &[Item<'a>]) -> Result<Option<Item<'a>>, EvalError> {
    match focus {
        [] => Ok(None),
        [item] => Ok(Some(item.to_system().unwrap_or_else(|| item.clone()))),
        _ => Err(error(format!("expected a single item, found {}", focus.len()))),
    }
}
