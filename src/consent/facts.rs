//! What a consent's provisions ask of a resource, read from the resource itself: its type and
//! reference, its codes, its confidentiality, its clinical date, who authored it, who keeps it,
//! and what it refers to.

use super::{Facts, Window, policy::relative};
use serde_json::Value;

/// Per type: the elements naming its authors, its custodians, and its clinical date (a choice
/// element given by its name without the type, as `effective` for `effective[x]`). Types not
/// listed have no authors, custodians or date: provisions about those do not match them.
/// A type, its author elements, its custodian elements and its clinical-date elements.
type Elements = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const ELEMENTS: &[Elements] = &[
    ("Observation", &["performer"], &[], &["effective"]),
    (
        "DiagnosticReport",
        &["performer", "resultsInterpreter"],
        &[],
        &["effective"],
    ),
    (
        "DocumentReference",
        &["author", "authenticator"],
        &["custodian"],
        &["context.period", "date"],
    ),
    ("Composition", &["author", "attester.party"], &["custodian"], &["date"]),
    ("Condition", &["asserter", "recorder"], &[], &["onset", "recordedDate"]),
    (
        "Procedure",
        &["performer.actor", "recorder", "asserter"],
        &[],
        &["performed"],
    ),
    ("MedicationRequest", &["requester", "recorder"], &[], &["authoredOn"]),
    ("MedicationStatement", &["informationSource"], &[], &["effective"]),
    ("MedicationAdministration", &["performer.actor"], &[], &["effective"]),
    ("Immunization", &["performer.actor"], &[], &["occurrence"]),
    ("AllergyIntolerance", &["recorder", "asserter"], &[], &["recordedDate"]),
    ("ServiceRequest", &["requester"], &[], &["authoredOn"]),
    (
        "Encounter",
        &["participant.individual"],
        &["serviceProvider"],
        &["period"],
    ),
    ("CarePlan", &["author", "contributor"], &[], &["period"]),
    ("QuestionnaireResponse", &["author"], &[], &["authored"]),
    ("Task", &["requester"], &[], &["authoredOn"]),
    ("Patient", &[], &["managingOrganization"], &[]),
];

/// The facts of `resource` (of `resource_type` with `id`), on a server whose base is `own_base`.
pub fn of(resource_type: &str, id: &str, resource: &Value, own_base: &str) -> Facts {
    let (authors, custodians, dates) = ELEMENTS
        .iter()
        .find(|(t, ..)| *t == resource_type)
        .map_or((&[][..], &[][..], &[][..]), |(_, a, c, d)| (*a, *c, *d));
    let references_at = |paths: &[&str]| -> Vec<String> {
        paths
            .iter()
            .flat_map(|path| values_at(resource, path))
            .filter_map(|v| v["reference"].as_str())
            .map(|r| relative(r, own_base))
            .collect()
    };
    let mut codes = Vec::new();
    let mut references = Vec::new();
    collect(resource, &mut codes, &mut references, own_base);
    let authors = references_at(authors);
    // Without a custodian element, the organizations that authored it keep it.
    let mut custodians = references_at(custodians);
    if custodians.is_empty() {
        custodians = authors
            .iter()
            .filter(|a| a.starts_with("Organization/"))
            .cloned()
            .collect();
    }
    Facts {
        resource_type: resource_type.to_owned(),
        reference: Some(format!("{resource_type}/{id}")),
        codes: Some(codes),
        labels: Some(
            resource["meta"]["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["code"].as_str().map(str::to_owned))
                .collect(),
        ),
        clinical: Some(
            dates
                .iter()
                .flat_map(|path| values_at(resource, path))
                .find_map(Window::of_date_or_period),
        ),
        authors: Some(authors),
        custodians: Some(custodians),
        references: Some(references),
    }
}

/// The values at a dotted `path` (arrays flattened; the last step may name a choice element
/// without its type).
fn values_at<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    let steps: Vec<&str> = path.split('.').collect();
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let mut next = Vec::new();
        for value in current {
            let Some(object) = value.as_object() else { continue };
            let found: Vec<&Value> = match object.get(*step) {
                Some(v) => vec![v],
                None if last => object
                    .iter()
                    .filter(|(k, _)| k.starts_with(step) && k[step.len()..].starts_with(char::is_uppercase))
                    .map(|(_, v)| v)
                    .collect(),
                None => Vec::new(),
            };
            for v in found {
                match v {
                    Value::Array(items) => next.extend(items),
                    other => next.push(other),
                }
            }
        }
        current = next;
    }
    current
}

/// Every coding outside `meta`, and every reference, in `value` (without recursion).
fn collect(value: &Value, codes: &mut Vec<(Option<String>, String)>, references: &mut Vec<String>, own_base: &str) {
    let mut pending = vec![(value, false)];
    while let Some((value, in_meta)) = pending.pop() {
        match value {
            Value::Object(object) => {
                if !in_meta
                    && let Some(code) = object.get("code").and_then(Value::as_str)
                    && (object.contains_key("system") || object.contains_key("display"))
                {
                    codes.push((
                        object.get("system").and_then(Value::as_str).map(str::to_owned),
                        code.to_owned(),
                    ));
                }
                if let Some(reference) = object.get("reference").and_then(Value::as_str) {
                    references.push(relative(reference, own_base));
                }
                for (key, member) in object {
                    pending.push((member, in_meta || key == "meta"));
                }
            }
            Value::Array(items) => pending.extend(items.iter().map(|item| (item, in_meta))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_authors_custodians_dates_codes_labels_and_references() {
        let document = json!({"resourceType": "DocumentReference", "id": "d",
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
                     "tag": [{"system": "http://x", "code": "not-a-data-code"}]},
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "subject": {"reference": "Patient/p1"}, "author": [{"reference": "https://h/fhir/Practitioner/a/_history/2"}],
            "custodian": {"reference": "Organization/o"}, "context": {"period": {"start": "2020-01-01", "end": "2020-01-31"}}});
        let facts = of("DocumentReference", "d", &document, "https://h/fhir");
        assert_eq!(facts.authors.as_deref(), Some(&["Practitioner/a".to_owned()][..]));
        assert_eq!(facts.custodians.as_deref(), Some(&["Organization/o".to_owned()][..]));
        assert_eq!(facts.labels.as_deref(), Some(&["R".to_owned()][..]));
        assert!(
            facts
                .codes
                .as_ref()
                .unwrap()
                .contains(&(Some("http://loinc.org".into()), "11488-4".into()))
        );
        assert!(
            !facts
                .codes
                .as_ref()
                .unwrap()
                .iter()
                .any(|(_, c)| c == "not-a-data-code")
        );
        assert!(facts.references.as_ref().unwrap().contains(&"Patient/p1".to_owned()));
        let clinical = facts.clinical.unwrap().unwrap();
        assert!(clinical.start.is_some() && clinical.end.is_some());
        let observation = json!({"resourceType": "Observation", "effectiveDateTime": "2021-03-04T10:00:00Z",
            "performer": [{"reference": "Practitioner/x"}]});
        let facts = of("Observation", "o", &observation, "");
        assert!(facts.clinical.unwrap().is_some(), "effective[x]");
        assert_eq!(facts.authors.unwrap(), ["Practitioner/x"]);
    }
}
