//! The audit trail: an AuditEvent (shaped after IHE BALP, the Basic Audit Log Patterns) for
//! every request refused or withheld by authorization and, with `--audit all`, for every
//! request. Records are queued here and written off the request path, in batches, by
//! `interactions::audit_writer`; a full queue sheds records and counts them, and makes the
//! request fail instead when auditing is required. Pure apart from the queue: no store, no HTTP.
//!
//! An AuditEvent names resources by type and id, the client and the user by reference or
//! identifier; it carries no resource content, no search values and no token.

use crate::model::Instant;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::mpsc;

/// How many records may wait for the writer.
pub const QUEUE: usize = 10_000;

/// What is audited (`--audit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refusals: requests answered `403`, resources withheld, break-glass accesses.
    Denials,
    /// Every request.
    All,
}

const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";

/// The interactions a record may name (`Record::subtype`): restful-interaction codes, and
/// `login` for a failed authentication.
pub const SUBTYPES: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search-type",
    "search-system",
    "batch",
    "transaction",
    "operation",
    LOGIN,
];

/// The subtype of a failed authentication (a DICOM login event, see `Record::to_audit_event`).
pub const LOGIN: &str = "login";

/// One audited request. It waits for the writer, then in the database, in a compact JSON form
/// (`to_pending`: short names, nothing empty, the time as microseconds), and becomes an
/// AuditEvent resource (`to_audit_event`) later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// When it was answered.
    #[serde(rename = "t", serialize_with = "micros")]
    pub recorded: Instant,
    /// The interaction (one of `SUBTYPES`).
    #[serde(rename = "s")]
    pub subtype: &'static str,
    /// C, R, U, D or E (execute).
    #[serde(rename = "a")]
    pub action: &'static str,
    /// Whether it was refused or withheld.
    #[serde(rename = "d", skip_serializing_if = "is_false")]
    pub denied: bool,
    /// BALP's outcome: `0` success, `4` minor failure (refused, or the client's error), `8`
    /// serious failure (the server's).
    #[serde(rename = "o")]
    pub outcome: &'static str,
    /// Why, without data (`the access token does not grant 'r' on Observation`).
    #[serde(rename = "w", skip_serializing_if = "Option::is_none")]
    pub outcome_text: Option<String>,
    /// The client (`client_id`).
    #[serde(rename = "c", skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The user (`fhirUser`).
    #[serde(rename = "u", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The resources it concerned (`Type/id`); the first Patient among them is the patient.
    #[serde(rename = "e", skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
}

