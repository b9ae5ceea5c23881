//! The handlers: the health checks, and one handler for everything under the FHIR base, which
//! builds the request context and the typed request, dispatches it, and shapes the outcome.

use super::{AppState, FHIR_BASE_PATH, RequestId, door, negotiate, respond};
use crate::auth::Caller;
use crate::error::Result;
use crate::interactions::{Cx, dispatch};
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

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
    let format = negotiate::response_format(&headers, &negotiate::query_pairs(uri.query()))?;
    let path = uri.path().strip_prefix(FHIR_BASE_PATH).unwrap_or_default();
    let request = door::request_of(&method, path, query, &headers, body, state.max_body_bytes).await?;
    let cx = Cx::new(state.services.clone(), caller(&headers), request_id);
    let outcome = dispatch::dispatch(&cx, request).await?;
    respond::respond(outcome, &state.services.base_url, format, &headers)
}

/// Who sent the request. Authorization is off, so every caller is anonymous and unrestricted.
fn caller(_headers: &HeaderMap) -> Caller {
    Caller::Anonymous
}
