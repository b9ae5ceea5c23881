//! One module per search parameter type. Each turns FHIRPath results into index values here; the
//! parsing of search values and the SQL predicate of each type join them in the same file.

pub mod date;
pub mod number;
pub mod quantity;
pub mod reference;
pub mod string;
pub mod token;
pub mod uri;

use crate::fhirpath::Item;
use serde_json::{Map, Value};

/// The JSON object of a complex item, with its FHIR type when known.
pub(crate) fn object<'a>(item: &'a Item<'_>) -> Option<(&'a Map<String, Value>, Option<&'a str>)> {
    match item {
        Item::Node(node) => node.object().map(|o| (o, node.type_name)),
        _ => None,
    }
}

pub(crate) fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}
