//! What a search parameter's FHIRPath expression yields for one resource, as typed values, by the
//! rules of search.html for each parameter type. Written here from the specification, not taken
//! from the server's `search::params`: the two are compared, so they must not share code.

use crate::defs::{Def, Kind, model};
use fhir_server::fhirpath::{Context, Item};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

/// One value of one parameter in one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string as written (normalised on use).
    Str(String),
    /// `texts` are displays and `CodeableConcept.text` / `Identifier.type.text`, normalised;
    /// `types` the `(system, code)` of an Identifier's type codings, for `:of-type`.
    Token {
        system: Option<String>,
        code: Option<String>,
        texts: Vec<String>,
        types: Vec<(Option<String>, String)>,
    },
    /// The half-open range `[low, high)` in microseconds since the epoch; open ends are
    /// `i64::MIN` / `i64::MAX`.
    Date {
        low: i64,
        high: i64,
    },
    Number(f64),
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// `Reference.reference`, or a canonical / uri, as written.
    Reference(String),
    /// `Reference.identifier` (`system`, `value`), for `:identifier`; not a value for `:missing`
    /// or `_sort`, which concern the reference itself.
    RefIdentifier {
        system: Option<String>,
        value: Option<String>,
    },
    Uri(String),
    /// One item of a composite's expression (search.html#composite): per component, the values
    /// of the component's expression evaluated on that item, as values of the component's type.
    Composite(Vec<Vec<Val>>),
}

/// Case- and accent-insensitive form (search.html#string): canonical decomposition, combining
/// marks dropped, lower case.
pub fn normalize(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Complex values the rules of search.html do not cover for a parameter type, seen while
/// extracting: `(kind, FHIR type)`; reported so that a silent gap is visible.
pub type Unhandled = std::collections::BTreeSet<(String, String)>;

/// The values of `def` in `resource`; an expression that fails to evaluate yields none.
pub fn extract(def: &Def, resource: &Value, unhandled: &mut Unhandled) -> Vec<Val> {
    let Some(expression) = &def.expression else {
        return Vec::new();
    };
    let context = Context::new().with_model(model()).with_reference_stubs(true);
    let Ok(items) = expression.evaluate(resource, &context) else {
        return Vec::new();
    };
    if def.kind == Kind::Composite {
        // Each item is one candidate tuple; its components are evaluated relative to it.
        return items
            .iter()
            .map(|item| {
                let parts = def.components.iter().map(|(kind, component)| {
                    match component.evaluate_on(item.clone(), resource, &context) {
                        Ok(values) => typed_values(*kind, &values, unhandled),
                        Err(_) => Vec::new(),
                    }
                });
                Val::Composite(parts.collect())
            })
            .collect();
    }
    typed_values(def.kind, &items, unhandled)
}

/// FHIRPath results as values of a parameter of type `kind`.
fn typed_values(kind: Kind, items: &[Item<'_>], unhandled: &mut Unhandled) -> Vec<Val> {
    let mut out = Vec::new();
    for item in items {
        match complex(item) {
            Some((object, type_name)) => {
                if !complex_values(kind, object, type_name, &mut out) {
                    unhandled.insert((format!("{kind:?}"), type_name.unwrap_or("?").to_owned()));
                }
            }
            None => {
                if let Some(text) = primitive(item) {
                    primitive_values(kind, &text, &mut out);
                }
            }
        }
    }
    out
}

fn complex<'a>(item: &'a Item<'_>) -> Option<(&'a Map<String, Value>, Option<&'a str>)> {
    match item {
        Item::Node(node) => node.value?.as_object().map(|o| (o, node.type_name)),
        _ => None,
    }
}

/// The text of a primitive item: a JSON string, number or boolean, or a System value.
fn primitive(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Node(node) => match node.value? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        },
        Item::String(s) => Some(s.to_string()),
        Item::Boolean(b) => Some(b.to_string()),
        Item::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings<'a>(object: &'a Map<String, Value>, key: &str) -> Vec<&'a str> {
    match object.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn primitive_values(kind: Kind, text: &str, out: &mut Vec<Val>) {
    match kind {
        Kind::String if !text.is_empty() => out.push(Val::Str(text.to_owned())),
        Kind::String => {}
        Kind::Token => out.push(Val::Token {
            system: None,
            code: Some(text.to_owned()),
            texts: Vec::new(),
            types: Vec::new(),
        }),
        Kind::Date => {
            if let Some((low, high)) = date_range(text) {
                out.push(Val::Date { low, high });
            }
        }
        Kind::Number => {
            if let Ok(value) = text.parse::<f64>() {
                out.push(Val::Number(value));
            }
        }
        Kind::Quantity => {}
        Kind::Reference => out.push(Val::Reference(text.to_owned())),
        Kind::Uri => out.push(Val::Uri(text.to_owned())),
        Kind::Composite => {}
    }
}

