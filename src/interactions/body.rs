//! Turning a request body into a resource: JSON syntax, a JSON object, the right `resourceType`,
//! a valid `id`, and no control characters in strings. Full validation against the R4 definitions
//! comes on top of this; these are the checks no write may skip.

use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{ResourceType, id::is_valid_id};
use serde_json::{Map, Value};

/// A resource that passed the checks of a write's body (`valid_resource`): only such a resource
/// can be in a `Request` to create or update. Two are equal when their JSON is.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidResource(Map<String, Value>);

impl ValidResource {
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// For rewriting the references of a Bundle entry, which keeps the resource valid: a
    /// reference becomes another reference of the same form.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Parses `body` as a resource of type `expected` and validates it against the R4 definitions;
/// a failure lists every problem found.
pub fn parse_valid_resource(body: &[u8], expected: ResourceType) -> Result<ValidResource> {
    valid_resource(parse_object(body)?, expected)
}

/// `resource` checked as the body of a write of `expected` is: the checks no write may skip,
/// then validation against the R4 definitions.
pub fn valid_resource(resource: Map<String, Value>, expected: ResourceType) -> Result<ValidResource> {
    check_resource(&resource, expected)?;
    refuse_subsetted(&resource)?;
    let resource = Value::Object(resource);
    crate::validate::validate(&resource)?;
    match resource {
        Value::Object(map) => Ok(ValidResource(map)),
        _ => unreachable!("wrapped an object just above"),
    }
}

/// A resource marked `SUBSETTED` (by `_summary`, `_elements`, or because the caller may see only
/// part of it) is incomplete: written back, it would lose what was left out (search.html#summary).
fn refuse_subsetted(resource: &Map<String, Value>) -> Result<()> {
    let subsetted = resource
        .get("meta")
        .and_then(|meta| meta.get("tag"))
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter()
                .any(|tag| tag["code"] == "SUBSETTED" && tag["system"] == crate::search::subset::SUBSETTED_SYSTEM)
        });
    if subsetted {
        return Err(Error::invalid(
            "the resource is marked SUBSETTED: it is incomplete, and writing it would lose what was left out",
        )
        .at("meta.tag"));
    }
    Ok(())
}

/// The body of `PUT [type]/[id]` must carry the URL's id (http.html#update): a missing or
/// different `id` is a `400` at `[type].id`.
pub fn check_update_id(resource: &ValidResource, resource_type: ResourceType, url_id: &str) -> Result<()> {
    match resource.as_map().get("id") {
        Some(Value::String(body_id)) if body_id == url_id => Ok(()),
        Some(Value::String(body_id)) => Err(Error::invalid(format!(
            "the resource's id '{body_id}' does not match the id '{url_id}' in the URL"
        ))
        .at(format!("{resource_type}.id"))),
        _ => Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::Required,
            format!("an update must carry the resource's id ('{url_id}') in the body"),
        )
        .at(format!("{resource_type}.id"))),
    }
}

/// The search-index rows of a resource about to be written, computed once here so the store can
/// write them in the same transaction as the version.
pub fn with_index_rows(
    registry: &crate::search::Registry,
    own_base: &str,
    resource: Map<String, Value>,
) -> (Map<String, Value>, Vec<crate::search::IndexRow>) {
    let resource = Value::Object(resource);
    let rows = crate::search::index_rows_for_write(registry, own_base, &resource);
    let Value::Object(resource) = resource else {
        unreachable!("wrapped an object just above")
    };
    (resource, rows)
}

pub fn parse_resource(body: &[u8], expected: ResourceType) -> Result<Map<String, Value>> {
    let resource = parse_object(body)?;
    check_resource(&resource, expected)?;
    Ok(resource)
}

/// Parses `body` as a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::Required,
            "the request body is empty; a resource is required",
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::structure(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(Error::structure("the body must be a JSON object (a FHIR resource)")),
    }
}

/// The checks no write may skip: the right `resourceType`, a valid `id`, `meta` an object, and no
/// control characters in strings.
pub fn check_resource(resource: &Map<String, Value>, expected: ResourceType) -> Result<()> {
    match resource.get("resourceType") {
        Some(Value::String(name)) if name == expected.as_str() => {}
        Some(Value::String(name)) => {
            return Err(Error::invalid(format!(
                "resourceType '{name}' does not match the URL's type '{expected}'"
            ))
            .at("resourceType"));
        }
        Some(_) => return Err(Error::structure("resourceType must be a string").at("resourceType")),
        None => {
            return Err(Error::new(
                ErrorKind::Invalid,
                IssueCode::Required,
                "the resource has no resourceType",
            )
            .at("resourceType"));
        }
    }
    match resource.get("id") {
        None => {}
        Some(Value::String(id)) if is_valid_id(id) => {}
        Some(Value::String(id)) => {
            return Err(Error::invalid(format!(
                "'{id}' is not a valid resource id: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
            ))
            .at(format!("{expected}.id")));
        }
        Some(_) => return Err(Error::structure("id must be a string").at(format!("{expected}.id"))),
    }
    if let Some(meta) = resource.get("meta")
        && !meta.is_object()
    {
        return Err(Error::structure("meta must be a JSON object").at(format!("{expected}.meta")));
    }
    let mut path = expected.as_str().to_owned();
    for (key, member) in resource {
        path.push('.');
        path.push_str(key);
        check_strings(member, &mut path)?;
        path.truncate(expected.as_str().len());
    }
    Ok(())
}

/// FHIR strings may not contain control characters other than tab, carriage return and line feed
/// (R4 datatypes.html#string); PostgreSQL's jsonb also refuses U+0000.
fn check_strings(value: &Value, path: &mut String) -> Result<()> {
    match value {
        Value::String(text) if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                IssueCode::Value,
                "strings may not contain control characters other than tab, carriage return and line feed",
            )
            .at(path.clone()));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                check_strings(item, path)?;
                path.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                check_strings(member, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> ResourceType {
        ResourceType::parse("Patient").unwrap()
    }

    fn error_of(body: &str) -> Error {
        parse_resource(body.as_bytes(), patient()).unwrap_err()
    }

    #[test]
    fn accepts_a_patient_and_keeps_decimal_text() {
        let r = parse_resource(br#"{"resourceType":"Patient","x":1.50}"#, patient()).unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"resourceType":"Patient","x":1.50}"#
        );
    }

    #[test]
    fn rejects_what_is_not_a_resource_of_the_url_type() {
        assert_eq!(error_of("").issues[0].code, IssueCode::Required);
        assert_eq!(error_of("{").issues[0].code, IssueCode::Structure);
        assert_eq!(error_of("[]").issues[0].code, IssueCode::Structure);
        assert_eq!(
            error_of(r#"{"resourceType":"Observation"}"#).issues[0]
                .expression
                .as_deref(),
            Some("resourceType")
        );
        assert_eq!(error_of(r#"{"id":"x"}"#).issues[0].code, IssueCode::Required);
        assert_eq!(
            error_of(r#"{"resourceType":"Patient","id":"a_b"}"#).issues[0]
                .expression
                .as_deref(),
            Some("Patient.id")
        );
        assert_eq!(
            error_of(r#"{"resourceType":"Patient","meta":[]}"#).kind,
            ErrorKind::Invalid
        );
    }

    #[test]
    fn names_the_path_of_a_control_character() {
        let e = error_of(r#"{"resourceType":"Patient","name":[{"given":["a","b\u0000"]}]}"#);
        assert_eq!(e.issues[0].expression.as_deref(), Some("Patient.name[0].given[1]"));
    }
}
