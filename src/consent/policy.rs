//! A Consent resource read into the rules the evaluator applies: whether it applies to a patient
//! now, its base policy, and its provisions (R4 consent.html: "a base policy … followed by a
//! listing of exceptions to that policy").

use super::{Effect, Window};
use chrono::{DateTime, Utc};
use serde_json::Value;

const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";

/// One Consent, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `Consent/[id]`.
    pub reference: String,
    /// The patient it is about (`Patient/[id]`, as written relative or made relative).
    pub patient: Option<String>,
    pub active: bool,
    /// `scope` is `patient-privacy`.
    pub privacy: bool,
    /// `Consent.dateTime`: when it was agreed, which orders several consents (none: oldest).
    pub date_time: Option<DateTime<Utc>>,
    /// From `policyRule` (OPTIN permits, OPTOUT denies), else the root provision's `type`, else deny.
    pub base: Effect,
    pub root: Option<Provision>,
}

/// A provision: conditions, each present one to be met (any of its values), and what it decides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provision {
    /// `type`: `permit` or `deny` (the root has none in R4).
    pub effect: Option<Effect>,
    /// `period`: when the rule is in force.
    pub period: Option<Window>,
    /// Actors in the recipient roles (or another role): the caller must be one.
    pub recipients: Vec<String>,
    /// Actors in the author role (`AUT`): the resource must be authored by one.
    pub authors: Vec<String>,
    /// Actors in the custodian role (`CST`): the resource must be kept by one.
    pub custodians: Vec<String>,
    /// `action` codes.
    pub actions: Vec<String>,
    /// `securityLabel` codes.
    pub labels: Vec<String>,
    /// `purpose` codes.
    pub purposes: Vec<String>,
    /// `class`: resource types.
    pub classes: Vec<String>,
    /// `code`: `(system, code)` pairs.
    pub codes: Vec<(Option<String>, String)>,
    /// `dataPeriod`: the resource's clinical date must lie within it.
    pub data_period: Option<Window>,
    /// `data`: `(meaning, reference)`.
    pub data: Vec<(String, String)>,
    pub children: Vec<Provision>,
}

impl Provision {
    /// Whether the provision selects anything (a root with none only bounds time or holds
    /// nested rules, and is transparent: its effect is the base).
    pub fn selects(&self) -> bool {
        !(self.recipients.is_empty()
            && self.authors.is_empty()
            && self.custodians.is_empty()
            && self.actions.is_empty()
            && self.labels.is_empty()
            && self.purposes.is_empty()
            && self.classes.is_empty()
            && self.codes.is_empty()
            && self.data_period.is_none()
            && self.data.is_empty())
    }
}

impl Policy {
    /// Reads a Consent resource; `own_base` makes absolute references to this server relative.
    pub fn read(consent: &Value, own_base: &str) -> Policy {
        let id = consent["id"].as_str().unwrap_or_default();
        let root = consent.get("provision").map(|p| provision(p, own_base));
        let rule = codings(&consent["policyRule"]);
        let base = if rule.iter().any(|(s, c)| s.as_deref() == Some(ACT_CODE) && c == "OPTIN") {
            Effect::Permit
        } else if rule
            .iter()
            .any(|(s, c)| s.as_deref() == Some(ACT_CODE) && c == "OPTOUT")
        {
            Effect::Deny
        } else {
            root.as_ref().and_then(|r| r.effect).unwrap_or(Effect::Deny)
        };
        Policy {
            reference: format!("Consent/{id}"),
            patient: consent["patient"]["reference"].as_str().map(|r| relative(r, own_base)),
            active: consent["status"] == "active",
            privacy: codings(&consent["scope"])
                .iter()
                .any(|(s, c)| s.as_deref() == Some(CONSENT_SCOPE) && c == "patient-privacy"),
            date_time: consent["dateTime"].as_str().and_then(Window::start_of),
            base,
            root,
        }
    }

    /// Whether the consent governs `patient` (`Patient/[id]`) at `now`: about that patient,
    /// active, of the patient-privacy scope, and within its root provision's period if it has one.
    pub fn applies(&self, patient: &str, now: DateTime<Utc>) -> bool {
        self.active
            && self.privacy
            && self.patient.as_deref() == Some(patient)
            && self
                .root
                .as_ref()
                .and_then(|r| r.period)
                .is_none_or(|period| period.contains(now))
    }
}

