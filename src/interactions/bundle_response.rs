//! The answer to a transaction or batch: a `transaction-response` or `batch-response` Bundle with
//! one entry per request entry, in the same order (bundle.html#transaction-response), each with
//! `response.status`, `location`, `etag` and `lastModified`, and the resource, an
//! OperationOutcome, or nothing, as the client's `Prefer: return=` asks. The interactions answer a
//! typed `outcome::BundleOutcome`; `to_json` here makes the Bundle at the edge.

use super::outcome::{BundleOutcome, EntryOutcome, Outcome, ResourceVersion};
use crate::bundle::{self, BundleEntry, EntryResponse};
use crate::error::{Error, ErrorKind, Result};
use crate::model::outcome;
use bytes::Bytes;
use serde_json::value::RawValue;

/// What the client asked each entry's answer to carry (`Prefer: return=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryReturn {
    Minimal,
    Representation,
    OperationOutcome,
}

impl BundleOutcome {
    /// The response Bundle; `base_url` makes `fullUrl`s and `location`s.
    pub fn to_json(&self, base_url: &str, prefer: EntryReturn) -> Result<Bytes> {
        // Bodies that entries embed must outlive the entries borrowing them.
        let mut owned: Vec<Option<Box<RawValue>>> = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            owned.push(body_of(entry, base_url, prefer)?);
        }
        let entries: Vec<BundleEntry> = self
            .entries
            .iter()
            .zip(&owned)
            .map(|(entry, body)| response_entry(base_url, &entry.outcome, prefer, body.as_deref()))
            .collect();
        bundle::serialise(self.kind.response_type(), None, &[], &entries)
    }
}

/// The resource an entry's answer carries, if any.
fn body_of(entry: &EntryOutcome, base_url: &str, prefer: EntryReturn) -> Result<Option<Box<RawValue>>> {
    let raw = |bytes: &[u8]| bundle::raw_json(bytes).map(|r| Some(r.to_owned()));
    let Ok(outcome) = &entry.outcome else {
        return Ok(None);
    };
    if entry.head {
        return Ok(None);
    }
    match outcome {
        Outcome::Saved { version, .. } if prefer == EntryReturn::Representation => match &version.content {
            Some(content) => raw(content),
            None => Ok(None),
        },
        Outcome::Saved { .. } | Outcome::Deleted { .. } | Outcome::NotModified { .. } => Ok(None),
        Outcome::Version(version) => version.content.as_deref().map_or(Ok(None), raw),
        Outcome::Capabilities(json) => raw(json),
        Outcome::Searchset(searchset) => raw(&searchset.to_json(base_url)?),
        Outcome::History(page) => raw(&page.to_json(base_url)?),
        Outcome::OperationOutcome(value) | Outcome::ReindexJobs(value) | Outcome::Parameters(value) => {
            raw(&serde_json::to_vec(value).expect("a Value serialises"))
        }
        Outcome::ReindexStarted(_) | Outcome::Bundle(_) => Err(Error::internal(
            "a Bundle entry cannot start a re-index or hold a Bundle",
        )),
    }
}

fn response_entry<'a>(
    base_url: &str,
    outcome: &Result<Outcome>,
    prefer: EntryReturn,
    body: Option<&'a RawValue>,
) -> BundleEntry<'a> {
    let version_response = |status: &str, v: &ResourceVersion| EntryResponse {
        status: status.to_owned(),
        location: Some(format!(
            "{base_url}/{}/{}/_history/{}",
            v.resource_type, v.id, v.version_id
        )),
        etag: Some(format!("W/\"{}\"", v.version_id)),
        last_modified: Some(v.last_updated.to_fhir()),
        outcome: None,
    };
    let information = |message: String| {
        (prefer == EntryReturn::OperationOutcome)
            .then(|| RawValue::from_string(outcome::information(message).to_string()).ok())
            .flatten()
    };
    let with_body = |response: EntryResponse| {
        let mut entry = BundleEntry::response(response);
        entry.resource = body;
        entry
    };
    match outcome {
        Ok(Outcome::Saved { version, created }) => {
            let (status, verb) = if *created {
                ("201 Created", "created")
            } else {
                ("200 OK", "updated")
            };
            let mut response = version_response(status, version);
            response.outcome = information(format!(
                "{} {verb} as version {}",
                version.reference(),
                version.version_id
            ));
            BundleEntry {
                full_url: Some(format!("{base_url}/{}", version.reference())),
                resource: body,
                search: None,
                request: None,
                response: Some(response),
            }
        }
        Ok(Outcome::Deleted { tombstones, .. }) => {
            let mut response = match tombstones.as_slice() {
                [v] => version_response("204 No Content", v),
                _ => EntryResponse::status("204 No Content"),
            };
            response.location = None;
            response.outcome = information(match tombstones.as_slice() {
                [] => "nothing to delete; nothing changed".to_owned(),
                [v] => format!("{} deleted as version {}", v.reference(), v.version_id),
                all => format!("{} resources deleted", all.len()),
            });
            BundleEntry::response(response)
        }
        Ok(Outcome::Version(version)) => {
            let mut response = EntryResponse::status("200 OK");
            response.etag = Some(format!("W/\"{}\"", version.version_id));
            response.last_modified = Some(version.last_updated.to_fhir());
            with_body(response)
        }
        Ok(Outcome::NotModified {
            version_id,
            last_updated,
        }) => {
            let mut response = EntryResponse::status("304 Not Modified");
            response.etag = Some(format!("W/\"{version_id}\""));
            response.last_modified = Some(last_updated.to_fhir());
            BundleEntry::response(response)
        }
        Ok(
            Outcome::Capabilities(_)
            | Outcome::Searchset(_)
            | Outcome::History(_)
            | Outcome::OperationOutcome(_)
            | Outcome::ReindexJobs(_)
            | Outcome::Parameters(_)
            | Outcome::ReindexStarted(_)
            | Outcome::Bundle(_),
        ) => with_body(EntryResponse::status("200 OK")),
        Err(error) => {
            let status = error.kind.http_status();
            let reason = reason_phrase(status);
            let mut response = EntryResponse::status(&format!("{status} {reason}"));
            // As over HTTP: a `410` names the version that deleted the resource.
            response.etag = error.version_id.map(|version| format!("W/\"{version}\""));
            if error.kind == ErrorKind::Internal {
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
        401 => "Unauthorized",
        403 => "Forbidden",
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
