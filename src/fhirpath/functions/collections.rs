//! Filtering, projection, subsetting and combining: `where`, `select`, `repeat`, `single`,
//! `first`, `last`, `tail`, `skip`, `take`, `intersect`, `exclude`, `union`, `combine`, plus
//! `iif`, `aggregate`, `sort`, `trace`, `children` and `descendants`.

use super::only;
use crate::fhirpath::ast::{Expr, Func, UnaryOp};
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::operators::{compare, contains_item, equal, singleton_boolean, union_into};
use crate::fhirpath::value::Item;
use std::cmp::Ordering;

/// Identity for `repeat`: the same JSON element, or an equal System value.
fn same_item(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a, b) {
        (Item::Node(x), Item::Node(y)) => {
            let same = |p: Option<&serde_json::Value>, q: Option<&serde_json::Value>| match (p, q) {
                (Some(p), Some(q)) => std::ptr::eq(p, q),
                (None, None) => true,
                _ => false,
            };
            same(x.value, y.value) && same(x.element, y.element)
        }
        (Item::Node(_), _) | (_, Item::Node(_)) => false,
        _ => equal(a, b) == Some(true),
    }
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn collections(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        match func {
            Func::Where => {
                let mut out = Vec::new();
                for (i, item) in focus.iter().enumerate() {
                    if singleton_boolean(&self.eval_on(item, i, &args[0], env)?)? == Some(true) {
                        out.push(item.clone());
                    }
                }
                Ok(out)
            }
            Func::Select => {
                let mut out = Vec::with_capacity(focus.len());
                for (i, item) in focus.iter().enumerate() {
                    out.extend(self.eval_on(item, i, &args[0], env)?);
                }
                Ok(out)
            }
            Func::Repeat => {
                let mut out: Vec<Item<'a>> = Vec::new();
                let mut pending = focus;
                while !pending.is_empty() {
                    let mut next = Vec::new();
                    for (i, item) in pending.iter().enumerate() {
                        for found in self.eval_on(item, i, &args[0], env)? {
                            if !out.iter().any(|seen| same_item(seen, &found)) {
                                out.push(found.clone());
                                next.push(found);
                            }
                        }
                    }
                    pending = next;
                }
                Ok(out)
            }
            Func::Single => match focus.len() {
                0 | 1 => Ok(focus),
                n => Err(error(format!("single() found {n} items"))),
            },
            Func::First => Ok(focus.into_iter().take(1).collect()),
            Func::Last => Ok(focus.into_iter().last().into_iter().collect()),
            Func::Tail => Ok(focus.into_iter().skip(1).collect()),
            Func::Skip | Func::Take => {
                let Some(n) = self.integer_arg(args, 0, env)? else {
                    return Ok(if func == Func::Skip { focus } else { Vec::new() });
                };
                let n = usize::try_from(n).unwrap_or(0);
                Ok(if func == Func::Skip {
                    focus.into_iter().skip(n).collect()
                } else {
                    focus.into_iter().take(n).collect()
                })
            }
            Func::Intersect => {
                let other = self.arg(args, 0, env)?;
                let mut out = Vec::new();
                let common: Vec<Item<'a>> = focus.into_iter().filter(|i| contains_item(&other, i)).collect();
                union_into(&mut out, common);
                Ok(out)
            }
            Func::Exclude => {
                let other = self.arg(args, 0, env)?;
                Ok(focus.into_iter().filter(|i| !contains_item(&other, i)).collect())
            }
            Func::Union => {
                let other = self.arg(args, 0, env)?;
                let mut out = Vec::with_capacity(focus.len() + other.len());
                union_into(&mut out, focus);
                union_into(&mut out, other);
                Ok(out)
            }
            Func::Combine => {
                let mut out = focus;
                out.extend(self.arg(args, 0, env)?);
                Ok(out)
            }
            Func::Iif => {
                if focus.len() > 1 {
                    return Err(error("iif() cannot be applied to a collection"));
                }
                // `$this` inside the arguments is the item iif() was called on.
                let inner = Env {
                    this: &focus,
                    index: env.index,
                    total: env.total,
                };
                let criterion = match only(&self.eval(&args[0], &inner)?)? {
                    None => false,
                    Some(Item::Boolean(b)) => b,
                    Some(_) => return Err(error("the criterion of iif() must be a boolean")),
                };
                match (criterion, args.get(2)) {
                    (true, _) => self.eval(&args[1], &inner),
                    (false, Some(otherwise)) => self.eval(otherwise, &inner),
                    (false, None) => Ok(Vec::new()),
                }
            }
            Func::Aggregate => {
                let mut total = self.arg(args, 1, env)?;
                for (i, item) in focus.iter().enumerate() {
                    let inner = Env {
                        this: std::slice::from_ref(item),
                        index: Some(i),
                        total: Some(&total),
                    };
                    total = self.eval(&args[0], &inner)?;
                }
                Ok(total)
            }
            Func::Sort => self.sort(focus, args, env),
            Func::Trace => {
                let name = self.string_arg(args, 0, env)?.unwrap_or_default();
                if let Some(tracer) = self.ctx.tracer {
                    match args.get(1) {
                        Some(projection) => {
                            let mut projected = Vec::new();
                            for (i, item) in focus.iter().enumerate() {
                                projected.extend(self.eval_on(item, i, projection, env)?);
                            }
                            tracer(&name, &projected);
                        }
                        None => tracer(&name, &focus),
                    }
                }
                Ok(focus)
            }
            Func::Children | Func::Descendants => {
                let mut out = Vec::new();
                for item in &focus {
                    if let Item::Node(node) = item {
                        self.children(node, &mut out);
                    }
                }
                if func == Func::Descendants {
                    let mut i = 0;
                    while i < out.len() {
                        if let Item::Node(node) = out[i] {
                            self.children(&node, &mut out);
                        }
                        i += 1;
                    }
                }
                Ok(out)
            }
            _ => unreachable!("not a collection function"),
        }
    }

    /// `sort()` by the items themselves, or by key expressions; a key written `-expr` sorts
    /// descending (for strings too, which cannot be negated).
    fn sort(&self, focus: Collection<'a>, args: &'a [Expr], env: &Env<'_, 'a>) -> EvalResult<'a> {
        let keys: Vec<(&'a Expr, bool)> = args
            .iter()
            .map(|arg| match arg {
                Expr::Unary(UnaryOp::Minus, inner) => (inner.as_ref(), true),
                other => (other, false),
            })
            .collect();
        let mut rows = Vec::with_capacity(focus.len());
        for (i, item) in focus.into_iter().enumerate() {
            let mut row_keys = Vec::with_capacity(keys.len().max(1));
            if keys.is_empty() {
                row_keys.push(item.to_system());
            }
            for (key, _) in &keys {
                row_keys.push(self.singleton(&self.eval_on(&item, i, key, env)?)?);
            }
            rows.push((row_keys, item));
        }
        let mut failure = None;
        rows.sort_by(|(a, _), (b, _)| {
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                let descending = keys.get(k).is_some_and(|(_, d)| *d);
                let order = match (x, y) {
                    (None, None) => Ordering::Equal,
                    // Items without a key sort after those with one.
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) => match compare(x, y) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(e) => {
                            failure = Some(e);
                            Ordering::Equal
                        }
                    },
                };
                let order = if descending { order.reverse() } else { order };
                if order != Ordering::Equal {
                    return order;
                }
            }
            Ordering::Equal
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(rows.into_iter().map(|(_, item)| item).collect()),
        }
    }
}
