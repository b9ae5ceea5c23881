//! What the audit trail records of a request the dispatcher ran: which requests are audited
//! (refusals, or every request with `--audit all`), and how each is described — its
//! interaction, action, the resources it named and the patient — without any value it carried.

use super::Cx;
use super::outcome::Outcome;
use super::request::{HistoryTarget, Request, SearchScope};
use crate::audit::{LOGIN, Mode, Record, Reserved};
use crate::auth::Caller;
use crate::consent::Decision;
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Instant, ResourceType};

/// How a request is described in the trail.
pub struct Described {
    subtype: &'static str,
    action: &'static str,
    entities: Vec<String>,
}

/// The description of `request`, when its caller is audited at all (the server's own work is
/// not, nor is reading the CapabilityStatement).
pub fn describe(cx: &Cx, request: &Request) -> Option<Described> {
    if matches!(cx.caller, Caller::System(_)) {
        return None;
    }
    let one = |t: &ResourceType, id: &str| vec![reference(t, id)];
    let (subtype, action, entities) = match request {
        Request::Capabilities => return None,
        Request::Read { resource_type, id, .. } => ("read", "R", one(resource_type, id)),
        Request::Vread { resource_type, id, .. } => ("vread", "R", one(resource_type, id)),
        Request::Create { .. } => ("create", "C", Vec::new()),
        Request::Update { resource_type, id, .. } => ("update", "U", one(resource_type, id)),
        Request::UpdateConditional { .. } => ("update", "U", Vec::new()),
        Request::Patch { resource_type, id, .. } => ("patch", "U", one(resource_type, id)),
        Request::PatchConditional { .. } => ("patch", "U", Vec::new()),
        Request::Delete { resource_type, id, .. } => ("delete", "D", one(resource_type, id)),
        Request::DeleteConditional { .. } => ("delete", "D", Vec::new()),
        Request::Search { scope, .. } => match scope {
            SearchScope::System => ("search-system", "E", Vec::new()),
            SearchScope::Type(_) => ("search-type", "E", Vec::new()),
            SearchScope::Compartment { compartment, id, .. } => ("search-type", "E", one(compartment, id)),
        },
        Request::History { target, .. } => match target {
            HistoryTarget::System => ("history-system", "R", Vec::new()),
            HistoryTarget::Type(_) => ("history-type", "R", Vec::new()),
            HistoryTarget::Instance(t, id) => ("history-instance", "R", one(t, id)),
        },
        Request::Bundle(bundle) => match bundle.get("type").and_then(|t| t.as_str()) {
            Some("transaction") => ("transaction", "E", Vec::new()),
            _ => ("batch", "E", Vec::new()),
        },
        Request::Validate { .. } => ("operation", "E", Vec::new()),
        Request::Reindex(_) | Request::ReindexStatus => ("operation", "E", Vec::new()),
        Request::ConsentEvaluate(_) => ("operation", "E", Vec::new()),
    };
    Some(Described {
        subtype,
        action,
        entities,
    })
}

/// `Type/id`, or `Type` alone for an id that is not a valid FHIR id: a record carries only what
/// the server would store itself (an id from a URL is the client's text).
fn reference(resource_type: &ResourceType, id: &str) -> String {
    if crate::model::id::is_valid_id(id) {
        format!("{resource_type}/{id}")
    } else {
        resource_type.to_string()
    }
}

/// With `--audit-required`, a place in the queue for the record of a request about to run: a
/// full queue refuses the request (`503`) before it changes anything.
pub fn reserve(cx: &Cx) -> Result<Option<Reserved>> {
    let trail = &cx.services.audit;
    if !trail.required {
        return Ok(None);
    }
    trail.reserve().map(Some).map_err(|_| unavailable())
}

fn unavailable() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        IssueCode::Transient,
        "the audit trail cannot record this request now; try again",
    )
}

/// Records `request`'s outcome when the trail wants it: a refusal always, anything with `--audit
/// all`, in the place `reserved` for it when auditing is required.
pub fn after(cx: &Cx, described: Described, result: Result<Outcome>, reserved: Option<Reserved>) -> Result<Outcome> {
    // A refusal: by authorization, or of a change to the audit trail (`405`, store::rules).
    let denied = matches!(&result, Err(e) if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::MethodNotAllowed));
    let trail = &cx.services.audit;
    if !denied && trail.mode != Mode::All {
        return result;
    }
    let record = record(cx, described, denied, result.as_ref().err());
    let record = Record {
        // BALP: 0 success, 4 minor failure (the client's), 8 serious failure (the server's).
        outcome: match &result {
            Ok(_) => "0",
            Err(e) if e.kind.http_status() >= 500 => "8",
            Err(_) => "4",
        },
        ..record
    };
    match reserved {
        Some(place) => place.record(record),
        None => {
            let _ = trail.record(record);
        }
    }
    result
}