fn provision(value: &Value, own_base: &str) -> Provision {
    let mut provision = Provision {
        effect: match value["type"].as_str() {
            Some("permit") => Some(Effect::Permit),
            Some("deny") => Some(Effect::Deny),
            _ => None,
        },
        period: Window::of_period(&value["period"]),
        data_period: Window::of_period(&value["dataPeriod"]),
        actions: concept_codes(&value["action"]),
        labels: list(&value["securityLabel"])
            .map(|c| c["code"].as_str().unwrap_or_default().to_owned())
            .collect(),
        purposes: list(&value["purpose"])
            .map(|c| c["code"].as_str().unwrap_or_default().to_owned())
            .collect(),
        classes: list(&value["class"])
            .filter(|c| c["system"].as_str().is_none_or(|s| s == RESOURCE_TYPES))
            .filter_map(|c| c["code"].as_str().map(str::to_owned))
            .collect(),
        codes: list(&value["code"]).flat_map(codings).collect(),
        data: list(&value["data"])
            .filter_map(|d| {
                let reference = d["reference"]["reference"].as_str()?;
                Some((d["meaning"].as_str()?.to_owned(), relative(reference, own_base)))
            })
            .collect(),
        children: list(&value["provision"]).map(|p| provision(p, own_base)).collect(),
        ..Provision::default()
    };
    for actor in list(&value["actor"]) {
        let Some(reference) = actor["reference"]["reference"].as_str() else {
            continue;
        };
        let reference = relative(reference, own_base);
        let roles = codings(&actor["role"]);
        if roles.iter().any(|(_, c)| c == "AUT") {
            provision.authors.push(reference);
        } else if roles.iter().any(|(_, c)| c == "CST") {
            provision.custodians.push(reference);
        } else {
            provision.recipients.push(reference);
        }
    }
    provision
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// The codings of a CodeableConcept (or of a list of Codings given as one).
fn codings(concept: &Value) -> Vec<(Option<String>, String)> {
    list(&concept["coding"])
        .filter_map(|c| Some((c["system"].as_str().map(str::to_owned), c["code"].as_str()?.to_owned())))
        .collect()
}

fn concept_codes(concepts: &Value) -> Vec<String> {
    list(concepts).flat_map(codings).map(|(_, code)| code).collect()
}

/// `reference` without this server's base or a version: `Type/id` for what this server holds.
pub fn relative(reference: &str, own_base: &str) -> String {
    let reference = reference
        .strip_prefix(own_base)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference);
    match reference.split_once("/_history/") {
        Some((plain, _)) => plain.to_owned(),
        None => reference.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_base_roles_and_nesting() {
        let consent = json!({"resourceType": "Consent", "id": "c", "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
            "patient": {"reference": "https://h/fhir/Patient/p1"}, "dateTime": "2020-05-01",
            "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]},
            "provision": {"actor": [{"role": {"coding": [{"code": "CST"}]}, "reference": {"reference": "Organization/o"}},
                                    {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Practitioner/d"}}],
                "provision": [{"type": "deny", "class": [{"system": RESOURCE_TYPES, "code": "Observation"}]}]}});
        let policy = Policy::read(&consent, "https://h/fhir");
        assert_eq!(policy.patient.as_deref(), Some("Patient/p1"));
        assert_eq!(policy.base, Effect::Deny);
        let root = policy.root.as_ref().unwrap();
        assert_eq!(root.custodians, ["Organization/o"]);
        assert_eq!(root.recipients, ["Practitioner/d"]);
        assert_eq!(root.children[0].effect, Some(Effect::Deny));
        assert_eq!(root.children[0].classes, ["Observation"]);
        assert!(policy.applies("Patient/p1", Utc::now()));
        assert!(!policy.applies("Patient/p2", Utc::now()));
    }

    #[test]
    fn other_statuses_scopes_and_periods_do_not_apply() {
        let base = json!({"resourceType": "Consent", "id": "c", "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
            "patient": {"reference": "Patient/p1"},
            "provision": {"period": {"start": "2015-01-01", "end": "2015-02-01"}}});
        let now = Utc::now();
        assert!(
            !Policy::read(&base, "").applies("Patient/p1", now),
            "the period is past"
        );
        let mut open = base.clone();
        open["provision"] = json!({"period": {"start": "2015-01-01"}});
        assert!(Policy::read(&open, "").applies("Patient/p1", now));
        for (field, value) in [
            ("status", json!("draft")),
            (
                "scope",
                json!({"coding": [{"system": CONSENT_SCOPE, "code": "research"}]}),
            ),
        ] {
            let mut other = open.clone();
            other[field] = value;
            assert!(!Policy::read(&other, "").applies("Patient/p1", now), "{field}");
        }
    }
}
