//! Validation of every resource before it is written: the generated JSON Schema of its type
//! (`fhir-schemas/fhir.schema.json`, one compiled validator per type, compiled on first use) plus
//! the rules a schema cannot say (`rules.rs`): nested resources checked against their own types,
//! no nesting of contained resources, and safe XHTML narrative; references of a form the server
//! cannot resolve are warnings. Every problem is reported, each as an OperationOutcome issue with
//! a FHIRPath-style location.
//! Depends on `model` (the type model) and `error`; knows nothing of HTTP or storage.

mod rules;
mod schema;

use crate::error::{Error, ErrorKind, Issue, IssueCode, Result};
use serde_json::Value;

/// What validating a resource found: errors refuse it; warnings do not.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// Checks `resource` (a whole resource as JSON); `Err` lists every error found.
pub fn validate(resource: &Value) -> Result<()> {
    let found = findings(resource);
    if found.errors.is_empty() {
        Ok(())
    } else {
        Err(Error {
            kind: ErrorKind::Invalid,
            issues: found.errors,
            version_id: None,
            private_detail: None,
        })
    }
}

/// Every error and warning about `resource` (`$validate` reports both).
pub fn findings(resource: &Value) -> Findings {
    let mut found = Findings::default();
    check(resource, "", &mut found);
    found
}

/// Schema and rules for one resource at `prefix` (empty at the top, e.g. `Bundle.entry[0].resource`
/// for a nested one), appending what they find.
fn check(resource: &Value, prefix: &str, found: &mut Findings) {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        found.errors.push(issue(
            IssueCode::Required,
            "a resource needs a resourceType",
            join(prefix, "resourceType"),
        ));
        return;
    };
    let root = if prefix.is_empty() {
        resource_type.to_owned()
    } else {
        prefix.to_owned()
    };
    match schema::validator(resource_type) {
        Some(validator) => schema::check(validator, resource, &root, &mut found.errors),
        None => {
            found.errors.push(issue(
                IssueCode::NotSupported,
                format!("'{resource_type}' is not a FHIR R4 resource type"),
                join(prefix, "resourceType"),
            ));
            return;
        }
    }
    rules::check(resource, resource_type, &root, found);
    if resource_type == "TestScript" {
        lenient_test_script(found);
    }
}

/// R4 makes an assert's `warningOnly` required, but TestScripts written for Touchstone leave it
/// out to mean `false` (the public mCODE scripts do), and conformance users keep their scripts on
/// the server: a missing `warningOnly` is a warning, not a reason to refuse the script.
fn lenient_test_script(found: &mut Findings) {
    let (lenient, errors): (Vec<Issue>, Vec<Issue>) = std::mem::take(&mut found.errors).into_iter().partition(|i| {
        i.code == IssueCode::Required
            && i.expression
                .as_deref()
                .is_some_and(|e| e.ends_with(".assert.warningOnly"))
    });
    found.errors = errors;
    found.warnings.extend(lenient.into_iter().map(|mut issue| {
        issue.diagnostics = "warningOnly is required by R4; taken as false".to_owned();
        issue
    }));
}

fn join(prefix: &str, element: &str) -> String {
    if prefix.is_empty() {
        element.to_owned()
    } else {
        format!("{prefix}.{element}")
    }
}

fn issue(code: IssueCode, diagnostics: impl Into<String>, expression: String) -> Issue {
    Issue {
        code,
        diagnostics: diagnostics.into(),
        expression: Some(expression),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(resource: Value) -> Vec<(IssueCode, String)> {
        match validate(&resource) {
            Ok(()) => Vec::new(),
            Err(e) => e
                .issues
                .into_iter()
                .map(|i| (i.code, i.expression.unwrap_or_default()))
                .collect(),
        }
    }

    #[test]
    fn a_plain_patient_is_valid() {
        let patient = json!({"resourceType": "Patient", "id": "p", "active": true,
            "name": [{"family": "Chalmers", "given": ["Peter", "James"]}], "birthDate": "1974-12-25",
            "deceasedBoolean": false, "gender": "male"});
        assert_eq!(problems(patient), vec![]);
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let bad = json!({"resourceType": "Patient", "foo": 1, "active": "yes",
            "name": [{"given": ["a", ""]}], "birthDate": "1974-13-01", "gender": "fish",
            "deceasedBoolean": true, "deceasedDateTime": "2020-01-01"});
        let found = problems(bad);
        let at: Vec<&str> = found.iter().map(|(_, e)| e.as_str()).collect();
        for expected in [
            "Patient.foo",
            "Patient.active",
            "Patient.name[0].given[1]",
            "Patient.birthDate",
            "Patient.gender",
            "Patient.deceasedDateTime",
        ] {
            assert!(at.contains(&expected), "missing {expected} in {found:?}");
        }
    }

    #[test]
    fn strings_follow_xml_schema_white_space_rules() {
        // A no-break space is not white space in XML Schema's \s, so it is an ordinary character.
        let patient = json!({"resourceType": "Patient", "name": [{"text": "A\u{a0}B"}], "gender": "male"});
        assert_eq!(problems(patient), vec![]);
        let tab_in_code = json!({"resourceType": "Patient", "gender": "ma\tle"});
        assert!(!problems(tab_in_code).is_empty());
    }

    #[test]
    fn required_elements_accept_the_extension_only_form() {
        let missing = problems(json!({"resourceType": "Observation", "code": {"text": "x"}}));
        assert_eq!(missing, vec![(IssueCode::Required, "Observation.status".to_owned())]);
        let extension_only = json!({"resourceType": "Observation", "code": {"text": "x"},
            "_status": {"extension": [{"url": "http://example.org/x", "valueString": "unknown"}]}});
        assert_eq!(problems(extension_only), vec![]);
    }

    #[test]
    fn nested_resources_are_checked_against_their_own_type() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "active": "no"}}]});
        let found = problems(bundle);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "Bundle.entry[0].resource.active");
    }
}
