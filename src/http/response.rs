//! Building HTTP responses: resources with their version headers, Bundles, and every `Error` as an
//! OperationOutcome with the status of its category (`ErrorKind::http_status`).

use super::negotiate::{FHIR_JSON, Format};
use crate::error::{Error, ErrorKind};
use crate::model::{Instant, VersionId, outcome};
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, ETAG, LAST_MODIFIED};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self.kind {
            ErrorKind::Internal => tracing::error!(error = %self, "internal error"),
            ErrorKind::Unavailable => tracing::warn!(error = %self, "database unavailable"),
            _ => tracing::debug!(error = %self, "client error"),
        }
        let body = serde_json::to_vec(&outcome::from_error(&self)).unwrap_or_default();
        let mut response = (status_of(self.kind), [(CONTENT_TYPE, FHIR_JSON)], body).into_response();
        if let Some(version) = self.version_id {
            set_version_headers(&mut response, version, None);
        }
        response
    }
}

/// Sets `ETag: W/"n"` and, when known, `Last-Modified`.
pub fn set_version_headers(response: &mut Response, version: VersionId, last_updated: Option<Instant>) {
    let headers = response.headers_mut();
    headers.insert(
        ETAG,
        HeaderValue::from_str(&format!("W/\"{version}\"")).expect("digits are a valid header"),
    );
    if let Some(at) = last_updated {
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_str(&at.to_http_date()).expect("an HTTP date is a valid header"),
        );
    }
}

/// A JSON body in the negotiated format; `_pretty=true` re-indents it. When XML was negotiated the
/// body is still JSON here (as FHIR JSON); the HTTP layer converts it on the way out.
pub fn json_body(status: StatusCode, format: Format, json: Bytes) -> Response {
    let body = if format.pretty {
        match serde_json::from_slice::<Value>(&json).and_then(|v| serde_json::to_vec_pretty(&v)) {
            Ok(pretty) => Bytes::from(pretty),
            Err(_) => json,
        }
    } else {
        json
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let content_type = if format.xml { FHIR_JSON } else { format.content_type };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn value_body(status: StatusCode, format: Format, value: &Value) -> Response {
    json_body(
        status,
        format,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_carries_the_etag_of_the_delete() {
        let response = Error::gone("deleted", 4).into_response();
        assert_eq!(response.status(), StatusCode::GONE);
        assert_eq!(response.headers()[ETAG], "W/\"4\"");
        assert_eq!(response.headers()[CONTENT_TYPE], FHIR_JSON);
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let response = Error::internal("relation \"resource\" does not exist").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
