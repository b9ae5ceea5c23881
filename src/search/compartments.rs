//! The R4 compartment definitions (generated `search-params/compartments.json`): which reference
//! parameters of each resource type place it in a Patient, Encounter, RelatedPerson, Practitioner
//! or Device compartment. Compartment search (`Patient/123/Observation`) is a search on those, and
//! `clause` is its condition; the search interaction checks the compartment and id and adds it.

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
        matches: vec![ValueMatch::Reference(ReferenceMatch::Local {
            target_type: Some(compartment.to_owned()),
            id: id.to_owned(),
        })],
        negated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
