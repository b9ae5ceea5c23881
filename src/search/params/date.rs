//! Date parameters: date, dateTime and instant values as the range their precision denotes
//! (`2020` is the whole year), Periods from start to end (open ends unbounded), and Timings over
//! their outer limits: the span of their events and of `repeat.boundsPeriod` together (the
//! schedule inside those limits does not count, as search.html says).

use super::{IndexTable, SortColumn, SortValueKind, primitive_text};
use crate::fhirpath::Item;
use crate::model::InstantRange;
use crate::search::index_row::IndexValue;
use serde_json::Value;

/// Date rows: the range `[low, high)` in microseconds since the epoch.
pub const TABLE: IndexTable = IndexTable {
    name: "search_date",
    columns: &[("low", "bigint"), ("high", "bigint")],
    leading: 0,
};

/// Ascending by the earliest start of a resource's ranges, descending by the latest end: the
/// extreme of each resource in the direction sorted.
pub const SORT: SortColumn = SortColumn {
    ascending: "low",
    descending: "high",
    kind: SortValueKind::Int,
};

fn range(text: &str) -> Option<(i64, i64)> {
    InstantRange::parse(text)
        .ok()
        .map(|r| (r.start.timestamp_micros(), r.end.timestamp_micros()))
}

/// `[start, end)` of a Period, open ends unbounded; `None` when it has neither.
fn period(object: &serde_json::Map<String, Value>) -> Option<(i64, i64)> {
    let low = object
        .get("start")
        .and_then(Value::as_str)
        .and_then(range)
        .map_or(i64::MIN, |r| r.0);
    let high = object
        .get("end")
        .and_then(Value::as_str)
        .and_then(range)
        .map_or(i64::MAX, |r| r.1);
    (object.contains_key("start") || object.contains_key("end")).then_some((low, high))
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some((object, type_name)) = super::object(item) {
        let bounds = match type_name {
            Some("Period") => period(object),
            Some("Timing") => {
                let mut spans: Vec<(i64, i64)> = object
                    .get("event")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(range)
                    .collect();
                spans.extend(
                    object
                        .get("repeat")
                        .and_then(|r| r.get("boundsPeriod"))
                        .and_then(Value::as_object)
                        .and_then(period),
                );
                let low = spans.iter().map(|e| e.0).min();
                let high = spans.iter().map(|e| e.1).max();
                low.zip(high)
            }
            _ => None,
        };
        if let Some((low, high)) = bounds {
            push(IndexValue::Date { low, high });
        }
        return;
    }
    if let Some((low, high)) = primitive_text(item).as_deref().and_then(range) {
        push(IndexValue::Date { low, high });
    }
}

/// A date search (search.html#date): the value's precision makes it a range `[low, high)`, and the
/// prefix relates that range to the range each index row covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateMatch {
    pub prefix: super::Prefix,
    pub low: i64,
    pub high: i64,
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<DateMatch, super::ParseFailure> {
    if modifier.is_some() {
        return Err(super::ParseFailure::UnsupportedModifier);
    }
    let (prefix, text) = super::Prefix::split(value);
    let (low, high) = range(text).ok_or_else(|| {
        super::ParseFailure::Invalid(
            "expected an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a date such as 2020, 2020-03, \
             2020-03-01 or 2020-03-01T10:00:00Z"
                .into(),
        )
    })?;
    Ok(DateMatch { prefix, low, high })
}

impl DateMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        let (low, high) = (format!("{alias}.low"), format!("{alias}.high"));
        write_range_condition(sql, &low, &high, self.prefix, self.low, self.high);
    }
}

