//! Binary operators: equality (`=`, `!=`) and equivalence (`~`, `!~`) on items and collections,
//! ordering, arithmetic (numbers, strings, quantities, date/time plus duration), three-valued
//! boolean logic with singleton evaluation, union and membership.

use super::EvalError;
use super::ast::{BinaryOp, Expr};
use super::dates::DateTime;
use super::decimal::Decimal;
use super::eval::{Env, EvalResult, Evaluator, error};
use super::quantity::Quantity;
use super::value::{Item, Node};
use serde_json::Value;
use std::cmp::Ordering;

/// Reduces a collection to a boolean: empty is `None`, one boolean is itself, one other item is
/// `true` (singleton evaluation of collections), and several items are an error.
pub fn singleton_boolean(items: &[Item<'_>]) -> Result<Option<bool>, EvalError> {
    match items {
        [] => Ok(None),
        [item] => Ok(Some(!matches!(item.to_system(), Some(Item::Boolean(false))))),
        _ => Err(error(format!("expected a single boolean, found {} items", items.len()))),
    }
}

/// A string that came from untyped JSON may stand for a date/time (no model told us its type).
fn untyped_string<'a>(item: &Item<'a>) -> Option<String> {
    match item {
        Item::Node(Node {
            value: Some(Value::String(s)),
            type_name: None,
            ..
        }) => Some(s.clone()),
        _ => None,
    }
}

fn coerce_date_like<'a>(raw: &Item<'a>, value: Item<'a>, other: &Item<'a>) -> Item<'a> {
    let Some(text) = untyped_string(raw) else {
        return value;
    };
    let parsed = match other {
        Item::Date(_) => DateTime::parse_date(&text).map(Item::Date),
        Item::DateTime(_) => DateTime::parse_datetime(&text).map(Item::DateTime),
        Item::Time(_) => super::dates::Time::parse(&text).map(Item::Time),
        _ => None,
    };
    parsed.unwrap_or(value)
}

/// The only item of a collection, unconverted; an error when there are several.
fn single<'a>(items: &[Item<'a>]) -> Result<Option<Item<'a>>, EvalError> {
    match items {
        [] => Ok(None),
        [item] => Ok(Some(item.clone())),
        _ => Err(error(format!("expected a single item, found {}", items.len()))),
    }
}

/// An untyped JSON string that reads as a date or date-time, as that (for `birthDate + 1 year`).
fn coerce_untyped_date<'a>(raw: &Item<'a>, value: Item<'a>) -> Item<'a> {
    match untyped_string(raw) {
        Some(text) => DateTime::parse_date(&text)
            .map(Item::Date)
            .or_else(|| DateTime::parse_datetime(&text).map(Item::DateTime))
            .unwrap_or(value),
        None => value,
    }
}

/// The System values of two items, with untyped strings read as dates when compared with dates.
fn system_pair<'a>(a: &Item<'a>, b: &Item<'a>) -> Option<(Item<'a>, Item<'a>)> {
    let (sa, sb) = (a.to_system()?, b.to_system()?);
    let sa2 = coerce_date_like(a, sa, &sb);
    let sb2 = coerce_date_like(b, sb, &sa2);
    Some((sa2, sb2))
}

