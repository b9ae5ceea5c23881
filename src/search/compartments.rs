//! The R4 compartment definitions (generated `search-params/compartments.json`): which reference
//! parameters of each resource type place it in a Patient, Encounter, RelatedPerson, Practitioner
//! or Device compartment. Compartment search (`Patient/123/Observation`) is a search on those.

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

#[cfg(test)]
mod tests {
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
}
