//! FHIR capabilities interaction — https://hl7.org/fhir/R4/http.html#capabilities
//!
//! `GET [base]/metadata`: a CapabilityStatement built from what this server really does. It lists
//! an interaction or flag only once it is implemented and tested; built once at start-up.

use crate::model::{Instant, ResourceType};
use serde_json::{Value, json};

/// The interactions every resource type supports today.
const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
];

pub fn capability_statement(base_url: &str, backend: &str, started: Instant) -> Value {
    let interactions: Vec<Value> = TYPE_INTERACTIONS.iter().map(|code| json!({"code": code})).collect();
    let resources: Vec<Value> = ResourceType::all()
        .map(|t| {
            json!({
                "type": t.as_str(),
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": false,
                "conditionalRead": "not-supported",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": started.to_fhir(),
        "kind": "instance",
        "software": {"name": "fhir-server", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": format!("FHIR R4 server, {backend} store"),
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "history-system"}],
            "operation": [{
                "name": "validate",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_type_with_its_interactions_and_both_formats() {
        let cs = capability_statement("http://x/fhir/R4", "sqlite", Instant::from_micros(0));
        let resources = cs["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), ResourceType::all().count());
        let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
        assert_eq!(patient["versioning"], "versioned-update");
        assert_eq!(
            patient["interaction"].as_array().unwrap().len(),
            TYPE_INTERACTIONS.len()
        );
        assert_eq!(
            cs["format"],
            json!(["application/fhir+json", "application/fhir+xml", "json", "xml"])
        );
        assert_eq!(cs["fhirVersion"], "4.0.1");
        assert_eq!(cs["rest"][0]["operation"][0]["name"], "validate");
    }
}
