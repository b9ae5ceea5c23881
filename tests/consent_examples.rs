//! The consent decision on HL7's own R4 Consent examples (`consent-example-Out`, `-notThis`,
//! `-notOrg`, `-notThem`, `-notAuthor`, `-notTime`, `-Emergency`, from
//! `../shared/fhir-r4/examples-4.0.1`), each asked by the requesters its narrative names about
//! resources it governs. The expectations come from the examples' narratives; where an example's
//! encoding says otherwise than its narrative, the test says so and asserts the encoding.

use chrono::{DateTime, TimeZone, Utc};
use fhir_server::consent::policy::Policy;
use fhir_server::consent::{Combine, Decision, Effect, Reason, Requester, Settings, decide, facts};
use serde_json::{Value, json};
use std::collections::HashMap;

#[path = "common/shared.rs"]
mod shared;

/// HL7's example, or `None` when `../shared` is absent outside CI (see `shared`).
fn example(name: &str) -> Option<Value> {
    let path = shared::shared(&format!("fhir-r4/examples-4.0.1/Consent-consent-example-{name}.json"))?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

const SETTINGS: Settings = Settings {
    default: Effect::Permit,
    combine: Combine::Newest,
    break_glass: true,
};

fn requester(actors: &[&str], purpose: &str) -> Requester {
    Requester {
        actors: actors.iter().map(|a| a.to_string()).collect(),
        purposes: vec![purpose.to_owned()],
    }
}

/// The resources the examples govern, all Patient/f001's.
fn resource(name: &str) -> (String, String, Value) {
    let (kind, body) = match name {
        // Performed at the hospital, Organization/f001, in 2013.
        "obsOrg" => (
            "Observation",
            json!({"performer": [{"reference": "Organization/f001"}], "effectiveDateTime": "2013-04-02"}),
        ),
        // Performed by someone with no role at the hospital, in January 2015.
        "obsPlain" => (
            "Observation",
            json!({"performer": [{"reference": "Practitioner/f005"}], "effectiveDateTime": "2015-01-15"}),
        ),
        // A document the hospital keeps.
        "docCst" => (
            "DocumentReference",
            json!({"custodian": {"reference": "Organization/f001"}, "date": "2014-06-01T00:00:00Z"}),
        ),
        "task" => (
            "Task",
            json!({"focus": {"reference": "MedicationRequest/medrx"}, "for": {"reference": "Patient/f001"}}),
        ),
        "medrx" => (
            "MedicationRequest",
            json!({"requester": {"reference": "Practitioner/example"}}),
        ),
        "dispense" => (
            "MedicationDispense",
            json!({"authorizingPrescription": [{"reference": "MedicationRequest/medrx"}]}),
        ),
        "patient" => (
            "Patient",
            json!({"managingOrganization": {"reference": "Organization/f001"}}),
        ),
        other => panic!("no fixture {other}"),
    };
    let id = if name == "task" {
        "example3".to_owned()
    } else {
        name.to_owned()
    };
    let mut body = body;
    body["resourceType"] = json!(kind);
    body["id"] = json!(id);
    body["subject"] = json!({"reference": "Patient/f001"});
    (kind.to_owned(), id, body)
}

fn at(consents: &[Value], who: &Requester, name: &str, settings: &Settings, now: DateTime<Utc>) -> Decision {
    let policies: Vec<Policy> = consents.iter().map(|c| Policy::read(c, "https://h/fhir")).collect();
    let (kind, id, body) = resource(name);
    let facts = facts::of(&kind, &id, &body, "https://h/fhir");
    // The Task names MedicationRequest/medrx: `related` reaches it.
    let related: HashMap<String, Vec<String>> = HashMap::from([(
        "Task/example3".to_owned(),
        vec!["MedicationRequest/medrx".to_owned(), "Patient/f001".to_owned()],
    )]);
    decide(&policies, "Patient/f001", who, &facts, &related, settings, now)
}

fn decision(consent: &Value, who: &Requester, name: &str) -> Decision {
    at(std::slice::from_ref(consent), who, name, &SETTINGS, Utc::now())
}

#[test]
fn not_them_withholds_everything_from_the_ex_spouse_only() {
    // "she does not want her ex-spouse to have any access to her IIHI"
    let Some(consent) = example("notThem") else {
        return;
    };
    let spouse = requester(&["Practitioner/f204"], "TREAT");
    for name in ["obsOrg", "obsPlain", "docCst", "patient"] {
        let d = decision(&consent, &spouse, name);
        assert_eq!(d.effect, Effect::Deny, "{name}: {d:?}");
        assert_eq!(d.consent.as_deref(), Some("Consent/consent-example-notThem"));
        assert_eq!(d.provision.as_deref(), Some("Consent.provision"));
    }
    let other = requester(&["Practitioner/example"], "TREAT");
    let d = decision(&consent, &other, "obsPlain");
    assert_eq!((d.effect, d.reason), (Effect::Permit, Reason::Base), "{d:?}");
}

#[test]
fn not_org_withholds_from_the_organization_and_its_members() {
    // "withdraw/withhold consent to disclose any instance of his health information to Good Health Clinic"
    let Some(consent) = example("notOrg") else {
        return;
    };
    // A member of the organization acts as it too (the request path adds it through PractitionerRole).
    let member = requester(
        &["Practitioner/example", "PractitionerRole/example", "Organization/f001"],
        "TREAT",
    );
    for name in ["obsOrg", "obsPlain", "docCst"] {
        assert_eq!(decision(&consent, &member, name).effect, Effect::Deny, "{name}");
    }
    let outsider = requester(&["Practitioner/f204"], "TREAT");
    assert_eq!(decision(&consent, &outsider, "obsPlain").effect, Effect::Permit);
}

#[test]
fn not_author_withholds_what_the_hospital_collected_from_every_provider() {
    // "all of the PHI collected at the Good Health Psychiatric Hospital restricted from disclosure to every provider"
    let Some(consent) = example("notAuthor") else {
        return;
    };
    let provider = requester(&["Practitioner/example"], "TREAT");
    for name in ["docCst", "patient", "obsOrg"] {
        assert_eq!(
            decision(&consent, &provider, name).effect,
            Effect::Deny,
            "{name}: kept by f001"
        );
    }
    // Not collected there.
    assert_eq!(decision(&consent, &provider, "obsPlain").effect, Effect::Permit);
}

#[test]
fn not_this_withholds_the_order_and_what_it_names() {
    // "withhold consent to disclose the order and all results associated with that specific order
    // from all other providers" — encoded as `data` of meaning `related`: the Task and what it names.
    let Some(consent) = example("notThis") else {
        return;
    };
    let provider = requester(&["Practitioner/example"], "TREAT");
    for name in ["task", "medrx"] {
        assert_eq!(decision(&consent, &provider, name).effect, Effect::Deny, "{name}");
    }
    // What merely refers to the order is not `related` (that would be `dependents`).
    for name in ["dispense", "obsPlain"] {
        assert_eq!(decision(&consent, &provider, name).effect, Effect::Permit, "{name}");
    }
}

#[test]
fn not_time_bounds_the_consent_itself_and_data_period_bounds_the_data() {
    let Some(consent) = example("notTime") else {
        return;
    };
    let provider = requester(&["Practitioner/example"], "TREAT");
    // Its root `period` (January 2015) is when the consent is in force: not now.
    let d = decision(&consent, &provider, "obsPlain");
    assert_eq!((d.effect, d.reason), (Effect::Permit, Reason::Default), "{d:?}");
    // Within it, the root selects nothing: the base (OPTIN) holds.
    let january = Utc.with_ymd_and_hms(2015, 1, 20, 12, 0, 0).unwrap();
    let d = at(
        std::slice::from_ref(&consent),
        &provider,
        "obsPlain",
        &SETTINGS,
        january,
    );
    assert_eq!((d.effect, d.reason), (Effect::Permit, Reason::Base), "{d:?}");
    // As the narrative means it ("withhold disclosure of all data from a timeframe"): dataPeriod.
    let mut narrated = consent.clone();
    let period = narrated["provision"].as_object_mut().unwrap().remove("period").unwrap();
    narrated["provision"]["dataPeriod"] = period;
    assert_eq!(
        decision(&narrated, &provider, "obsPlain").effect,
        Effect::Deny,
        "dated 2015-01-15"
    );
    assert_eq!(
        decision(&narrated, &provider, "obsOrg").effect,
        Effect::Permit,
        "dated 2013"
    );
}

#[test]
fn emergency_permits_only_by_break_glass() {
    // "An overall Deny consent Directive, with an exception "Permit" of purposeOfUse "ETREAT" at
    // "Good Health" hospital, and exception "Deny" all other purposeOfUse from good health hospital."
    let Some(consent) = example("Emergency") else {
        return;
    };
    let provider = requester(&["Practitioner/example"], "TREAT");
    for name in ["obsOrg", "docCst", "obsPlain"] {
        assert_eq!(decision(&consent, &provider, name).effect, Effect::Deny, "{name}");
    }
    let emergency = requester(&["Practitioner/example"], "ETREAT");
    let d = decision(&consent, &emergency, "docCst");
    assert_eq!((d.effect, d.reason), (Effect::Permit, Reason::BreakGlass), "{d:?}");
    // Without break-glass the nested deny (which names no purpose) shadows the ETREAT permit.
    let strict = Settings {
        break_glass: false,
        ..SETTINGS
    };
    let d = at(
        std::slice::from_ref(&consent),
        &emergency,
        "docCst",
        &strict,
        Utc::now(),
    );
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.provision.as_deref(), Some("Consent.provision.provision[0]"), "{d:?}");
}

