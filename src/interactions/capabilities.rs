//! FHIR capabilities interaction — https://hl7.org/fhir/R4/http.html#capabilities
//!
//! `GET [base]/metadata`: a CapabilityStatement built from what this server really does. It lists
//! an interaction or flag only once it is implemented and tested; built once at start-up.

use crate::model::{Instant, ResourceType};
use crate::search::{ParamType, Registry};
use serde_json::{Value, json};

/// The interactions every resource type supports today.
const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// The search parameters of `resource_type` the server searches (special ones such as `near` are
/// not, so they are not offered), plus what `_include` / `_revinclude` accept.
fn search_capabilities(registry: &Registry, resource_type: &str) -> (Vec<Value>, Vec<String>, Vec<String>) {
    let mut params: Vec<Value> = registry
        .params_for(resource_type)
        .iter()
        .filter(|p| p.is_searchable())
        .map(|p| {
            json!({
                "name": p.code,
                "definition": p.url,
                "type": format!("{:?}", p.kind).to_lowercase(),
            })
        })
        .collect();
    params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    params.dedup_by(|a, b| a["name"] == b["name"]);
    let mut includes: Vec<String> = registry
        .params_for(resource_type)
        .iter()
        .filter(|p| p.kind == ParamType::Reference)
        .map(|p| format!("{resource_type}:{}", p.code))
        .collect();
    includes.sort();
    includes.push(format!("{resource_type}:*"));
    let mut revincludes: Vec<String> = crate::model::structure::TypeModel::r4()
        .resource_types()
        .flat_map(|source| {
            registry
                .params_for(source)
                .iter()
                .filter(|p| p.kind == ParamType::Reference && p.targets.iter().any(|t| t == resource_type))
                .map(move |p| format!("{source}:{}", p.code))
        })
        .collect();
    revincludes.sort();
    revincludes.dedup();
    (params, includes, revincludes)
}

/// The CapabilityStatement as served: built on first request and again after the search
/// parameters change (a `SearchParameter` written), since it lists them.
pub struct CapabilityCache {
    base_url: String,
    backend: &'static str,
    started: Instant,
    conditional_delete: ConditionalDelete,
    /// `rest.security` (`auth::discovery::capability_security`).
    security: Value,
    built: std::sync::Mutex<Option<(u64, bytes::Bytes)>>,
}

impl CapabilityCache {
    pub fn new(
        base_url: &str,
        backend: &'static str,
        started: Instant,
        conditional_delete: ConditionalDelete,
        security: Value,
    ) -> CapabilityCache {
        CapabilityCache {
            base_url: base_url.to_owned(),
            backend,
            started,
            conditional_delete,
            security,
            built: std::sync::Mutex::new(None),
        }
    }

    pub fn get(&self, parameters: &crate::search::custom::SearchParameters) -> bytes::Bytes {
        let generation = parameters.generation();
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, bytes)) = built.as_ref()
            && *at == generation
        {
            return bytes.clone();
        }
        let statement = capability_statement(
            &parameters.current(),
            &self.base_url,
            self.backend,
            self.started,
            self.conditional_delete,
            &self.security,
        );
        let bytes = bytes::Bytes::from(serde_json::to_vec(&statement).expect("a Value serialises"));
        *built = Some((generation, bytes.clone()));
        bytes
    }
}

/// What a conditional delete may do here (`--conditional-delete-multiple`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalDelete {
    Single,
    Multiple,
}

pub fn capability_statement(
    registry: &Registry,
    base_url: &str,
    backend: &str,
    started: Instant,
    conditional_delete: ConditionalDelete,
    security: &Value,
) -> Value {
    let interactions: Vec<Value> = TYPE_INTERACTIONS.iter().map(|code| json!({"code": code})).collect();
    let resources: Vec<Value> = ResourceType::all()
        .map(|t| {
            let (search_params, includes, revincludes) = search_capabilities(registry, t.as_str());
            let mut resource = json!({
                "type": t.as_str(),
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": match conditional_delete {
                    ConditionalDelete::Single => "single",
                    ConditionalDelete::Multiple => "multiple",
                },
                "searchParam": search_params,
            });
            // FHIR JSON has no empty arrays: a type nothing refers to has no revincludes.
            for (element, values) in [("searchInclude", includes), ("searchRevInclude", revincludes)] {
                if !values.is_empty() {
                    resource[element] = json!(values);
                }
            }
            if t.as_str() == "Consent" {
                resource["operation"] = json!([{
                    "name": "evaluate",
                    "definition": format!("{base_url}/OperationDefinition/Consent-evaluate"),
                    "documentation": "What the patient's consents decide about an actor seeing a type or a stored \
                                      resource for a purpose (see the README's Consent section).",
                }]);
            }
            resource
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
        "patchFormat": [crate::patch::JSON_PATCH_MEDIA_TYPE, "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            "security": security,
            "resource": resources,
            "interaction": [
                {"code": "transaction"},
                {"code": "batch"},
                {"code": "history-system"},
                {"code": "search-system"},
            ],
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
        let cs = capability_statement(
            Registry::r4(),
            "http://x/fhir/R4",
            "sqlite",
            Instant::from_micros(0),
            ConditionalDelete::Single,
            &json!({"description": "off"}),
        );
        assert_eq!(cs["rest"][0]["security"]["description"], "off");
        let resources = cs["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), ResourceType::all().count());
        let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
        assert_eq!(patient["versioning"], "versioned-update");
        assert_eq!(patient["conditionalCreate"], true);
        assert_eq!(patient["conditionalUpdate"], true);
        assert_eq!(patient["conditionalDelete"], "single");
        assert_eq!(
            patient["interaction"].as_array().unwrap().len(),
            TYPE_INTERACTIONS.len()
        );
        assert_eq!(
            cs["format"],
            json!(["application/fhir+json", "application/fhir+xml", "json", "xml"])
        );
        assert_eq!(
            cs["patchFormat"],
            json!([
                "application/json-patch+json",
                "application/fhir+json",
                "application/fhir+xml"
            ])
        );
        assert_eq!(cs["fhirVersion"], "4.0.1");
        assert_eq!(cs["rest"][0]["operation"][0]["name"], "validate");
        let consent = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Consent")
            .unwrap();
        assert_eq!(consent["operation"][0]["name"], "evaluate");
        let params = patient["searchParam"].as_array().unwrap();
        let find = |name: &str| params.iter().find(|p| p["name"] == name);
        assert_eq!(find("birthdate").unwrap()["type"], "date");
        assert_eq!(find("_lastUpdated").unwrap()["type"], "date");
        assert!(find("near").is_none());
        assert_eq!(find("_text").unwrap()["type"], "string");
        assert_eq!(find("_content").unwrap()["type"], "string");
        let observation = resources.iter().find(|r| r["type"] == "Observation").unwrap();
        let observation_params = observation["searchParam"].as_array().unwrap();
        assert!(
            observation_params
                .iter()
                .any(|p| p["name"] == "code-value-quantity" && p["type"] == "composite"),
            "composites are offered"
        );
        assert!(
            patient["searchRevInclude"]
                .as_array()
                .unwrap()
                .contains(&json!("Observation:subject"))
        );
        assert!(
            observation["searchInclude"]
                .as_array()
                .unwrap()
                .contains(&json!("Observation:subject"))
        );
        crate::validate::validate(&cs).expect("the CapabilityStatement is valid R4");
    }
}
