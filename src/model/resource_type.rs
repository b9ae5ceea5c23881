//! The R4 resource types, read from the generated `fhir-schemas/resource-types.json`.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

/// The generated list (see `definitions::generate`): every concrete R4 resource type.
const RESOURCE_TYPES_JSON: &str = include_str!("../../fhir-schemas/resource-types.json");

#[derive(serde::Deserialize)]
struct ResourceTypesFile {
    #[serde(rename = "resourceTypes")]
    resource_types: Vec<String>,
}

fn known_types() -> &'static HashSet<&'static str> {
    static TYPES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    TYPES.get_or_init(|| all_names().iter().copied().collect())
}

fn all_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let file: ResourceTypesFile =
            serde_json::from_str(RESOURCE_TYPES_JSON).expect("fhir-schemas/resource-types.json is generated and valid");
        file.resource_types
            .into_iter()
            .map(|name| &*Box::leak(name.into_boxed_str()))
            .collect()
    })
}

/// A concrete FHIR R4 resource type such as `Patient`; only known types can be constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(&'static str);

impl ResourceType {
    pub fn parse(name: &str) -> Option<ResourceType> {
        known_types().get(name).map(|&known| ResourceType(known))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Every R4 resource type, in alphabetical order.
    pub fn all() -> impl Iterator<Item = ResourceType> {
        all_names().iter().map(|&name| ResourceType(name))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_r4_resource_types_and_nothing_else() {
        assert_eq!(ResourceType::parse("Patient").unwrap().as_str(), "Patient");
        assert!(ResourceType::parse("patient").is_none());
        assert!(
            ResourceType::parse("Resource").is_none(),
            "abstract types are not resource types"
        );
        assert!(ResourceType::parse("DomainResource").is_none());
        assert!(
            ResourceType::parse("HumanName").is_none(),
            "data types are not resource types"
        );
        assert_eq!(
            ResourceType::all().count(),
            146,
            "R4 4.0.1 defines 146 concrete resource types"
        );
    }
}
