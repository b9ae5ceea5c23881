//! `POST [base]/Consent/$evaluate`: what the patient's consents decide about a requester seeing
//! the patient's data — a resource type (`class`) or a stored resource (`resource`) — for a
//! purpose. The same decision (`consent::decide`) the server applies to reads.
//!
//! In: `Parameters` with `patient` (a reference, required), `actor` (a reference; default: the
//! caller's `fhirUser`), `purpose` (a PurposeOfUse code; default `--consent-default-purpose`),
//! and `class` (a resource type) or `resource` (a reference to one of the patient's resources).
//! Out: `Parameters` with `decision` (`permit` | `deny`), `consent` and `provision` when a
//! consent decided, `reason`, and `dependsOnData` when asked about a type whose resources the
//! consents tell apart.
//!
//! Needs read on Consent: for a caller limited to a patient's compartment, of that patient.

use super::access::consent_store;
use super::access::{self, Reach};
use super::{Cx, read};
use crate::auth::Caller;
use crate::auth::scope::Permission;
use crate::consent::policy::relative;
use crate::consent::{Decision, Effect, Facts, Reason, Requester, facts};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::ResourceType;
use crate::search::compartments;
use serde_json::{Map, Value, json};

pub async fn evaluate(cx: &Cx, parameters: &Map<String, Value>) -> Result<Value> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::invalid("Consent/$evaluate takes a Parameters resource").at("resourceType"));
    }
    let base = cx.services.base_url.clone();
    let patient = parameter(parameters, "patient")
        .map(|p| relative(&p, &base))
        .ok_or_else(|| missing("patient"))?;
    let patient_id = match patient.split_once('/') {
        Some(("Patient", id)) if crate::model::id::is_valid_id(id) => id.to_owned(),
        _ => {
            return Err(
                Error::invalid(format!("patient must reference a Patient, not '{patient}'"))
                    .at("Parameters.parameter.where(name = 'patient')"),
            );
        }
    };
    may_ask_about(cx, &patient_id)?;
    let actor = parameter(parameters, "actor")
        .map(|a| relative(&a, &base))
        .or_else(|| caller_user(cx, &base));
    let purposes = match parameter(parameters, "purpose") {
        Some(purpose) => vec![purpose],
        None => access::consent::caller_purposes(cx),
    };
    let facts = match (parameter(parameters, "resource"), parameter(parameters, "class")) {
        (Some(reference), _) => stored_facts(cx, &relative(&reference, &base), &patient_id).await?,
        (None, Some(class)) => {
            let resource_type = ResourceType::parse(&class).ok_or_else(|| {
                Error::invalid(format!("class '{class}' is not a resource type"))
                    .at("Parameters.parameter.where(name = 'class')")
            })?;
            Facts::of_type(resource_type.as_str())
        }
        (None, None) => return Err(missing("class' or 'resource")),
    };
    let decision = if actor.as_deref() == Some(patient.as_str()) {
        None
    } else {
        // The same consents, roles and related references a read is decided with.
        let loaded = consent_store::loaded(cx).await?;
        let requester = Requester {
            actors: match &actor {
                Some(actor) => loaded.acting_as(cx, actor).await?,
                None => Vec::new(),
            },
            purposes,
        };
        Some(crate::consent::decide(
            loaded.consents_of(&patient),
            &patient,
            &requester,
            &facts,
            loaded.related(),
            &cx.services.consent,
            chrono::Utc::now(),
        ))
    };
    Ok(answer(decision.as_ref()))
}

fn missing(name: &str) -> Error {
    Error::new(
        ErrorKind::Invalid,
        IssueCode::Required,
        format!("Consent/$evaluate needs the parameter '{name}'"),
    )
    .at("Parameters.parameter")
}

/// The value of the parameter `name`: a reference's `reference`, or a code, string or URI, or a
/// Coding's code.
fn parameter(parameters: &Map<String, Value>, name: &str) -> Option<String> {
    let found = parameters
        .get("parameter")?
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?;
    ["valueReference", "valueCoding"]
        .iter()
        .find_map(|k| found[k]["reference"].as_str().or(found[k]["code"].as_str()))
        .or_else(|| {
            ["valueCode", "valueString", "valueUri"]
                .iter()
                .find_map(|k| found[k].as_str())
        })
        .map(str::to_owned)
}

/// A `403` unless the caller may read `patient`'s consents.
fn may_ask_about(cx: &Cx, patient: &str) -> Result<()> {
    let consent = ResourceType::parse("Consent").expect("a type");
    match access::reach(cx, consent, Permission::Read) {
        Reach::All => Ok(()),
        // A granular scope (`Consent.rs?category=…`) reaches some of the patient's consents, and
        // a decision reads them all: it does not count.
        Reach::Some(rules)
            if rules
                .iter()
                .any(|r| r.filter.is_empty() && (r.patient.is_none() || r.patient.as_deref() == Some(patient))) =>
        {
            Ok(())
        }
        _ => Err(Error::forbidden(
            "the access token does not grant reading this patient's consents",
        )),
    }
}

/// The caller's own `fhirUser`, relative when it is this server's.
fn caller_user(cx: &Cx, base: &str) -> Option<String> {
    match &cx.caller {
        Caller::Token(grant) => grant.fhir_user.as_deref().map(|u| relative(u, base)),
        _ => None,
    }
}

/// The facts of the stored resource `reference`, one of `patient`'s, read as the caller may see
/// it (one out of its reach is not known).
async fn stored_facts(cx: &Cx, reference: &str, patient: &str) -> Result<Facts> {
    let at = "Parameters.parameter.where(name = 'resource')";
    let (kind, id) = reference
        .split_once('/')
        .and_then(|(t, id)| Some((ResourceType::parse(t)?, id)))
        .ok_or_else(|| Error::invalid(format!("resource must be a reference Type/id, not '{reference}'")).at(at))?;
    // Read as the caller may read it: one its scopes or the consents withhold is not known
    // (a `404`, as for a missing one), so that the answer tells nothing a read would not.
    let version = read::read(cx, kind, id).await?;
    let content: Value = serde_json::from_slice(version.content.as_deref().unwrap_or_default())
        .map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))?;
    let owners = compartments::patient_owners_of(&cx.services.base_url, kind.as_str(), id, &content);
    let own = kind.as_str() == "Patient" && id == patient;
    if !own && !owners.iter().any(|o| o == patient) {
        return Err(Error::invalid(format!("{reference} is not one of Patient/{patient}'s resources")).at(at));
    }
    Ok(facts::of(kind.as_str(), id, &content, &cx.services.base_url))
}

/// The answer; `None`: the patient asking about its own data, which consents do not govern.
fn answer(decision: Option<&Decision>) -> Value {
    let Some(decision) = decision else {
        return json!({"resourceType": "Parameters", "parameter": [
            {"name": "decision", "valueCode": Effect::Permit.as_str()},
            {"name": "reason", "valueString": "the patient's own data: consents do not govern it"}]});
    };
    let mut parameter = vec![json!({"name": "decision", "valueCode": decision.effect.as_str()})];
    if let Some(consent) = &decision.consent
        && decision.reason != Reason::Default
    {
        parameter.push(json!({"name": "consent", "valueReference": {"reference": consent}}));
    }
    if let Some(provision) = &decision.provision {
        parameter.push(json!({"name": "provision", "valueString": provision}));
    }
    parameter.push(json!({"name": "reason", "valueString": decision.explanation()}));
    if decision.depends_on_data {
        parameter.push(json!({"name": "dependsOnData", "valueBoolean": true}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}