fn coding(object: &Map<String, Value>) -> Val {
    Val::Token {
        system: text(object, "system"),
        code: text(object, "code"),
        texts: text(object, "display").map(|d| normalize(&d)).into_iter().collect(),
        types: Vec::new(),
    }
}

/// Values of a complex element; `false` when its type has no defined meaning for `kind`.
fn complex_values(kind: Kind, object: &Map<String, Value>, type_name: Option<&str>, out: &mut Vec<Val>) -> bool {
    match (kind, type_name.unwrap_or("")) {
        (Kind::String, "HumanName") => {
            for part in ["text", "family", "given", "prefix", "suffix"] {
                out.extend(
                    strings(object, part)
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .map(|s| Val::Str(s.to_owned())),
                );
            }
        }
        (Kind::String, "Address") => {
            for part in ["text", "line", "city", "district", "state", "postalCode", "country"] {
                out.extend(
                    strings(object, part)
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .map(|s| Val::Str(s.to_owned())),
                );
            }
        }
        (Kind::Token, "Coding") => out.push(coding(object)),
        (Kind::Token, "CodeableConcept") => {
            for c in object.get("coding").and_then(Value::as_array).into_iter().flatten() {
                if let Some(c) = c.as_object() {
                    out.push(coding(c));
                }
            }
            if let Some(t) = text(object, "text") {
                out.push(Val::Token {
                    system: None,
                    code: None,
                    texts: vec![normalize(&t)],
                    types: Vec::new(),
                });
            }
        }
        // `:text` on an Identifier reads its type's text (the text associated with it).
        (Kind::Token, "Identifier") => out.push(Val::Token {
            system: text(object, "system"),
            code: text(object, "value"),
            texts: object
                .get("type")
                .and_then(|t| t.get("text"))
                .and_then(Value::as_str)
                .map(normalize)
                .into_iter()
                .collect(),
            types: object
                .get("type")
                .and_then(|t| t.get("coding"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| Some((text(c.as_object()?, "system"), text(c.as_object()?, "code")?)))
                .collect(),
        }),
        // search.html gives ContactPoint no token system and leaves its matching to the server;
        // like the server, `system|value` uses the ContactPoint's own `system` (phone, email, …).
        (Kind::Token, "ContactPoint") => out.push(Val::Token {
            system: text(object, "system"),
            code: text(object, "value"),
            texts: Vec::new(),
            types: Vec::new(),
        }),
        (Kind::Date, "Period") => {
            let start = object.get("start").and_then(Value::as_str);
            let end = object.get("end").and_then(Value::as_str);
            if start.is_some() || end.is_some() {
                out.push(Val::Date {
                    low: start.and_then(date_range).map_or(i64::MIN, |r| r.0),
                    high: end.and_then(date_range).map_or(i64::MAX, |r| r.1),
                });
            }
        }
        // search.html#date: for a Timing "only the outer limits matter": its events and the
        // period its repetitions are bounded by.
        (Kind::Date, "Timing") => {
            let mut ranges: Vec<(i64, i64)> = strings(object, "event").into_iter().filter_map(date_range).collect();
            if let Some(bounds) = object
                .get("repeat")
                .and_then(|r| r.get("boundsPeriod"))
                .and_then(Value::as_object)
            {
                let start = bounds.get("start").and_then(Value::as_str).and_then(date_range);
                let end = bounds.get("end").and_then(Value::as_str).and_then(date_range);
                if start.is_some() || end.is_some() {
                    ranges.push((start.map_or(i64::MIN, |r| r.0), end.map_or(i64::MAX, |r| r.1)));
                }
            }
            if let (Some(low), Some(high)) = (ranges.iter().map(|r| r.0).min(), ranges.iter().map(|r| r.1).max()) {
                out.push(Val::Date { low, high });
            }
        }
        (Kind::Quantity, "Money") => {
            if let Some(value) = number(object) {
                out.push(Val::Quantity {
                    value,
                    system: Some("urn:iso:std:iso:4217".into()),
                    code: text(object, "currency"),
                    unit: text(object, "currency"),
                });
            }
        }
        (
            Kind::Quantity,
            "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity",
        ) => {
            if let Some(value) = number(object) {
                out.push(Val::Quantity {
                    value,
                    system: text(object, "system"),
                    code: text(object, "code"),
                    unit: text(object, "unit"),
                });
            }
        }
        (Kind::Reference, "Reference") => {
            if let Some(reference) = text(object, "reference") {
                out.push(Val::Reference(reference));
            }
            if let Some(identifier) = object.get("identifier").and_then(Value::as_object) {
                out.push(Val::RefIdentifier {
                    system: text(identifier, "system"),
                    value: text(identifier, "value"),
                });
            }
        }
        _ => return false,
    }
    true
}

fn number(object: &Map<String, Value>) -> Option<f64> {
    object
        .get("value")?
        .as_number()?
        .to_string()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `[low, high)` in microseconds of a FHIR date, dateTime or instant by its precision
/// (search.html#date): `2020` is the whole year, `2020-03-01T10:00Z` the whole minute. A time
/// without a zone is taken as UTC.
pub fn date_range(text: &str) -> Option<(i64, i64)> {
    use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
    let micros = |d: chrono::NaiveDateTime| Utc.from_utc_datetime(&d).timestamp_micros();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let fields: Vec<&str> = date.split('-').collect();
    let midnight = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).map(|d| d.and_time(NaiveTime::MIN));
    match (fields.as_slice(), time) {
        ([y], None) if digits(y, 4) => {
            let y: i32 = y.parse().ok()?;
            Some((micros(midnight(y, 1, 1)?), micros(midnight(y + 1, 1, 1)?)))
        }
        ([y, m], None) if digits(y, 4) && digits(m, 2) => {
            let start = midnight(y.parse().ok()?, m.parse().ok()?, 1)?;
            let next = if start.month() == 12 {
                midnight(start.year() + 1, 1, 1)?
            } else {
                midnight(start.year(), start.month() + 1, 1)?
            };
            Some((micros(start), micros(next)))
        }
        ([y, m, d], None) if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
            let start = midnight(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            Some((micros(start), micros(start + Duration::days(1))))
        }
        ([y, m, d], Some(time)) if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
            let day = midnight(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            let (clock, offset_seconds) = split_zone(time)?;
            let parts: Vec<&str> = clock.split(':').collect();
            let (h, mi, s, frac) = match parts.as_slice() {
                [h, mi] => (*h, *mi, "00", None),
                [h, mi, s] => match s.split_once('.') {
                    Some((whole, frac)) => (*h, *mi, whole, Some(frac)),
                    None => (*h, *mi, *s, None),
                },
                _ => return None,
            };
            if !(digits(h, 2) && digits(mi, 2) && digits(s, 2)) {
                return None;
            }
            let (h, mi, s): (i64, i64, i64) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
            if h > 23 || mi > 59 || s > 59 {
                return None;
            }
            let (frac_micros, step) = match (parts.len(), frac) {
                (2, _) => (0, 60_000_000),
                (_, None) => (0, 1_000_000),
                (_, Some(f)) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
                    let scale = 10i64.pow(6 - f.len() as u32);
                    (f.parse::<i64>().ok()? * scale, scale)
                }
                _ => return None,
            };
            let start = micros(day) + ((h * 60 + mi) * 60 + s - offset_seconds) * 1_000_000 + frac_micros;
            Some((start, start + step))
        }
        _ => None,
    }
}

/// `(clock, zone offset in seconds)` of the time part of a dateTime.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        Some(pos) => {
            let (clock, zone) = time.split_at(pos);
            let (h, m) = zone[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let seconds = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
            Some((clock, if zone.starts_with('-') { -seconds } else { seconds }))
        }
        None => Some((time, 0)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_ranges_follow_precision_and_zone() {
        let (low, high) = super::date_range("2020").unwrap();
        assert_eq!(high - low, 366 * 86_400_000_000);
        let (low, high) = super::date_range("2020-03-01T10:00+01:00").unwrap();
        assert_eq!(high - low, 60_000_000);
        assert_eq!(Some(low), super::date_range("2020-03-01T09:00:00Z").map(|r| r.0));
        let (low, high) = super::date_range("2014-09-26T22:10:42.330194+00:00").unwrap();
        assert_eq!(high - low, 1);
        assert_eq!(super::date_range("2020-13"), None);
    }
}
