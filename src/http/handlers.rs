//! The handlers: the health checks, and one handler for everything under the FHIR base, which
//! builds the request context and the typed request, dispatches it, and shapes the outcome.

use super::{AppState, FHIR_BASE_PATH, RequestId, authenticate, door, negotiate, respond};
use crate::auth::Caller;
use crate::error::Result;
use crate::interactions::{Cx, dispatch};
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

pub async fn health() -> &'static str {
    "ok"
}

pub async fn ready(State(state): State<AppState>) -> Result<&'static str> {
    state.services.store.ping().await?;
    Ok("ready")
}

/// Every FHIR interaction: `[base]/…` with any method.
pub async fn fhir(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let query = uri.query().unwrap_or_default();
    let path = uri.path().strip_prefix(FHIR_BASE_PATH).unwrap_or_default();
    // Who is calling is settled first, before the body is read or the URL routed: an
    // unauthenticated caller learns nothing from how its request would have been answered.
    let caller = if is_public(&method, path) {
        Caller::Anonymous
    } else {
        match authenticate::caller(state.services.authorization.as_ref(), &headers).await {
            Ok(caller) => caller,
            Err(rejection) => {
                crate::interactions::audited::unauthenticated(&state.services, &rejection);
                return Ok(authenticate::unauthorized(rejection));
            }
        }
    };
    let holds_token = matches!(caller, Caller::Token(_));
    let answered = async {
        let format = negotiate::response_format(&headers, &negotiate::query_pairs(uri.query()))?;
        let request = door::request_of(&method, path, query, &headers, body, state.max_body_bytes)
            .await
            .inspect_err(|e| {
                // A client trying to patch or delete a record of the audit trail is refused
                // before a request exists: recorded here.
                if e.kind == crate::error::ErrorKind::MethodNotAllowed
                    && path.trim_start_matches('/').starts_with("AuditEvent")
                {
                    crate::interactions::audited::trail_change_refused(&state.services, &caller, method.as_str());
                }
            })?;
        let cx = Cx::new(state.services.clone(), caller, request_id);
        let outcome = dispatch::dispatch(&cx, request).await?;
        respond::respond(outcome, &state.services.base_url, format, &headers)
    };
    let mut response = answered.await.unwrap_or_else(IntoResponse::into_response);
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body was never read: the connection cannot carry another request.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    if holds_token {
        authenticate::mark_insufficient_scope(&mut response);
    }
    Ok(response)
}

/// What anyone may ask without a token: the CapabilityStatement (`GET [base]/metadata`).
fn is_public(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && path.trim_end_matches('/') == "/metadata"
}

/// `GET [base]/.well-known/smart-configuration` (SMART App Launch 2.x): where clients get tokens.
/// No token needed; `404` when authorization is off.
pub async fn smart_configuration(State(state): State<AppState>) -> Response {
    match &state.services.authorization {
        Some(authorization) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            crate::auth::discovery::smart_configuration(&authorization.endpoints).to_string(),
        )
            .into_response(),
        None => crate::error::Error::not_found("authorization is off on this server: there is no SMART configuration")
            .into_response(),
    }
}
