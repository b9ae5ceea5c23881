//! The value rules of search.html shared by every parameter type: prefixes, escaping, the
//! precision range of a number, how a prefix relates a searched range or number to a stored one,
//! and the order of sort keys.

use std::cmp::Ordering;

/// One sort key of one resource; `Missing` sorts last in both directions.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Text(String),
    Int(i64),
    Real(f64),
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

pub const PREFIXES: [(&str, Prefix); 9] = [
    ("eq", Prefix::Eq),
    ("ne", Prefix::Ne),
    ("gt", Prefix::Gt),
    ("lt", Prefix::Lt),
    ("ge", Prefix::Ge),
    ("le", Prefix::Le),
    ("sa", Prefix::Sa),
    ("eb", Prefix::Eb),
    ("ap", Prefix::Ap),
];

pub fn split_prefix(value: &str) -> (Prefix, &str) {
    for (text, prefix) in PREFIXES {
        if let Some(rest) = value.strip_prefix(text) {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, value)
}

/// Splits at `separator` where it is not escaped by `\` (search.html#escaping).
pub fn split_escaped(value: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            parts.last_mut().unwrap().push(c);
            if let Some(next) = chars.next() {
                parts.last_mut().unwrap().push(next);
            }
        } else if c == separator {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
}

pub fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// `[low, high)` that a decimal written as `text` stands for (search.html#number: `100` is
/// `[99.5, 100.5)`, `100.00` is `[99.995, 100.005)`): half a unit of its last written digit.
pub fn precision_range(text: &str) -> Option<(f64, f64)> {
    let value: f64 = text.parse().ok()?;
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some((value - half, value + half))
}

#[derive(Debug, Clone, Copy)]
pub struct NumberSearch {
    pub prefix: Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

pub fn number_search(text: &str) -> Result<NumberSearch, String> {
    let (prefix, number) = split_prefix(text);
    let value: f64 = number.parse().map_err(|_| format!("not a number: {text}"))?;
    let (low, high) = precision_range(number).ok_or_else(|| format!("not a number: {text}"))?;
    Ok(NumberSearch {
        prefix,
        value,
        low,
        high,
    })
}

/// search.html#prefix for ranges: the searched range `[low, high)` against the target's
/// `[tl, th)`.
pub fn date_matches(prefix: Prefix, low: i64, high: i64, tl: i64, th: i64, now: i64) -> bool {
    let contained = tl >= low && th <= high;
    match prefix {
        Prefix::Eq => contained,
        Prefix::Ne => !contained,
        Prefix::Gt => th > high,
        Prefix::Lt => tl < low,
        Prefix::Ge => th > high || contained,
        Prefix::Le => tl < low || contained,
        Prefix::Sa => tl >= high,
        Prefix::Eb => th <= low,
        // The recommended approximation: 10% of the gap between now and the date, on each side.
        Prefix::Ap => {
            let gap = ((now as i128 - low as i128).unsigned_abs() / 10) as i64;
            tl < high.saturating_add(gap) && th > low.saturating_sub(gap)
        }
    }
}

/// search.html#number: without a prefix (or with `eq`/`ne`) the search value stands for its
/// precision range; `gt`/`lt`/`ge`/`le` compare with the value exactly ("gt100: values that are
/// greater than exactly 100"); `sa`/`eb` by the prefix table: the search range does not overlap
/// the target and lies below (above) it; `ap` is within 10% of the value. A stored value is taken
/// as the exact number written (the section's examples treat targets as points).
pub fn number_matches(n: &NumberSearch, x: f64) -> bool {
    let in_range = x >= n.low && x < n.high;
    match n.prefix {
        Prefix::Eq => in_range,
        Prefix::Ne => !in_range,
        Prefix::Gt => x > n.value,
        Prefix::Lt => x < n.value,
        Prefix::Ge => x >= n.value,
        Prefix::Le => x <= n.value,
        Prefix::Sa => x >= n.high,
        Prefix::Eb => x < n.low,
        Prefix::Ap => {
            let margin = n.value.abs() / 10.0;
            x >= n.value - margin && x <= n.value + margin
        }
    }
}

pub fn compare_values(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
        (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
        (SortValue::Int(a), SortValue::Int(b)) => a.cmp(b),
        (SortValue::Real(a), SortValue::Real(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// Orders two resources' keys: each key in its direction, a missing key last either way.
pub fn compare_keys(a: &[SortValue], b: &[SortValue], descending: &[bool]) -> Ordering {
    for ((x, y), desc) in a.iter().zip(b).zip(descending) {
        let order = match (x, y) {
            (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
            (SortValue::Missing, _) => Ordering::Greater,
            (_, SortValue::Missing) => Ordering::Less,
            _ if *desc => compare_values(y, x),
            _ => compare_values(x, y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}
