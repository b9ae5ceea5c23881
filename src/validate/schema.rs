//! The JSON Schema half of validation: one compiled validator per resource type, built on first
//! use against the generated document (so start-up costs nothing), and the translation of its errors
//! into OperationOutcome issues with FHIRPath-style locations.

use crate::error::{Issue, IssueCode};
use crate::model::structure::{TypeKind, TypeModel};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

const SCHEMA_JSON: &str = include_str!("../../fhir-schemas/fhir.schema.json");

/// The generated document's `$id`: validators refer into it by this URI.
const SCHEMA_ID: &str = "urn:fhir-server:r4:schema";

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::from_str(SCHEMA_JSON).expect("fhir-schemas/fhir.schema.json is generated and valid")
    })
}

/// The document, indexed once for every validator to resolve its references in. (Compiling
/// each type against a copy of the whole document spent half of each compile on the copy.)
fn registry() -> &'static jsonschema::Registry<'static> {
    static REGISTRY: OnceLock<jsonschema::Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        jsonschema::Registry::new()
            .add(SCHEMA_ID, document())
            .and_then(|builder| builder.prepare())
            .expect("the generated schema indexes")
    })
}

/// The compiled validator of a concrete resource type, or `None` for anything else.
pub(super) fn validator(resource_type: &str) -> Option<&'static jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, OnceLock<jsonschema::Validator>>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        TypeModel::r4()
            .resource_types()
            .map(|name| (name.to_owned(), OnceLock::new()))
            .collect()
    });
    let slot = validators.get(resource_type)?;
    Some(slot.get_or_init(|| {
        let schema = serde_json::json!({ "$ref": format!("{SCHEMA_ID}#/$defs/{resource_type}") });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(registry())
            .build(&schema)
            .expect("the generated schema compiles")
    }))
}

pub(super) fn check(validator: &jsonschema::Validator, resource: &Value, root: &str, issues: &mut Vec<Issue>) {
    for error in validator.iter_errors(resource) {
        let location = fhirpath_location(root, &error.instance_path().to_string());
        let (code, diagnostics, expression) = match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    issues.push(Issue {
                        code: IssueCode::Structure,
                        diagnostics: format!("unknown element '{name}'"),
                        expression: Some(format!("{location}.{name}")),
                    });
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                (
                    IssueCode::Required,
                    format!("'{name}' is required"),
                    format!("{location}.{name}"),
                )
            }
            ValidationErrorKind::AnyOf { context } if error.schema_path().to_string().contains("/allOf/") => {
                // A required primitive or choice: any of its spellings would do (`status`,
                // `_status`; `valueQuantity`, `valueString`, …). Name them.
                let mut names: Vec<String> = context
                    .iter()
                    .flatten()
                    .filter_map(|e| match e.kind() {
                        ValidationErrorKind::Required { property } => property.as_str().map(str::to_owned),
                        _ => None,
                    })
                    .collect();
                names.dedup();
                let first = names
                    .first()
                    .map(|n| n.trim_start_matches('_').to_owned())
                    .unwrap_or_default();
                let diagnostics = format!("'{first}' is required (one of: {})", names.join(", "));
                (IssueCode::Required, diagnostics, format!("{location}.{first}"))
            }
            ValidationErrorKind::Not { .. } => {
                // From `dependentSchemas/<variant>/not`: name the variant that has company.
                let schema_path = error.schema_path().to_string();
                let variant = schema_path
                    .split("/dependentSchemas/")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next());
                let expression = variant.map_or(location.clone(), |v| format!("{location}.{v}"));
                (
                    IssueCode::Structure,
                    "only one type of a choice element ([x]) may be present".to_owned(),
                    expression,
                )
            }
            ValidationErrorKind::Enum { .. } => (
                IssueCode::Value,
                format!("{} is not a code of the required value set", error.instance()),
                location,
            ),
            ValidationErrorKind::MinItems { .. }
            | ValidationErrorKind::MinProperties { .. }
            | ValidationErrorKind::MinLength { .. } => (
                IssueCode::Structure,
                "empty values are not allowed in FHIR JSON (leave the element out)".to_owned(),
                location,
            ),
            ValidationErrorKind::Type { .. } => (IssueCode::Structure, error.to_string(), location),
            _ => (IssueCode::Value, error.to_string(), location),
        };
        issues.push(Issue {
            code,
            diagnostics,
            expression: Some(expression),
        });
    }
}

/// `/name/0/given/1` under `Patient` → `Patient.name[0].given[1]`.
fn fhirpath_location(root: &str, pointer: &str) -> String {
    let mut out = root.to_owned();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

impl TypeModel {
    /// Names of the concrete resource types.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.all()
            .filter(|t| t.kind == TypeKind::Resource && !t.is_abstract)
            .map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pointers_become_fhirpath_locations() {
        assert_eq!(
            super::fhirpath_location("Patient", "/name/0/given/1"),
            "Patient.name[0].given[1]"
        );
        assert_eq!(super::fhirpath_location("Patient", ""), "Patient");
    }
}
