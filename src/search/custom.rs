//! The search parameters a running server searches by: the built-in R4 ones plus the
//! `SearchParameter` resources stored on it. Each request takes the registry current when it
//! starts (an `Arc`, so a change never disturbs a search or write under way); creating, updating
//! or deleting a `SearchParameter` builds a new registry from all of them and swaps it in.
//! Resources written before a parameter existed get its index rows from a re-index job
//! (`interactions::operation_reindex`).

use super::registry::Registry;
use serde_json::Value;
use std::sync::{Arc, RwLock};

pub struct SearchParameters {
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    registry: Arc<Registry>,
    /// Counts the changes, so caches built from a registry (the CapabilityStatement) can tell it moved.
    generation: u64,
}

impl Default for SearchParameters {
    fn default() -> Self {
        SearchParameters {
            current: RwLock::new(Current {
                registry: Arc::new(Registry::r4().clone()),
                generation: 0,
            }),
        }
    }
}

impl SearchParameters {
    /// The registry to use for one request.
    pub fn current(&self) -> Arc<Registry> {
        self.read().registry
    }

    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The built-in parameters plus `definitions` (every stored, active `SearchParameter`); an error
    /// names a definition this server cannot search by.
    pub fn build(definitions: &[Value]) -> Result<Registry, String> {
        let active: Vec<Value> = definitions
            .iter()
            .filter(|d| d.get("status").and_then(Value::as_str) != Some("retired"))
            .cloned()
            .collect();
        Registry::r4().with_custom(&active)
    }

    /// Makes `registry` the current one.
    pub fn replace(&self, registry: Registry) {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        current.registry = Arc::new(registry);
        current.generation += 1;
    }

    fn read(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(code: &str, expression: &str) -> Value {
        json!({"resourceType": "SearchParameter", "url": format!("http://example.org/sp/{code}"),
            "name": code, "status": "active", "description": "x", "code": code,
            "base": ["Patient"], "type": "string", "expression": expression})
    }

    #[test]
    fn custom_parameters_join_the_built_in_ones_and_replace_their_code() {
        let parameters = SearchParameters::default();
        assert!(parameters.current().get("Patient", "nickname").is_none());
        let registry = SearchParameters::build(&[
            definition("nickname", "Patient.name.where(use = 'nickname').given"),
            definition("family", "Patient.name.family.first()"),
        ])
        .unwrap();
        parameters.replace(registry);
        assert_eq!(parameters.generation(), 1);
        let current = parameters.current();
        assert!(current.get("Patient", "nickname").is_some());
        assert_eq!(
            current.get("Patient", "family").unwrap().url,
            "http://example.org/sp/family",
            "a custom parameter replaces the built-in one of its code"
        );
        assert_eq!(
            current
                .params_for("Patient")
                .iter()
                .filter(|p| p.code == "family")
                .count(),
            1
        );
        assert!(current.get("Practitioner", "nickname").is_none());
        assert_eq!(current.custom_count(), 2);
        let mut retired = definition("old", "Patient.gender");
        retired["status"] = json!("retired");
        assert!(
            SearchParameters::build(&[retired])
                .unwrap()
                .get("Patient", "old")
                .is_none()
        );
    }

    #[test]
    fn definitions_that_cannot_be_searched_are_refused() {
        let bad_expression = definition("broken", "Patient.name.(");
        assert!(
            SearchParameters::build(&[bad_expression])
                .unwrap_err()
                .contains("broken")
        );
        let mut no_expression = definition("plain", "x");
        no_expression.as_object_mut().unwrap().remove("expression");
        assert!(SearchParameters::build(&[no_expression]).is_err());
        let mut bad_code = definition("a.b", "Patient.gender");
        bad_code["code"] = json!("a.b");
        assert!(SearchParameters::build(&[bad_code]).is_err());
        let mut bad_base = definition("x", "Patient.gender");
        bad_base["base"] = json!(["Nothing"]);
        assert!(SearchParameters::build(&[bad_base]).unwrap_err().contains("Nothing"));
    }
}