#[test]
fn out_as_encoded_and_as_narrated() {
    // "wishes to have no data at the Good Health Psychiatric Hospital available for normal treatment use"
    let Some(consent) = example("Out") else {
        return;
    };
    let provider = requester(&["Practitioner/example"], "TREAT");
    // OPTOUT denies; the root, an exception to it, permits what the hospital keeps. The
    // narrative means the opposite for the hospital's data; notAuthor encodes that intent.
    assert_eq!(decision(&consent, &provider, "obsPlain").effect, Effect::Deny);
    for name in ["docCst", "obsOrg"] {
        assert_eq!(
            decision(&consent, &provider, name).effect,
            Effect::Permit,
            "{name}: the encoding, not the narrative"
        );
    }
    let mut narrated = consent.clone();
    narrated["policyRule"]["coding"][0]["code"] = json!("OPTIN");
    assert_eq!(decision(&narrated, &provider, "docCst").effect, Effect::Deny);
    assert_eq!(decision(&narrated, &provider, "obsPlain").effect, Effect::Permit);
}

#[test]
fn several_consents_combine_newest_first_or_deny_first() {
    let Some(not_them) = example("notThem") else {
        return;
    };
    let Some(mut later) = example("notTime") else {
        return;
    };
    later["id"] = json!("later");
    later["dateTime"] = json!("2020-01-01");
    later["provision"] = json!({"period": {"start": "2016-01-01"}});
    let spouse = requester(&["Practitioner/f204"], "TREAT");
    let both = [not_them.clone(), later.clone()];
    let d = at(&both, &spouse, "obsPlain", &SETTINGS, Utc::now());
    assert_eq!(
        (d.effect, d.consent.as_deref()),
        (Effect::Permit, Some("Consent/later")),
        "{d:?}"
    );
    let deny_wins = Settings {
        combine: Combine::DenyWins,
        ..SETTINGS
    };
    assert_eq!(
        at(&both, &spouse, "obsPlain", &deny_wins, Utc::now()).effect,
        Effect::Deny
    );
    // A tie on dateTime: deny.
    later["dateTime"] = not_them["dateTime"].clone();
    let tied = [later, not_them];
    assert_eq!(
        at(&tied, &spouse, "obsPlain", &SETTINGS, Utc::now()).effect,
        Effect::Deny
    );
}

