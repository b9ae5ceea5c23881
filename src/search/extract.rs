//! Index rows for one resource: every search parameter of its type evaluated through FHIRPath, its
//! results turned into typed values by the module of the parameter's type. A composite parameter's
//! components become rows of their own types, grouped by the element they came from; special
//! parameters produce no rows.

use super::index_row::IndexRow;
use super::params;
use super::registry::{ParamType, Registry};
use crate::fhirpath::Context;
use crate::model::structure::fhirpath_model;
use serde_json::Value;
use std::sync::Arc;

/// Every index row of `resource` by the built-in parameters, or an error naming the first
/// parameter whose expression failed. No base URL is the server's own, so absolute references
/// are kept as URLs only.
pub fn index_rows(resource: &Value) -> Result<Vec<IndexRow>, String> {
    let mut first_error = None;
    let rows = index_rows_with(Registry::r4(), "", resource, None, &mut |e| {
        first_error.get_or_insert(e);
    })?;
    first_error.map_or(Ok(rows), Err)
}

/// The index rows of `resource` for the write path, on a server whose base is `own_base`: a parameter whose expression fails is logged
/// and left out rather than refusing a valid resource (the corpus test keeps the list empty).
pub fn index_rows_for_write(registry: &Registry, own_base: &str, resource: &Value) -> Vec<IndexRow> {
    index_rows_with(
        registry,
        own_base,
        resource,
        None,
        &mut |e| tracing::warn!(error = %e, "search parameter not indexed"),
    )
    .unwrap_or_default()
}

/// The index rows of `resource` by the built-in parameters named `codes` only (a compartment's,
/// to tell whose compartment a resource is in without indexing all of it), on a server whose
/// base is `own_base`.
pub fn index_rows_of(own_base: &str, resource: &Value, codes: &[String]) -> Vec<IndexRow> {
    index_rows_with(
        Registry::r4(),
        own_base,
        resource,
        Some(codes),
        &mut |e| tracing::warn!(error = %e, "search parameter not evaluated"),
    )
    .unwrap_or_default()
}

fn index_rows_with(
    registry: &Registry,
    own_base: &str,
    resource: &Value,
    only: Option<&[String]>,
    on_error: &mut dyn FnMut(String),
) -> Result<Vec<IndexRow>, String> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err("the resource has no resourceType".into());
    };
    // `resolve() is Patient` in reference parameters must work without fetching the target.
    let context = Context::new().with_model(fhirpath_model()).with_reference_stubs(true);
    let mut rows = Vec::new();
    let mut groups = 0u32;
    for param in registry.params_for(resource_type) {
        if only.is_some_and(|codes| !codes.contains(&param.code)) {
            continue;
        }
        if param.code == "_text" || param.code == "_content" {
            let name: Arc<str> = Arc::from(param.code.as_str());
            let param_id = super::registry::param_id(resource_type, &param.code);
            let mut push = |value| {
                rows.push(IndexRow {
                    param: name.clone(),
                    param_id,
                    group: None,
                    value,
                })
            };
            if param.code == "_text" {
                params::text::narrative_words(resource, &mut push);
            } else {
                params::text::content_words(resource, &mut push);
            }
            continue;
        }
        // `_id` and `_lastUpdated` are columns of `resource`; they need no rows.
        let Some(expression) = &param.expression else { continue };
        if param.code == "_id" || param.code == "_lastUpdated" {
            continue;
        }
        let items = match expression.evaluate(resource, &context) {
            Ok(items) => items,
            Err(e) => {
                on_error(format!(
                    "{resource_type} search parameter {} ({}): {e:?}",
                    param.code,
                    param.expression_text.as_deref().unwrap_or("")
                ));
                continue;
            }
        };
        let name: Arc<str> = Arc::from(param.code.as_str());
        if param.kind == ParamType::Composite {
            let composite = params::composite::Extraction {
                resource_type,
                own_base,
                resource,
                context: &context,
                name: &name,
            };
            if let Err(e) = composite.extract(param, &items, &mut groups, &mut rows) {
                on_error(format!(
                    "{resource_type} composite search parameter {}: {e}",
                    param.code
                ));
            }
            continue;
        }
        let param_id = super::registry::param_id(resource_type, &param.code);
        let mut push = |value| {
            rows.push(IndexRow {
                param: name.clone(),
                param_id,
                group: None,
                value,
            })
        };
        for item in &items {
            params::extract_value(param.kind, item, own_base, &mut push);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::index_row::IndexValue;
    use serde_json::json;

    fn rows_of(resource: Value, param: &str) -> Vec<IndexValue> {
        index_rows(&resource)
            .unwrap()
            .into_iter()
            .filter(|r| &*r.param == param)
            .map(|r| r.value)
            .collect()
    }

    #[test]
    fn a_patient_is_indexed_by_type() {
        let patient = json!({"resourceType": "Patient", "id": "p1", "active": true, "gender": "male",
            "name": [{"family": "Chalmers", "given": ["Péter", "James"]}],
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
            "birthDate": "1974-12-25", "managingOrganization": {"reference": "Organization/1"}});
        let names = rows_of(patient.clone(), "name");
        assert!(
            names.contains(&IndexValue::String {
                normalized: "peter".into(),
                exact: "Péter".into()
            }),
            "{names:?}"
        );
        assert_eq!(names.len(), 3);
        assert_eq!(
            rows_of(patient.clone(), "identifier"),
            vec![IndexValue::Token {
                system: Some("urn:oid:1.2.36.146.595.217.0.1".into()),
                code: Some("12345".into()),
                text: None
            }]
        );
        assert_eq!(
            rows_of(patient.clone(), "gender"),
            vec![IndexValue::Token {
                system: None,
                code: Some("male".into()),
                text: None
            }]
        );
        let Some(IndexValue::Date { low, high }) = rows_of(patient.clone(), "birthdate").pop() else {
            panic!("no birthdate row")
        };
        assert_eq!(high - low, 86_400_000_000, "a date covers its whole day");
        assert_eq!(
            rows_of(patient.clone(), "organization"),
            vec![IndexValue::Reference {
                target_type: Some("Organization".into()),
                target_id: Some("1".into()),
                url: "Organization/1".into()
            }]
        );
        assert!(rows_of(patient, "_id").is_empty(), "_id is a column of resource");
    }

    #[test]
    fn observation_values_and_subjects() {
        let observation = json!({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}], "text": "weight"},
            "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
            "effectivePeriod": {"start": "2020-01-01"}});
        assert!(
            rows_of(observation.clone(), "patient")
                .iter()
                .any(|r| matches!(r, IndexValue::Reference { target_id: Some(id), .. } if id == "p1"))
        );
        assert!(
            rows_of(observation.clone(), "code").len() == 2,
            "one coding and the text"
        );
        let Some(IndexValue::Quantity { value, code, .. }) = rows_of(observation.clone(), "value-quantity").pop()
        else {
            panic!("no quantity row")
        };
        assert_eq!((value, code.as_deref()), (185.0, Some("[lb_av]")));
        let Some(IndexValue::Date { high, .. }) = rows_of(observation, "date").pop() else {
            panic!("no date row")
        };
        assert_eq!(high, i64::MAX, "an open period runs on");
    }
}
