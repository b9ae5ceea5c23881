//! The answer to a transaction or batch: a `transaction-response` or `batch-response` Bundle with
//! one entry per request entry, in the same order (bundle.html#transaction-response), each with
//! `response.status`, `location`, `etag` and `lastModified`, and the resource, an
//! OperationOutcome, or nothing, as the client's `Prefer: return=` asks.

use super::Services;
use super::bundle_request::BundleKind;
use crate::bundle::{self, BundleEntry, EntryResponse};
use crate::error::{Error, Result};
use crate::model::{Instant, VersionId, outcome};
use crate::store::Written;
use bytes::Bytes;
use serde_json::value::RawValue;

/// What the client asked each entry's answer to carry (`Prefer: return=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryReturn {
    Minimal,
    Representation,
    OperationOutcome,
}

/// How one entry turned out.
#[derive(Debug)]
pub enum EntryOutcome {
    /// A create or update wrote `Written` (or, for a conditional create that matched or an
    /// update equal to the current version, found it): `201` when it came into existence.
    Written(Written),
    /// A delete: the tombstones written (none when there was nothing to delete).
    Deleted(Vec<Written>),
    /// A read (GET/HEAD): the resource or searchset, with its version when it has one.
    Read {
        body: Option<Bytes>,
        version: Option<(VersionId, Instant)>,
    },
    /// A conditional read whose resource is unchanged.
    NotModified { version: VersionId, last_updated: Instant },
    /// The entry failed (a batch only: a failed transaction answers with one OperationOutcome).
    Failed(Error),
}

/// The response Bundle for `outcomes`, in request order.
pub fn serialise(
    services: &Services,
    kind: BundleKind,
    outcomes: &[EntryOutcome],
    prefer: EntryReturn,
) -> Result<Bytes> {
    // Bodies that entries embed must outlive the entries borrowing them.
    let mut owned: Vec<Option<Box<RawValue>>> = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        owned.push(body_of(outcome, prefer)?);
    }
    let entries: Vec<BundleEntry> = outcomes
        .iter()
        .zip(&owned)
        .map(|(outcome, body)| entry(services, outcome, prefer, body.as_deref()))
        .collect();
    bundle::serialise(kind.response_type(), None, &[], &entries)
}

fn body_of(outcome: &EntryOutcome, prefer: EntryReturn) -> Result<Option<Box<RawValue>>> {
    let raw = |bytes: &[u8]| bundle::raw_json(bytes).map(|r| Some(r.to_owned()));
    match outcome {
        EntryOutcome::Written(w) if prefer == EntryReturn::Representation => match &w.content {
            Some(content) => raw(content),
            None => Ok(None),
        },
        EntryOutcome::Read { body: Some(body), .. } => raw(body),
        _ => Ok(None),
    }
}

fn entry<'a>(
    services: &Services,
    outcome: &EntryOutcome,
    prefer: EntryReturn,
    body: Option<&'a RawValue>,
) -> BundleEntry<'a> {
    let base = &services.base_url;
    let version_response = |status: &str, w: &Written| EntryResponse {
        status: status.to_owned(),
        location: Some(format!("{base}/{}/{}/_history/{}", w.resource_type, w.id, w.version_id)),
        etag: Some(format!("W/\"{}\"", w.version_id)),
        last_modified: Some(w.last_updated.to_fhir()),
        outcome: None,
    };
    let information = |message: String| {
        (prefer == EntryReturn::OperationOutcome)
            .then(|| RawValue::from_string(outcome::information(message).to_string()).ok())
            .flatten()
    };
    match outcome {
        EntryOutcome::Written(w) => {
            let (status, verb) = if w.created {
                ("201 Created", "created")
            } else {
                ("200 OK", "updated")
            };
            let mut response = version_response(status, w);
            response.outcome = information(format!(
                "{}/{} {verb} as version {}",
                w.resource_type, w.id, w.version_id
            ));
            BundleEntry {
                full_url: Some(format!("{base}/{}/{}", w.resource_type, w.id)),
                resource: body,
                search: None,
                request: None,
                response: Some(response),
            }
        }
        EntryOutcome::Deleted(deleted) => {
            let mut response = match deleted.as_slice() {
                [w] => version_response("204 No Content", w),
                _ => EntryResponse::status("204 No Content"),
            };
            response.location = None;
            response.outcome = information(match deleted.as_slice() {
                [] => "nothing to delete; nothing changed".to_owned(),
                [w] => format!("{}/{} deleted as version {}", w.resource_type, w.id, w.version_id),
                all => format!("{} resources deleted", all.len()),
            });
            BundleEntry::response(response)
        }
        EntryOutcome::Read { body: _, version } => {
            let mut response = EntryResponse::status("200 OK");
            if let Some((version, at)) = version {
                response.etag = Some(format!("W/\"{version}\""));
                response.last_modified = Some(at.to_fhir());
            }
            let mut entry = BundleEntry::response(response);
            entry.resource = body;
            entry
        }
        EntryOutcome::NotModified { version, last_updated } => {
            let mut response = EntryResponse::status("304 Not Modified");
            response.etag = Some(format!("W/\"{version}\""));
            response.last_modified = Some(last_updated.to_fhir());
            BundleEntry::response(response)
        }
        EntryOutcome::Failed(error) => {
            let status = error.kind.http_status();
            let reason = reason_phrase(status);
            let mut response = EntryResponse::status(&format!("{status} {reason}"));
            if error.kind == crate::error::ErrorKind::Internal {
                tracing::error!(error = %error, "internal error in a batch entry");
            }
            response.outcome = RawValue::from_string(outcome::from_error(error).to_string()).ok();
            BundleEntry::response(response)
        }
    }
}

/// The reason phrase of the statuses an entry can have.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}