#[test]
fn without_an_applicable_consent_the_default_decides() {
    let Some(mut draft) = example("notThem") else {
        return;
    };
    draft["status"] = json!("draft");
    let spouse = requester(&["Practitioner/f204"], "TREAT");
    let deny = Settings {
        default: Effect::Deny,
        ..SETTINGS
    };
    let d = at(std::slice::from_ref(&draft), &spouse, "obsPlain", &deny, Utc::now());
    assert_eq!((d.effect, d.reason), (Effect::Deny, Reason::Default));
    assert!(d.explanation().contains("default"), "{}", d.explanation());
    let emergency = requester(&["Practitioner/f204"], "ETREAT");
    let d = at(std::slice::from_ref(&draft), &emergency, "obsPlain", &deny, Utc::now());
    assert_eq!((d.effect, d.reason), (Effect::Permit, Reason::BreakGlass));
}

#[test]
fn a_confidentiality_ceiling_withholds_what_is_above_it() {
    // Opt-out with a permit for normal data and below: restricted data stays withheld.
    let ceiling = json!({"resourceType": "Consent", "id": "ceiling", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "patient": {"reference": "Patient/f001"}, "dateTime": "2020-01-01",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}});
    let policies = [Policy::read(&ceiling, "")];
    let provider = requester(&["Practitioner/example"], "TREAT");
    let decide_for = |labels: Value| {
        let observation = json!({"resourceType": "Observation", "id": "o", "meta": {"security": labels}});
        let facts = facts::of("Observation", "o", &observation, "");
        decide(
            &policies,
            "Patient/f001",
            &provider,
            &facts,
            &HashMap::new(),
            &SETTINGS,
            Utc::now(),
        )
        .effect
    };
    assert_eq!(decide_for(json!([])), Effect::Permit, "unlabelled is normal");
    assert_eq!(decide_for(json!([{"code": "R"}])), Effect::Deny);
}

