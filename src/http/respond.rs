//! An interaction's typed outcome as an HTTP response: status, the headers FHIR asks for
//! (`Location`, `ETag`, `Last-Modified`), and the body the client negotiated and `Prefer`red.

use super::negotiate::{self, Format, Return};
use super::response::{json_body, set_version_headers, value_body};
use crate::error::Result;
use crate::interactions::bundle_response::EntryReturn;
use crate::interactions::outcome::{DeleteTarget, Outcome, ResourceVersion};
use crate::model::outcome;
use axum::http::header::{CONTENT_LOCATION, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The response to `outcome`; `base_url` makes links and `Location`s, `headers` are the
/// request's (for `Prefer`).
pub fn respond(outcome: Outcome, base_url: &str, format: Format, headers: &HeaderMap) -> Result<Response> {
    Ok(match outcome {
        Outcome::Capabilities(json) => json_body(StatusCode::OK, format, json),
        Outcome::Version(version) => {
            let mut response = json_body(StatusCode::OK, format, version.content.clone().unwrap_or_default());
            set_version_headers(&mut response, version.version_id, Some(version.last_updated));
            response
        }
        Outcome::NotModified {
            version_id,
            last_updated,
        } => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            set_version_headers(&mut response, version_id, Some(last_updated));
            response
        }
        Outcome::Saved { version, created } => saved(base_url, format, headers, &version, created),
        Outcome::Deleted { target, tombstones } => deleted(format, headers, &target, &tombstones),
        Outcome::Searchset(searchset) => json_body(StatusCode::OK, format, searchset.to_json(base_url)?),
        Outcome::History(page) => json_body(StatusCode::OK, format, page.to_json(base_url)?),
        Outcome::Bundle(bundle) => {
            let prefer = match negotiate::prefer_return(headers) {
                Return::Minimal => EntryReturn::Minimal,
                Return::Representation => EntryReturn::Representation,
                Return::OperationOutcome => EntryReturn::OperationOutcome,
            };
            json_body(StatusCode::OK, format, bundle.to_json(base_url, prefer)?)
        }
        Outcome::OperationOutcome(value) => value_body(StatusCode::OK, format, &value),
        // `202` with the new job's status, whose address (`GET [base]/$reindex`, which lists
        // every job) is in `Content-Location`.
        Outcome::ReindexStarted(status) => {
            let mut response = value_body(StatusCode::ACCEPTED, format, &status);
            if let Ok(location) = HeaderValue::from_str(&format!("{base_url}/$reindex")) {
                response.headers_mut().insert(CONTENT_LOCATION, location);
            }
            response
        }
        Outcome::ReindexJobs(status) | Outcome::Parameters(status) => value_body(StatusCode::OK, format, &status),
    })
}

/// The response to a create or update, shaped by `Prefer: return=`.
fn saved(base_url: &str, format: Format, headers: &HeaderMap, version: &ResourceVersion, created: bool) -> Response {
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = match negotiate::prefer_return(headers) {
        Return::Minimal => status.into_response(),
        // No content: one the caller may not read (a patient's consent withholds it).
        Return::Representation => match &version.content {
            Some(content) => json_body(status, format, content.clone()),
            None => status.into_response(),
        },
        Return::OperationOutcome => {
            let verb = if created { "created" } else { "updated" };
            let message = format!("{} {verb} as version {}", version.reference(), version.version_id);
            value_body(status, format, &outcome::information(message))
        }
    };
    let header = if created { LOCATION } else { CONTENT_LOCATION };
    let location = format!("{base_url}/{}/_history/{}", version.reference(), version.version_id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header, value);
    }
    set_version_headers(&mut response, version.version_id, Some(version.last_updated));
    response
}

/// The response to a delete: `204`, or `200` with an OperationOutcome saying what happened when
/// asked for one; with the ETag of the tombstone when one version was written.
fn deleted(format: Format, headers: &HeaderMap, target: &DeleteTarget, tombstones: &[ResourceVersion]) -> Response {
    let message = match (target, tombstones) {
        (DeleteTarget::Instance(t, id), []) => {
            format!("{t}/{id} does not exist or is already deleted; nothing changed")
        }
        (DeleteTarget::Condition(condition), []) => format!("nothing matches '{condition}'; nothing changed"),
        (_, [v]) => format!("{} deleted as version {}", v.reference(), v.version_id),
        (DeleteTarget::Condition(condition), all) => {
            format!("{} resources matching '{condition}' deleted", all.len())
        }
        (DeleteTarget::Instance(..), all) => format!("{} resources deleted", all.len()),
    };
    let mut response = match negotiate::prefer_return(headers) {
        Return::OperationOutcome => value_body(StatusCode::OK, format, &outcome::information(message)),
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    if let [v] = tombstones {
        set_version_headers(&mut response, v.version_id, Some(v.last_updated));
    }
    response
}
