//! What the server itself writes into a resource: `id`, `meta.versionId` and `meta.lastUpdated`.
//! Everything else in the resource is kept exactly as the client sent it.

use super::{Id, Instant, VersionId};
use serde_json::{Map, Value};

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping every other element and its order.
/// A new `id` goes right after `resourceType`, a new `meta` right after `id`, as FHIR JSON is usually written.
pub fn stamp(resource: &mut Map<String, Value>, id: &Id, version: VersionId, last_updated: Instant) {
    set_after(resource, "id", Value::String(id.as_str().to_owned()), "resourceType");
    let mut meta = match resource.get_mut("meta") {
        Some(Value::Object(meta)) => std::mem::take(meta),
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert("lastUpdated".into(), Value::String(last_updated.to_fhir()));
    set_after(resource, "meta", Value::Object(meta), "id");
}

fn set_after(object: &mut Map<String, Value>, key: &str, value: Value, after: &str) {
    if let Some(slot) = object.get_mut(key) {
        *slot = value;
        return;
    }
    let index = object.keys().position(|k| k == after).map_or(0, |i| i + 1);
    object.shift_insert(index, key.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_id_and_meta_in_conventional_places_and_keeps_the_rest() {
        let mut resource = json!({"resourceType": "Patient", "active": true, "meta": {"profile": ["p"]}})
            .as_object()
            .unwrap()
            .clone();
        stamp(&mut resource, &Id::parse("a1").unwrap(), 3, Instant::from_micros(0));
        let text = serde_json::to_string(&resource).unwrap();
        assert_eq!(
            text,
            r#"{"resourceType":"Patient","id":"a1","active":true,"meta":{"profile":["p"],"versionId":"3","lastUpdated":"1970-01-01T00:00:00.000Z"}}"#
        );
    }

    #[test]
    fn replaces_a_client_supplied_version() {
        let mut resource = json!({"resourceType": "Basic", "id": "x", "meta": {"versionId": "99"}})
            .as_object()
            .unwrap()
            .clone();
        stamp(&mut resource, &Id::parse("x").unwrap(), 1, Instant::from_micros(0));
        assert_eq!(resource["meta"]["versionId"], "1");
    }
}
