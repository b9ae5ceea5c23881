//! The precision functions of FHIRPath 2.1 that HL7's suite exercises: `lowBoundary`,
//! `highBoundary`, `precision` and `comparable`. A value written as `1.587` stands for anything in
//! [1.5865, 1.5875); a date `2014` for the whole year; a date-time without an offset for every
//! offset from +14:00 to -12:00.

use super::{boolean, only};
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::dates::{DateTime, Precision, Time, days_in_month};
use crate::fhirpath::decimal::Decimal;
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::quantity::Quantity;
use crate::fhirpath::value::{Item, Node};
use serde_json::Value;

const MAX_DECIMAL_PRECISION: i64 = 28;

/// Boundary of a non-negative decimal: half a unit in the last written place away from the value,
/// then padded to `digits` or cut to it (rounded for the high boundary, truncated for the low).
fn magnitude_boundary(value: Decimal, digits: u32, high: bool) -> Option<Decimal> {
    let half = Decimal::new(5, value.scale() + 1);
    let edge = if high {
        value.checked_add(half)?
    } else {
        value.checked_sub(half)?
    };
    if digits >= edge.scale() {
        edge.with_scale_at_least(digits)
    } else if high {
        Some(edge.round(digits))
    } else {
        edge.with_scale_truncated(digits)
    }
}

fn decimal_boundary(value: Decimal, digits: u32, high: bool) -> Option<Decimal> {
    if value.is_negative() {
        magnitude_boundary(value.abs(), digits, !high).map(|d| -d)
    } else {
        magnitude_boundary(value, digits, high)
    }
}

fn date_precision_digits(precision: Precision) -> i64 {
    match precision {
        Precision::Year => 4,
        Precision::Month => 6,
        Precision::Day => 8,
        Precision::Hour => 10,
        Precision::Minute => 12,
        Precision::Second => 14,
        Precision::Millisecond => 17,
    }
}

fn time_precision_digits(precision: Precision) -> i64 {
    date_precision_digits(precision) - 8
}

fn precision_from_digits(digits: i64) -> Option<Precision> {
    Some(match digits {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 => Precision::Second,
        17 => Precision::Millisecond,
        _ => return None,
    })
}

/// Fills the components below the written precision with their lowest or highest values.
fn datetime_boundary(value: &DateTime, target: Precision, high: bool) -> DateTime {
    let mut d = *value;
    // An hour alone is not a FHIR dateTime: it means that hour's first minute.
    if d.precision == Precision::Hour {
        d.precision = Precision::Minute;
    }
    if d.precision < Precision::Month {
        d.month = if high { 12 } else { 1 };
    }
    if d.precision < Precision::Day {
        d.day = if high { days_in_month(d.year, d.month) } else { 1 };
    }
    if d.precision < Precision::Hour {
        d.hour = if high { 23 } else { 0 };
    }
    if d.precision < Precision::Minute {
        d.minute = if high { 59 } else { 0 };
    }
    if d.precision < Precision::Second {
        d.second = if high { 59 } else { 0 };
    }
    if d.precision < Precision::Millisecond {
        d.millisecond = if high { 999 } else { 0 };
    }
    if target >= Precision::Hour && d.offset.is_none() {
        d.offset = Some(if high { -12 * 60 } else { 14 * 60 });
    }
    if target <= Precision::Day {
        d.offset = None;
    }
    d.precision = target;
    d
}

fn time_boundary(value: &Time, target: Precision, high: bool) -> Time {
    let mut t = *value;
    if t.precision < Precision::Minute {
        t.minute = if high { 59 } else { 0 };
    }
    if t.precision < Precision::Second {
        t.second = if high { 59 } else { 0 };
    }
    if t.precision < Precision::Millisecond {
        t.millisecond = if high { 999 } else { 0 };
    }
    t.precision = target;
    t
}