fn micros<S: serde::Serializer>(at: &Instant, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_i64(at.as_micros())
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A record as read back from its pending form.
#[derive(Deserialize)]
struct Pending {
    t: i64,
    s: String,
    a: String,
    #[serde(default)]
    d: bool,
    o: String,
    w: Option<String>,
    c: Option<String>,
    u: Option<String>,
    #[serde(default)]
    e: Vec<String>,
}

/// `code` among `codes`, as the `'static` code it is.
fn one_of(codes: &[&'static str], code: &str) -> Option<&'static str> {
    codes.iter().copied().find(|c| *c == code)
}

impl Record {
    /// Records in their pending form: a JSON array of compact objects.
    pub fn to_pending(records: &[Record]) -> String {
        serde_json::to_string(records).expect("records always serialise")
    }

    /// Records from their pending form, each `None` when it is not one; `None` when `text` is not
    /// an array.
    pub fn from_pending(text: &str) -> Option<Vec<Option<Record>>> {
        let values: Vec<Value> = serde_json::from_str(text).ok()?;
        Some(values.into_iter().map(Record::from_pending_value).collect())
    }

    fn from_pending_value(value: Value) -> Option<Record> {
        let pending: Pending = serde_json::from_value(value).ok()?;
        Some(Record {
            recorded: Instant::from_micros(pending.t),
            subtype: one_of(SUBTYPES, &pending.s)?,
            action: one_of(&["C", "R", "U", "D", "E"], &pending.a)?,
            denied: pending.d,
            outcome: one_of(&["0", "4", "8", "12"], &pending.o)?,
            outcome_text: pending.w,
            client: pending.c,
            user: pending.u,
            entities: pending.e,
        })
    }

    /// The AuditEvent resource of this record, observed by the server at `observer` (its base).
    pub fn to_audit_event(&self, observer: &str) -> Value {
        let mut agents = Vec::new();
        if let Some(user) = &self.user {
            agents.push(json!({"who": {"reference": user}, "requestor": true}));
        }
        if let Some(client) = &self.client {
            agents.push(json!({
                "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
                "who": {"identifier": {"value": client}},
                "requestor": self.user.is_none()
            }));
        }
        if agents.is_empty() {
            agents.push(json!({"who": {"display": "anonymous"}, "requestor": true}));
        }
        let mut entities: Vec<Value> = Vec::new();
        let patient = self.entities.iter().find(|e| e.starts_with("Patient/"));
        if let Some(patient) = patient {
            entities.push(json!({
                "what": {"reference": patient},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
            }));
        }
        for entity in self.entities.iter().filter(|e| Some(*e) != patient) {
            entities.push(json!({
                "what": {"reference": entity},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
            }));
        }
        // A failed authentication is a DICOM "User Authentication" event (BALP, IHE ITI-20),
        // every other record a RESTful interaction.
        let (kind, subtype) = if self.subtype == LOGIN {
            (
                json!({"system": DICOM, "code": "110114", "display": "User Authentication"}),
                json!({"system": DICOM, "code": "110122", "display": "Login"}),
            )
        } else {
            (
                json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
                json!({"system": "http://hl7.org/fhir/restful-interaction", "code": self.subtype}),
            )
        };
        let mut event = json!({
            "resourceType": "AuditEvent",
            "type": kind,
            "subtype": [subtype],
            "action": self.action,
            "recorded": self.recorded.to_fhir(),
            "outcome": self.outcome,
            "agent": agents,
            "source": {"observer": {"display": observer},
                       "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]},
        });
        if let Some(text) = &self.outcome_text {
            event["outcomeDesc"] = json!(text);
        }
        if !entities.is_empty() {
            event["entity"] = json!(entities);
        }
        event
    }
}

/// The queue of records, and what it had to shed.
pub struct Trail {
    pub mode: Mode,
    /// `--audit-required`: a record that cannot be queued fails its request (`503`).
    pub required: bool,
    sender: Mutex<Option<mpsc::Sender<Record>>>,
    shed: AtomicU64,
}

/// A place in the queue (`Trail::reserve`); dropped unused, it is given back.
pub struct Reserved(mpsc::OwnedPermit<Record>);

impl Reserved {
    pub fn record(self, record: Record) {
        self.0.send(record);
    }
}

/// A record could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed;

impl Trail {
    /// A trail and the receiving end its writer drains.
    pub fn new(mode: Mode, required: bool) -> (Trail, mpsc::Receiver<Record>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let trail = Trail {
            mode,
            required,
            sender: Mutex::new(Some(sender)),
            shed: AtomicU64::new(0),
        };
        (trail, receiver)
    }

    /// Queues `record` without waiting; a full (or closed) queue sheds it, counts it and says so
    /// in the log (every thousandth time after the first).
    pub fn record(&self, record: Record) -> Result<(), Shed> {
        let sent = match &*self.sender.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(sender) => sender.try_send(record).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        let shed = self.shed.fetch_add(1, Ordering::Relaxed) + 1;
        if shed == 1 || shed.is_multiple_of(1000) {
            tracing::warn!(shed, "the audit queue is full: audit records were shed");
        }
        Err(Shed)
    }

    /// A place in the queue, taken before a request runs when the trail is required, so that a
    /// request is refused (`503`) before it changes anything rather than after; `Err` when the
    /// queue is full or closed.
    pub fn reserve(&self) -> Result<Reserved, Shed> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match sender.map(mpsc::Sender::try_reserve_owned) {
            Some(Ok(permit)) => Ok(Reserved(permit)),
            _ => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                Err(Shed)
            }
        }
    }

    /// Counts records the writer could not store with those shed.
    pub fn lost(&self, count: u64) {
        self.shed.fetch_add(count, Ordering::Relaxed);
    }

    /// How many records were shed (or could not be stored) since the start.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Closes the queue: the writer writes what is queued, then ends (at shutdown).
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            recorded: Instant::from_micros(1_767_225_600_123_456),
            subtype: "read",
            action: "R",
            denied: true,
            outcome: "4",
            outcome_text: Some("the access token does not grant 'r' on Observation".into()),
            client: Some("app".into()),
            user: Some("Practitioner/d".into()),
            entities: vec!["Observation/o".into(), "Patient/p".into()],
        }
    }

    #[test]
    fn an_audit_event_is_valid_r4() {
        let event = record().to_audit_event("https://h/fhir");
        crate::validate::validate(&event).unwrap();
        assert_eq!(event["recorded"], "2026-01-01T00:00:00.123Z");
        assert_eq!(event["source"]["observer"]["display"], "https://h/fhir");
        assert_eq!(event["outcome"], "4");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p");
        let anonymous = Record {
            client: None,
            user: None,
            entities: vec![],
            denied: false,
            outcome: "0",
            ..record()
        };
        crate::validate::validate(&anonymous.to_audit_event("https://h/fhir")).unwrap();
        let login = Record {
            subtype: LOGIN,
            ..anonymous
        }
        .to_audit_event("https://h/fhir");
        crate::validate::validate(&login).unwrap();
        assert_eq!(login["type"]["code"], "110114", "a failed authentication");
        assert_eq!(login["subtype"][0]["code"], "110122");
    }

    #[test]
    fn records_come_back_whole_from_their_pending_form() {
        let anonymous = Record {
            client: None,
            user: None,
            outcome_text: None,
            entities: vec![],
            denied: false,
            ..record()
        };
        let text = Record::to_pending(&[record(), anonymous.clone()]);
        assert_eq!(Record::from_pending(&text), Some(vec![Some(record()), Some(anonymous)]));
        assert!(text.len() < 250, "compact: {text}");
        assert_eq!(Record::from_pending("{}"), None, "not an array");
        let strange = text.replacen("\"a\":\"R\"", "\"a\":\"X\"", 1);
        assert_ne!(strange, text);
        let back = Record::from_pending(&strange).unwrap();
        assert_eq!(back[0], None, "an action that is no BALP action");
        assert!(back[1].is_some(), "one bad record spoils no other");
    }

    #[tokio::test]
    async fn a_full_queue_sheds_and_counts() {
        let (trail, mut receiver) = Trail::new(Mode::All, false);
        for _ in 0..QUEUE {
            trail.record(record()).unwrap();
        }
        assert_eq!(trail.record(record()), Err(Shed));
        assert_eq!(trail.shed(), 1);
        assert!(receiver.recv().await.is_some());
        trail.record(record()).unwrap();
        trail.close();
        assert_eq!(trail.record(record()), Err(Shed), "closed");
    }

    #[tokio::test]
    async fn a_place_is_reserved_before_a_request_runs_and_given_back_unused() {
        let (trail, mut receiver) = Trail::new(Mode::All, true);
        let place = trail.reserve().expect("room");
        for _ in 0..QUEUE - 1 {
            trail.record(record()).unwrap();
        }
        assert!(trail.reserve().is_err(), "the reserved place counts: the queue is full");
        place.record(record());
        for _ in 0..QUEUE {
            assert!(receiver.recv().await.is_some());
        }
        let unused = trail.reserve().expect("room again");
        for _ in 0..QUEUE - 1 {
            trail.record(record()).unwrap();
        }
        drop(unused);
        trail.record(record()).expect("an unused place is given back");
        trail.close();
        assert!(trail.reserve().is_err(), "closed");
    }
}