/// The condition relating a target range `[low_col, high_col)` to the searched range `[low, high)`
/// for `prefix`; also used for `_lastUpdated` with a point's range.
pub fn write_range_condition(
    sql: &mut crate::sql::Sql,
    low_col: &str,
    high_col: &str,
    prefix: super::Prefix,
    low: i64,
    high: i64,
) {
    use super::Prefix;
    use crate::sql::SqlValue::Int;
    let contained = |sql: &mut crate::sql::Sql| {
        sql.push("(")
            .push(low_col)
            .push(" >= ")
            .bind(Int(low))
            .push(" AND ")
            .push(high_col)
            .push(" <= ")
            .bind(Int(high))
            .push(")");
    };
    match prefix {
        Prefix::Eq => contained(sql),
        Prefix::Ne => {
            sql.push("NOT ");
            contained(sql);
        }
        // The part of the timeline above (below) the searched range meets the target.
        Prefix::Gt => {
            sql.push(high_col).push(" > ").bind(Int(high));
        }
        Prefix::Lt => {
            sql.push(low_col).push(" < ").bind(Int(low));
        }
        Prefix::Ge => {
            sql.push("(").push(high_col).push(" > ").bind(Int(high)).push(" OR ");
            contained(sql);
            sql.push(")");
        }
        Prefix::Le => {
            sql.push("(").push(low_col).push(" < ").bind(Int(low)).push(" OR ");
            contained(sql);
            sql.push(")");
        }
        Prefix::Sa => {
            sql.push(low_col).push(" >= ").bind(Int(high));
        }
        Prefix::Eb => {
            sql.push(high_col).push(" <= ").bind(Int(low));
        }
        Prefix::Ap => {
            let gap = approximation_gap(low);
            sql.push("(")
                .push(low_col)
                .push(" < ")
                .bind(Int(high.saturating_add(gap)))
                .push(" AND ")
                .push(high_col)
                .push(" > ")
                .bind(Int(low.saturating_sub(gap)))
                .push(")");
        }
    }
}

/// How far `ap` widens a searched range starting at `low` on each side: a tenth of its distance
/// from now, in microseconds.
fn approximation_gap(low: i64) -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    (now.saturating_sub(low).unsigned_abs() / 10).min(i64::MAX as u64) as i64
}

/// The condition on a point in time (`_lastUpdated`, a column of `resource`) for a searched range:
/// the point is a range one microsecond wide. Binds times, so each dialect compares its own column type.
pub fn write_point_condition(sql: &mut crate::sql::Sql, column: &str, m: &DateMatch) {
    use super::Prefix;
    use crate::sql::SqlValue::Time;
    let time = |micros: i64| {
        Time(
            chrono::DateTime::from_timestamp_micros(micros).unwrap_or(if micros < 0 {
                chrono::DateTime::<chrono::Utc>::MIN_UTC
            } else {
                chrono::DateTime::<chrono::Utc>::MAX_UTC
            }),
        )
    };
    let (low, high) = (m.low, m.high);
    let within = |sql: &mut crate::sql::Sql| {
        sql.push("(")
            .push(column)
            .push(" >= ")
            .bind(time(low))
            .push(" AND ")
            .push(column)
            .push(" < ")
            .bind(time(high))
            .push(")");
    };
    match m.prefix {
        Prefix::Eq => within(sql),
        Prefix::Ne => {
            sql.push("NOT ");
            within(sql);
        }
        Prefix::Gt | Prefix::Sa => {
            sql.push(column).push(" >= ").bind(time(high));
        }
        Prefix::Lt | Prefix::Eb => {
            sql.push(column).push(" < ").bind(time(low));
        }
        Prefix::Ge => {
            sql.push(column).push(" >= ").bind(time(low));
        }
        Prefix::Le => {
            sql.push(column).push(" < ").bind(time(high));
        }
        Prefix::Ap => {
            let gap = approximation_gap(low);
            sql.push("(")
                .push(column)
                .push(" >= ")
                .bind(time(low.saturating_sub(gap)))
                .push(" AND ")
                .push(column)
                .push(" < ")
                .bind(time(high.saturating_add(gap)))
                .push(")");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fhirpath::{Item, Node};
    use crate::search::IndexValue;
    use serde_json::json;

    #[test]
    fn a_timing_spans_its_events_and_bounds() {
        let timing = json!({"event": ["2013-02-10"],
            "repeat": {"boundsPeriod": {"start": "2013-02-14", "end": "2013-02-28"}, "frequency": 1, "period": 1, "periodUnit": "d"}});
        let mut out = Vec::new();
        super::extract(&Item::Node(Node::new(&timing, Some("Timing"))), &mut |v| out.push(v));
        let (low, _) = super::range("2013-02-10").unwrap();
        let (_, high) = super::range("2013-02-28").unwrap();
        assert_eq!(out, vec![IndexValue::Date { low, high }]);
    }
}