/// A resource withheld from the caller (answered as if it did not exist): always recorded.
pub fn withheld(cx: &Cx, resource_type: ResourceType, id: &str) {
    let described = Described {
        subtype: "read",
        action: "R",
        entities: vec![reference(&resource_type, id)],
    };
    let record = record(cx, described, true, None);
    let _ = cx.services.audit.record(Record {
        outcome_text: Some("withheld: out of the access token's reach".into()),
        ..record
    });
}

/// A resource withheld because a patient's consent denies the caller: always recorded, with the
/// Consent that decided among its entities.
pub fn withheld_by_consent(cx: &Cx, resource_type: ResourceType, id: &str, decision: &Decision) {
    consent_record(
        cx,
        resource_type,
        id,
        decision,
        true,
        "withheld: a patient's consent denies it",
    );
}

/// A resource disclosed only because the purpose of use is an emergency (break-glass): always
/// recorded, with the Consent it overrode.
pub fn break_glass(cx: &Cx, resource_type: ResourceType, id: &str, decision: &Decision) {
    consent_record(
        cx,
        resource_type,
        id,
        decision,
        false,
        "break-glass: disclosed for an emergency purpose of use against a patient's consent",
    );
}

fn consent_record(cx: &Cx, resource_type: ResourceType, id: &str, decision: &Decision, denied: bool, text: &str) {
    let mut entities = vec![reference(&resource_type, id)];
    entities.extend(decision.consent.clone());
    let described = Described {
        subtype: "read",
        action: "R",
        entities,
    };
    let record = record(cx, described, denied, None);
    let _ = cx.services.audit.record(Record {
        outcome_text: Some(text.to_owned()),
        ..record
    });
}

/// A request refused for its credentials (`401`): always recorded, as a failed login (DICOM
/// "User Authentication"), with why but never the token, the URL or who the token claimed.
pub fn unauthenticated(services: &super::Services, rejection: &crate::auth::token::Rejection) {
    use crate::auth::token::Rejection;
    let why = match rejection {
        Rejection::Missing => "no bearer access token",
        Rejection::Invalid(_) | Rejection::UnknownKey(_) => "an access token that does not verify",
        Rejection::Expired(_) => "an access token expired or not yet valid",
    };
    let _ = services.audit.record(Record {
        recorded: Instant::now(),
        subtype: LOGIN,
        action: "E",
        denied: true,
        outcome: "4",
        outcome_text: Some(format!("not authenticated: {why}")),
        client: None,
        user: None,
        entities: Vec::new(),
    });
}

/// A client's attempt to patch or delete a record of the audit trail (`405`): always recorded.
pub fn trail_change_refused(services: &super::Services, caller: &Caller, method: &str) {
    let (subtype, action) = match method {
        "DELETE" => ("delete", "D"),
        _ => ("patch", "U"),
    };
    let (client, user) = match caller {
        Caller::Token(grant) => (grant.client_id.clone(), grant.fhir_user.clone()),
        _ => (None, None),
    };
    let _ = services.audit.record(Record {
        recorded: Instant::now(),
        subtype,
        action,
        denied: true,
        outcome: "4",
        outcome_text: Some("refused: a record of the audit trail is never changed or deleted".to_owned()),
        client,
        user,
        entities: vec!["AuditEvent".to_owned()],
    });
}

fn record(cx: &Cx, described: Described, denied: bool, error: Option<&Error>) -> Record {
    let (client, user) = match &cx.caller {
        Caller::Token(grant) => (grant.client_id.clone(), grant.fhir_user.clone()),
        _ => (None, None),
    };
    Record {
        outcome: if denied { "4" } else { "0" },
        recorded: Instant::now(),
        subtype: described.subtype,
        action: described.action,
        denied,
        // Refusals say why (their messages name types and permissions, never data).
        outcome_text: error
            .filter(|e| e.kind == ErrorKind::Forbidden)
            .and_then(|e| e.issues.first().map(|i| i.diagnostics.clone())),
        client,
        user,
        entities: described.entities,
    }
}
