//! `_summary` and `_elements` (search.html#summary, #elements): parts of a resource returned
//! instead of all of it, marked with the `SUBSETTED` security tag so no client mistakes one for
//! the whole and writes it back.

use super::request::Summary;
use crate::model::structure::TypeModel;
use serde_json::{Map, Value, json};

pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Reduces `resource` as `summary` and `elements` ask; true when anything was left out.
pub fn apply(resource: &mut Map<String, Value>, summary: Summary, elements: Option<&[String]>) -> bool {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str).map(str::to_owned) else {
        return false;
    };
    let model = TypeModel::r4();
    let Some(definition) = model.get(&resource_type) else {
        return false;
    };
    // An element's JSON key is its name, or for a choice its name plus a type (`valueQuantity`).
    let element_of = |key: &str| definition.resolve(key.trim_start_matches('_')).map(|(e, _)| e);
    let always = |key: &str| matches!(key, "resourceType" | "id" | "meta");
    let mandatory = |key: &str| element_of(key).is_some_and(|e| e.min > 0);
    let keep: Box<dyn Fn(&str) -> bool> = match (summary, elements) {
        (Summary::Text, _) => Box::new(|k: &str| always(k) || k == "text" || mandatory(k)),
        (Summary::Data, _) => Box::new(|k: &str| k != "text"),
        (Summary::True, _) => Box::new(|k: &str| always(k) || element_of(k).is_some_and(|e| e.summary)),
        (_, Some(wanted)) => {
            Box::new(move |k: &str| always(k) || mandatory(k) || wanted.iter().any(|w| w == k.trim_start_matches('_')))
        }
        (Summary::False | Summary::Count, None) => return false,
    };
    let before = resource.len();
    resource.retain(|k, _| keep(k));
    if resource.len() == before && summary != Summary::True {
        return false;
    }
    mark_subsetted(resource);
    true
}

pub fn mark_subsetted(resource: &mut Map<String, Value>) {
    let meta = resource.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else { return };
    let tags = meta.entry("tag").or_insert_with(|| json!([]));
    if let Some(tags) = tags.as_array_mut()
        && !tags.iter().any(|t| t["code"] == "SUBSETTED")
    {
        tags.push(json!({"system": SUBSETTED_SYSTEM, "code": "SUBSETTED"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Map<String, Value> {
        json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1"},
               "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
               "name": [{"family": "Chalmers"}], "birthDate": "1974-12-25",
               "photo": [{"contentType": "image/png"}], "_birthDate": {"extension": []}})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn summary_true_keeps_summary_elements_only() {
        let mut p = patient();
        assert!(apply(&mut p, Summary::True, None));
        assert!(p.contains_key("name") && p.contains_key("birthDate"));
        assert!(!p.contains_key("photo"), "Patient.photo is not a summary element");
        assert!(!p.contains_key("text"));
        assert_eq!(p["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn elements_keep_what_is_asked_and_its_primitive_extensions() {
        let mut p = patient();
        assert!(apply(&mut p, Summary::False, Some(&["birthDate".to_owned()])));
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "birthDate", "_birthDate"]);
    }

    #[test]
    fn data_drops_the_narrative_and_text_keeps_it() {
        let mut p = patient();
        assert!(apply(&mut p, Summary::Data, None));
        assert!(!p.contains_key("text") && p.contains_key("photo"));
        let mut p = patient();
        assert!(apply(&mut p, Summary::Text, None));
        assert!(p.contains_key("text") && !p.contains_key("name"));
    }
}
