//! Existence functions: `empty`, `exists`, `all`, `allTrue`/`anyTrue`/`allFalse`/`anyFalse`,
//! `subsetOf`, `supersetOf`, `count`, `distinct`, `isDistinct`, and `not`.

use super::{boolean, only};
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::operators::{contains_item, singleton_boolean, union_into};
use crate::fhirpath::value::Item;

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn existence(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        match func {
            Func::Empty => boolean(focus.is_empty()),
            Func::Exists => match args.first() {
                None => boolean(!focus.is_empty()),
                Some(criteria) => {
                    for (i, item) in focus.iter().enumerate() {
                        if singleton_boolean(&self.eval_on(item, i, criteria, env)?)? == Some(true) {
                            return boolean(true);
                        }
                    }
                    boolean(false)
                }
            },
            Func::All => {
                for (i, item) in focus.iter().enumerate() {
                    if singleton_boolean(&self.eval_on(item, i, &args[0], env)?)? != Some(true) {
                        return boolean(false);
                    }
                }
                boolean(true)
            }
            Func::AllTrue | Func::AnyTrue | Func::AllFalse | Func::AnyFalse => {
                let mut values = Vec::with_capacity(focus.len());
                for item in &focus {
                    match item.to_system() {
                        Some(Item::Boolean(b)) => values.push(b),
                        _ => return Err(error(format!("{}() needs booleans", func.name()))),
                    }
                }
                boolean(match func {
                    Func::AllTrue => values.iter().all(|b| *b),
                    Func::AnyTrue => values.iter().any(|b| *b),
                    Func::AllFalse => values.iter().all(|b| !*b),
                    _ => values.iter().any(|b| !*b),
                })
            }
            Func::SubsetOf | Func::SupersetOf => {
                let other = self.arg(args, 0, env)?;
                let (part, whole) = if func == Func::SubsetOf {
                    (&focus, &other)
                } else {
                    (&other, &focus)
                };
                boolean(part.iter().all(|item| contains_item(whole, item)))
            }
            Func::Count => Ok(vec![Item::Integer(focus.len() as i64)]),
            Func::Distinct => {
                let mut out = Vec::with_capacity(focus.len());
                union_into(&mut out, focus);
                Ok(out)
            }
            Func::IsDistinct => {
                let total = focus.len();
                let mut out = Vec::with_capacity(total);
                union_into(&mut out, focus);
                boolean(out.len() == total)
            }
            Func::Not => match only(&focus)? {
                None => Ok(Vec::new()),
                Some(Item::Boolean(b)) => boolean(!b),
                // Singleton evaluation: a single non-boolean item counts as true.
                Some(_) => match singleton_boolean(&focus)? {
                    Some(b) => boolean(!b),
                    None => Ok(Vec::new()),
                },
            },
            _ => unreachable!("not an existence function"),
        }
    }
}