fn as_decimal(item: &Item<'_>) -> Option<Decimal> {
    match item {
        Item::Integer(i) => Some(Decimal::from_i64(*i)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

fn date_times(a: &Item<'_>, b: &Item<'_>) -> Option<(DateTime, DateTime)> {
    match (a, b) {
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => Some((*x, *y)),
        _ => None,
    }
}

/// Ordering of two System values: `Ok(None)` when incomparable (partial dates, different
/// dimensions), an error when the types cannot be compared at all.
pub fn compare(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, EvalError> {
    let (a, b) = system_pair(a, b).ok_or_else(|| error("cannot compare complex values"))?;
    if let (Some(x), Some(y)) = (as_decimal(&a), as_decimal(&b)) {
        return Ok(Some(x.cmp_value(y)));
    }
    if let Some((x, y)) = date_times(&a, &b) {
        return Ok(x.compare(&y));
    }
    match (&a, &b) {
        (Item::String(x), Item::String(y)) => Ok(Some(x.cmp(y))),
        (Item::Time(x), Item::Time(y)) => Ok(x.compare(y)),
        (Item::Quantity(x), Item::Quantity(y)) => Ok(x.compare(y)),
        (Item::Boolean(x), Item::Boolean(y)) => Ok(Some(x.cmp(y))),
        _ => Err(error(format!(
            "cannot compare {} with {}",
            a.type_name().1,
            b.type_name().1
        ))),
    }
}

/// `=` on two items: `None` when the result is unknown (incomparable dates or quantities).
pub fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && !x.is_primitive()
        && !y.is_primitive()
    {
        return Some(json_equal(x.value?, y.value?, false));
    }
    let Some((sa, sb)) = system_pair(a, b) else {
        return Some(false);
    };
    if let (Some(x), Some(y)) = (as_decimal(&sa), as_decimal(&sb)) {
        return Some(x == y);
    }
    match (&sa, &sb) {
        (Item::Boolean(x), Item::Boolean(y)) => Some(x == y),
        (Item::String(x), Item::String(y)) => Some(x == y),
        (Item::Time(x), Item::Time(y)) => x.compare(y).map(|o| o == Ordering::Equal),
        (Item::Quantity(x), Item::Quantity(y)) => x.equals(y),
        (Item::TypeInfo { .. }, Item::TypeInfo { .. }) => Some(sa.to_string() == sb.to_string()),
        _ => match date_times(&sa, &sb) {
            Some((x, y)) => x.compare(&y).map(|o| o == Ordering::Equal),
            None => Some(false),
        },
    }
}

fn normalize_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// `~` on two items: never unknown.
pub fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && !x.is_primitive()
        && !y.is_primitive()
    {
        return matches!((x.value, y.value), (Some(p), Some(q)) if json_equal(p, q, true));
    }
    let Some((sa, sb)) = system_pair(a, b) else {
        return false;
    };
    if let (Some(x), Some(y)) = (as_decimal(&sa), as_decimal(&sb)) {
        return x.equivalent(y);
    }
    match (&sa, &sb) {
        (Item::String(x), Item::String(y)) => normalize_whitespace(x) == normalize_whitespace(y),
        (Item::Quantity(x), Item::Quantity(y)) => x.equivalent(y),
        (Item::Time(x), Item::Time(y)) => x.compare(y) == Some(Ordering::Equal),
        _ => match date_times(&sa, &sb) {
            Some((x, y)) => x.compare(&y) == Some(Ordering::Equal),
            None => equal(&sa, &sb) == Some(true),
        },
    }
}

/// Structural equality of two JSON trees; numbers compare by value, and with `loose` strings
/// compare as equivalent (case and whitespace insensitive).
fn json_equal(a: &Value, b: &Value, loose: bool) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let significant = |m: &serde_json::Map<String, Value>| m.keys().filter(|k| !(loose && *k == "id")).count();
            significant(x) == significant(y)
                && x.iter()
                    .all(|(k, v)| (loose && k == "id") || y.get(k).is_some_and(|w| json_equal(v, w, loose)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w, loose))
        }
        (Value::Number(x), Value::Number(y)) => {
            match (Decimal::parse(&x.to_string()), Decimal::parse(&y.to_string())) {
                (Some(p), Some(q)) => p == q,
                _ => x == y,
            }
        }
        (Value::String(x), Value::String(y)) if loose => normalize_whitespace(x) == normalize_whitespace(y),
        _ => a == b,
    }
}

