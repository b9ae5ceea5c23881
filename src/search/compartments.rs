//! The R4 compartment definitions (generated `search-params/compartments.json`): which reference
//! parameters of each resource type place it in a Patient, Encounter, RelatedPerson, Practitioner
//! or Device compartment. Compartment search (`Patient/123/Observation`) is a search on those, and
//! `clause` is its condition; the search interaction checks the compartment and id and adds it.
//! `patient_owners` reads the same parameters off a resource's index rows: the patients whose
//! compartments a version is in, which the store records with every version.

use super::index_row::{IndexRow, IndexValue};
use super::params::ValueMatch;
use super::params::reference::{self, ReferenceMatch};
use super::query::Clause;
use super::registry::{Registry, param_id};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

const COMPARTMENTS_JSON: &str = include_str!("../../search-params/compartments.json");

#[derive(Deserialize)]
struct File {
    compartments: HashMap<String, HashMap<String, Vec<String>>>,
}

fn compartments() -> &'static HashMap<String, HashMap<String, Vec<String>>> {
    static COMPARTMENTS: OnceLock<HashMap<String, HashMap<String, Vec<String>>>> = OnceLock::new();
    COMPARTMENTS.get_or_init(|| {
        serde_json::from_str::<File>(COMPARTMENTS_JSON)
            .expect("search-params/compartments.json is generated and valid")
            .compartments
    })
}

/// Whether `compartment` (e.g. `Patient`) is a compartment type.
pub fn is_compartment(compartment: &str) -> bool {
    compartments().contains_key(compartment)
}

/// The parameters of `resource_type` that link it into a `compartment`, or `None` when that type
/// is not in the compartment.
pub fn params(compartment: &str, resource_type: &str) -> Option<&'static [String]> {
    compartments()
        .get(compartment)?
        .get(resource_type)
        .map(Vec::as_slice)
        .filter(|p| !p.is_empty())
}

/// Every resource type that can be in `compartment`, sorted.
pub fn member_types(compartment: &str) -> Vec<&'static str> {
    let mut types: Vec<&str> = compartments()
        .get(compartment)
        .into_iter()
        .flat_map(|members| members.iter().filter(|(_, p)| !p.is_empty()).map(|(t, _)| t.as_str()))
        .collect();
    types.sort_unstable();
    types
}

/// The condition of a search in the compartment `compartment/id` over `types`: a resource is in
/// it when one of its compartment parameters points at the compartment's resource. Ids are per
/// type, so one list of parameter ids covers every type. Compartment parameters that are no
/// search parameter (`{def}`, the compartment's resource itself) are left out.
pub fn clause(compartment: &str, id: &str, types: &[String]) -> Clause {
    clause_of_any(compartment, &[id], types)
}

/// The resources of `types` in the compartment of any of `ids` (through the compartment's
/// parameters; a compartment's own resource is not among them).
pub fn clause_of_any(compartment: &str, ids: &[&str], types: &[String]) -> Clause {
    let mut param_ids = Vec::new();
    for t in types {
        for code in params(compartment, t).unwrap_or_default() {
            if Registry::r4().get(t, code).is_some() {
                param_ids.push(param_id(t, code));
            }
        }
    }
    Clause::Index {
        table: reference::TABLE.name,
        param_ids,
        matches: ids
            .iter()
            .map(|id| {
                ValueMatch::Reference(ReferenceMatch::Local {
                    target_type: Some(compartment.to_owned()),
                    id: (*id).to_owned(),
                })
            })
            .collect(),
        negated: false,
    }
}

/// The ids of the Patients whose compartments `resource` (a `resource_type` with id `id`) is in,
/// as `patient_owners` gives them, read from the resource itself on a server whose base is
/// `own_base`: what the store records with the version, for a version at hand.
pub fn patient_owners_of(own_base: &str, resource_type: &str, id: &str, resource: &serde_json::Value) -> Vec<String> {
    let Some(codes) = params("Patient", resource_type) else {
        return Vec::new();
    };
    let rows = super::extract::index_rows_of(own_base, resource, codes);
    patient_owners(resource_type, id, &rows)
}

/// The ids of the Patients whose compartments a resource of `resource_type` with the index rows
/// `rows` is in, sorted and each once: those its Patient-compartment parameters reference. A
/// Patient is in its own compartment too, but that needs no record (its type and id say so), so
/// its own id is left out unless another parameter names it.
pub fn patient_owners(resource_type: &str, id: &str, rows: &[IndexRow]) -> Vec<String> {
    let codes = params("Patient", resource_type).unwrap_or_default();
    let mut owners: Vec<String> = rows
        .iter()
        .filter(|row| codes.iter().any(|code| row.param_id == param_id(resource_type, code)))
        .filter_map(|row| match &row.value {
            IndexValue::Reference {
                target_type: Some(target_type),
                target_id: Some(target_id),
                ..
            } if target_type == "Patient" => Some(target_id.clone()),
            _ => None,
        })
        .collect();
    if resource_type == "Patient" {
        owners.retain(|owner| owner != id);
    }
    owners.sort_unstable();
    owners.dedup();
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_belongs_to_the_patients_its_compartment_parameters_reference() {
        let observation: serde_json::Value = serde_json::json!({
            "resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p2"},
            "performer": [{"reference": "Patient/p1"}, {"reference": "Practitioner/d1"}, {"reference": "Patient/p2"}],
            "hasMember": [{"reference": "Observation/o2"}],
            "focus": [{"reference": "Patient/p9"}]
        });
        let rows = super::super::index_rows(&observation).unwrap();
        assert_eq!(
            patient_owners("Observation", "o1", &rows),
            ["p1", "p2"],
            "subject and performer place it, focus does not"
        );
        let patient = serde_json::json!({"resourceType": "Patient", "id": "a",
            "link": [{"other": {"reference": "Patient/b"}, "type": "seealso"}]});
        let rows = super::super::index_rows(&patient).unwrap();
        assert_eq!(
            patient_owners("Patient", "a", &rows),
            ["b"],
            "its own compartment goes unrecorded"
        );
        assert!(patient_owners("Practitioner", "d1", &[]).is_empty());
    }

    #[test]
    fn observations_are_in_the_patient_compartment_by_subject_and_performer() {
        assert_eq!(
            super::params("Patient", "Observation").unwrap(),
            ["subject", "performer"]
        );
        assert!(super::params("Patient", "CodeSystem").is_none());
        assert!(super::member_types("Patient").contains(&"Condition"));
        assert!(!super::is_compartment("Observation"));
    }

    #[test]
    fn a_compartment_clause_asks_for_references_to_its_resource_by_any_compartment_parameter() {
        let types = ["Encounter".to_owned(), "Observation".to_owned()];
        assert_eq!(
            clause("Patient", "p1", &types[1..]),
            Clause::Index {
                table: "search_reference",
                param_ids: vec![param_id("Observation", "subject"), param_id("Observation", "performer")],
                matches: vec![ValueMatch::Reference(ReferenceMatch::Local {
                    target_type: Some("Patient".to_owned()),
                    id: "p1".to_owned(),
                })],
                negated: false,
            }
        );
        // An Encounter is in its own compartment by `{def}`, which no search parameter indexes.
        let Clause::Index { param_ids, .. } = clause("Encounter", "e1", &types) else {
            panic!("not an index clause")
        };
        assert_eq!(param_ids, vec![param_id("Observation", "encounter")]);
    }
}
