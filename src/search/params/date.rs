//! Date parameters: date, dateTime and instant values as the range their precision denotes
//! (`2020` is the whole year), Periods from start to end (open ends unbounded), and Timings over
//! the span of their events.

use crate::fhirpath::Item;
use crate::model::InstantRange;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;
use serde_json::Value;

fn range(text: &str) -> Option<(i64, i64)> {
    InstantRange::parse(text)
        .ok()
        .map(|r| (r.start.timestamp_micros(), r.end.timestamp_micros()))
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some((object, type_name)) = super::object(item) {
        let bounds = match type_name {
            Some("Period") => {
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
            Some("Timing") => {
                let events: Vec<(i64, i64)> = object
                    .get("event")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(range)
                    .collect();
                let low = events.iter().map(|e| e.0).min();
                let high = events.iter().map(|e| e.1).max();
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