/// `=` on collections: item by item in order; empty when either side is empty.
pub fn collections_equal(a: &[Item<'_>], b: &[Item<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len() != b.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (x, y) in a.iter().zip(b) {
        match equal(x, y) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

/// `~` on collections: same size and every item matched by a distinct equivalent one, in any order.
pub fn collections_equivalent(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter()
        .all(|x| match (0..b.len()).find(|&j| !used[j] && equivalent(x, &b[j])) {
            Some(j) => {
                used[j] = true;
                true
            }
            None => false,
        })
}

pub fn contains_item(collection: &[Item<'_>], item: &Item<'_>) -> bool {
    collection.iter().any(|x| equal(x, item) == Some(true))
}

/// Appends the items of `extra` not already in `into`.
pub fn union_into<'a>(into: &mut Vec<Item<'a>>, extra: Vec<Item<'a>>) {
    for item in extra {
        if !contains_item(into, &item) {
            into.push(item);
        }
    }
}

fn arithmetic<'a>(op: BinaryOp, a: Item<'a>, b: Item<'a>) -> Result<Option<Item<'a>>, EvalError> {
    use BinaryOp::*;
    let overflow = || error("arithmetic overflow");
    if let (Item::Integer(x), Item::Integer(y)) = (&a, &b) {
        let (x, y) = (*x, *y);
        return Ok(match op {
            Add => Some(Item::Integer(x.checked_add(y).ok_or_else(overflow)?)),
            Sub => Some(Item::Integer(x.checked_sub(y).ok_or_else(overflow)?)),
            Mul => Some(Item::Integer(x.checked_mul(y).ok_or_else(overflow)?)),
            Div => Decimal::from_i64(x)
                .checked_div(Decimal::from_i64(y))
                .map(Item::Decimal),
            IntDiv => x.checked_div(y).map(Item::Integer),
            Mod => x.checked_rem(y).map(Item::Integer),
            _ => unreachable!("not an arithmetic operator"),
        });
    }
    if let (Some(x), Some(y)) = (as_decimal(&a), as_decimal(&b)) {
        return Ok(match op {
            Add => Some(Item::Decimal(x.checked_add(y).ok_or_else(overflow)?)),
            Sub => Some(Item::Decimal(x.checked_sub(y).ok_or_else(overflow)?)),
            Mul => Some(Item::Decimal(x.checked_mul(y).ok_or_else(overflow)?)),
            Div => x.checked_div(y).map(Item::Decimal),
            IntDiv => x.checked_div_trunc(y).and_then(|d| d.to_i64_exact()).map(Item::Integer),
            Mod => x.checked_rem(y).map(Item::Decimal),
            _ => unreachable!("not an arithmetic operator"),
        });
    }
    let quantity = |q: Option<Quantity>| q.map(|q| Item::Quantity(Box::new(q)));
    let number_as_quantity = |d: Decimal| Quantity::new(d, "1");
    Ok(match (op, a, b) {
        (Add, Item::String(x), Item::String(y)) => Some(Item::string(format!("{x}{y}"))),
        (Add | Sub, Item::Quantity(x), Item::Quantity(y)) => {
            let sign = if op == Add { 1 } else { -1 };
            Some(quantity(x.add(&y, sign)).ok_or_else(|| error("quantities with incompatible units"))?)
        }
        (Mul, Item::Quantity(x), Item::Quantity(y)) => quantity(x.multiply(&y)),
        (Div, Item::Quantity(x), Item::Quantity(y)) => quantity(x.divide(&y)),
        (Mul, Item::Quantity(x), n) | (Mul, n, Item::Quantity(x)) if as_decimal(&n).is_some() => {
            quantity(x.multiply(&number_as_quantity(as_decimal(&n).unwrap_or(Decimal::ONE))))
        }
        (Div, Item::Quantity(x), n) if as_decimal(&n).is_some() => {
            quantity(x.divide(&number_as_quantity(as_decimal(&n).unwrap_or(Decimal::ONE))))
        }
        (Add | Sub, date @ (Item::Date(_) | Item::DateTime(_) | Item::Time(_)), Item::Quantity(q)) => {
            Some(add_duration(date, &q, if op == Add { 1 } else { -1 })?)
        }
        (_, a, b) => {
            return Err(error(format!(
                "{op:?} is not defined for {} and {}",
                a.type_name().1,
                b.type_name().1
            )));
        }
    })
}

/// Date/time plus a calendar duration; the quantity's value is truncated to whole units.
fn add_duration<'a>(date: Item<'a>, q: &Quantity, sign: i64) -> Result<Item<'a>, EvalError> {
    let unit = q
        .calendar_unit()
        .ok_or_else(|| error(format!("'{}' is not a calendar duration", q.unit)))?;
    let amount = q.value.to_i64_trunc().ok_or_else(|| error("duration out of range"))? * sign;
    let out_of_range = || error("date arithmetic out of range");
    Ok(match date {
        Item::Date(d) => Item::Date(d.add(amount, unit).ok_or_else(out_of_range)?),
        Item::DateTime(d) => Item::DateTime(d.add(amount, unit).ok_or_else(out_of_range)?),
        Item::Time(t) => Item::Time(t.add(amount, unit).ok_or_else(out_of_range)?),
        _ => unreachable!("only dates and times reach add_duration"),
    })
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub fn binary(&self, op: BinaryOp, left: &'a Expr, right: &'a Expr, env: &Env<'_, 'a>) -> EvalResult<'a> {
        use BinaryOp::*;
        let boolean = |b: Option<bool>| Ok(b.map(Item::Boolean).into_iter().collect());
        // The logical operators look at the left side first so they can skip the right one.
        if matches!(op, And | Or | Implies) {
            let l = singleton_boolean(&self.eval(left, env)?)?;
            match (op, l) {
                (And, Some(false)) => return boolean(Some(false)),
                (Or, Some(true)) => return boolean(Some(true)),
                (Implies, Some(false)) => return boolean(Some(true)),
                _ => {}
            }
            let r = singleton_boolean(&self.eval(right, env)?)?;
            return boolean(match (op, l, r) {
                (And, _, Some(false)) => Some(false),
                (And, Some(true), Some(true)) => Some(true),
                (Or, _, Some(true)) => Some(true),
                (Or, Some(false), Some(false)) => Some(false),
                (Implies, Some(true), r) => r,
                (Implies, None, Some(true)) => Some(true),
                _ => None,
            });
        }
        let l = self.eval(left, env)?;
        let r = self.eval(right, env)?;
        match op {
            Xor => boolean(match (singleton_boolean(&l)?, singleton_boolean(&r)?) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            }),
            Eq => boolean(collections_equal(&l, &r)),
            Ne => boolean(collections_equal(&l, &r).map(|b| !b)),
            Equiv => boolean(Some(collections_equivalent(&l, &r))),
            NotEquiv => boolean(Some(!collections_equivalent(&l, &r))),
            Union => {
                let mut out = Vec::with_capacity(l.len() + r.len());
                union_into(&mut out, l);
                union_into(&mut out, r);
                Ok(out)
            }
            In | Contains => {
                let (item, collection) = if op == In { (l, r) } else { (r, l) };
                match item.as_slice() {
                    [] => Ok(Vec::new()),
                    [item] => boolean(Some(contains_item(&collection, item))),
                    _ => Err(error("membership needs a single item")),
                }
            }
            Lt | Gt | Le | Ge => {
                // Raw items: compare() needs to know whether a string came from untyped JSON.
                let (Some(a), Some(b)) = (single(&l)?, single(&r)?) else {
                    return Ok(Vec::new());
                };
                boolean(compare(&a, &b)?.map(|o| match op {
                    Lt => o == Ordering::Less,
                    Gt => o == Ordering::Greater,
                    Le => o != Ordering::Greater,
                    _ => o != Ordering::Less,
                }))
            }
            Concat => {
                let text = |items: &[Item<'a>]| -> Result<String, EvalError> {
                    Ok(self.singleton(items)?.map(|i| i.to_string()).unwrap_or_default())
                };
                Ok(vec![Item::string(text(&l)? + &text(&r)?)])
            }
            _ => {
                let (Some(a), Some(b)) = (single(&l)?, single(&r)?) else {
                    return Ok(Vec::new());
                };
                let (a, b) = match (a.to_system(), b.to_system()) {
                    (Some(sa), Some(sb @ Item::Quantity(_))) => (coerce_untyped_date(&a, sa), sb),
                    (Some(sa), Some(sb)) => (sa, sb),
                    _ => return Err(error(format!("{op:?} is not defined for complex values"))),
                };
                Ok(arithmetic(op, a, b)?.into_iter().collect())
            }
        }
    }
}