#[test]
fn a_decision_about_a_type_alone_says_when_it_depends_on_the_data() {
    let Some(consent) = example("notAuthor") else {
        return;
    };
    let consent = Policy::read(&consent, "");
    let provider = requester(&["Practitioner/example"], "TREAT");
    let facts = fhir_server::consent::Facts::of_type("Observation");
    let d = decide(
        &[consent],
        "Patient/f001",
        &provider,
        &facts,
        &HashMap::new(),
        &SETTINGS,
        Utc::now(),
    );
    assert_eq!(
        d.effect,
        Effect::Deny,
        "some Observations may have been collected at f001"
    );
    assert!(d.depends_on_data, "{d:?}");
}

#[test]
fn a_permit_about_a_type_is_given_only_when_no_data_could_change_it() {
    // Opt-in; the root withholds code A, except (nested) where it is also coded B.
    let consent = json!({"resourceType": "Consent", "id": "codes", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "patient": {"reference": "Patient/f001"}, "dateTime": "2020-01-01",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"code": [{"coding": [{"system": "http://x", "code": "A"}]}],
            "provision": [{"type": "permit", "code": [{"coding": [{"system": "http://x", "code": "B"}]}]}]}});
    let policies = [Policy::read(&consent, "")];
    let provider = requester(&["Practitioner/example"], "TREAT");
    let d = decide(
        &policies,
        "Patient/f001",
        &provider,
        &fhir_server::consent::Facts::of_type("Observation"),
        &HashMap::new(),
        &SETTINGS,
        Utc::now(),
    );
    assert_eq!(
        (d.effect, d.depends_on_data),
        (Effect::Deny, true),
        "an Observation coded A alone is denied: {d:?}"
    );
    // About stored resources, exactly.
    let decide_for = |codes: &[&str]| {
        let coding: Vec<Value> = codes.iter().map(|c| json!({"system": "http://x", "code": c})).collect();
        let observation = json!({"resourceType": "Observation", "id": "o", "code": {"coding": coding}});
        let facts = facts::of("Observation", "o", &observation, "");
        decide(
            &policies,
            "Patient/f001",
            &provider,
            &facts,
            &HashMap::new(),
            &SETTINGS,
            Utc::now(),
        )
        .effect
    };
    assert_eq!(decide_for(&["A"]), Effect::Deny);
    assert_eq!(decide_for(&["A", "B"]), Effect::Permit);
    assert_eq!(decide_for(&["C"]), Effect::Permit);
}