/// Date-like values from untyped JSON strings are read as the richest type they parse as.
fn as_temporal<'a>(item: Item<'a>, raw: &Item<'a>) -> Item<'a> {
    match (&item, raw) {
        (
            Item::String(s),
            Item::Node(Node {
                type_name: None,
                value: Some(Value::String(_)),
                ..
            }),
        ) => {
            if let Some(d) = DateTime::parse_date(s) {
                Item::Date(d)
            } else if let Some(d) = DateTime::parse_datetime(s) {
                Item::DateTime(d)
            } else {
                item
            }
        }
        _ => item,
    }
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn boundary(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        let Some(item) = only(&focus)? else {
            return Ok(Vec::new());
        };
        let item = as_temporal(item, &focus[0]);
        match func {
            Func::Precision => Ok(match &item {
                Item::Decimal(d) => Some(d.precision() as i64),
                Item::Integer(_) => Some(0),
                Item::Date(d) | Item::DateTime(d) => Some(date_precision_digits(d.precision)),
                Item::Time(t) => Some(time_precision_digits(t.precision)),
                _ => None,
            }
            .map(Item::Integer)
            .into_iter()
            .collect()),
            Func::Comparable => match (&item, self.single_arg(args, 0, env)?) {
                (Item::Quantity(a), Some(Item::Quantity(b))) => boolean(a.comparable(&b)),
                (_, None) => Ok(Vec::new()),
                _ => Err(error("comparable() needs quantities")),
            },
            _ => {
                let high = func == Func::HighBoundary;
                let requested = self.integer_arg(args, 0, env)?;
                let result = match item {
                    Item::Integer(_) | Item::Decimal(_) | Item::Quantity(_) => {
                        let digits = requested.unwrap_or(8);
                        if !(0..=MAX_DECIMAL_PRECISION).contains(&digits) {
                            return Ok(Vec::new());
                        }
                        let digits = digits as u32;
                        match item {
                            Item::Integer(i) => decimal_boundary(Decimal::from_i64(i), digits, high).map(Item::Decimal),
                            Item::Decimal(d) => decimal_boundary(d, digits, high).map(Item::Decimal),
                            Item::Quantity(q) => decimal_boundary(q.value, digits, high)
                                .map(|v| Item::Quantity(Box::new(Quantity::new(v, q.unit.clone())))),
                            _ => None,
                        }
                    }
                    Item::Date(d) => precision_from_digits(requested.unwrap_or(8))
                        .filter(|p| *p <= Precision::Day)
                        .map(|p| Item::Date(datetime_boundary(&d, p, high))),
                    Item::DateTime(d) => precision_from_digits(requested.unwrap_or(17))
                        .map(|p| Item::DateTime(datetime_boundary(&d, p, high))),
                    Item::Time(t) => requested
                        .unwrap_or(9)
                        .checked_add(8)
                        .and_then(precision_from_digits)
                        .filter(|p| *p >= Precision::Hour)
                        .map(|p| Item::Time(time_boundary(&t, p, high))),
                    _ => None,
                };
                Ok(result.into_iter().collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn low(value: &str, digits: u32) -> String {
        decimal_boundary(Decimal::parse(value).unwrap(), digits, false)
            .unwrap()
            .to_string()
    }

    fn high(value: &str, digits: u32) -> String {
        decimal_boundary(Decimal::parse(value).unwrap(), digits, true)
            .unwrap()
            .to_string()
    }

    #[test]
    fn decimal_boundaries_widen_by_half_the_last_place() {
        assert_eq!(low("1.587", 8), "1.58650000");
        assert_eq!(low("1.587", 2), "1.58");
        assert_eq!(low("-1.587", 2), "-1.59");
        assert_eq!(low("1.587", 0), "1");
        assert_eq!(low("120", 2), "119.50");
        assert_eq!(high("1.587", 2), "1.59");
        assert_eq!(high("-1.587", 6), "-1.586500");
        assert_eq!(high("0.0034", 1), "0.0");
        assert_eq!(high("1", 0), "2");
    }
}
