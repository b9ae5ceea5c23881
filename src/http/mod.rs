//! The HTTP surface, and the only module that knows axum: the front door to the FHIR base
//! (`door`: an HTTP request as a typed `Request`), content negotiation, headers, request ids, the
//! responses to typed outcomes (`respond`), and the mapping of domain errors to OperationOutcome
//! responses. Routing inside the FHIR base is `interactions::route`'s, shared with Bundle entries.

mod authenticate;
mod door;
mod handlers;
pub mod negotiate;
mod oauth;
mod respond;
pub mod response;

use crate::auth;
use crate::error::{Error, ErrorKind, IssueCode};
use crate::interactions::Services;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use std::sync::Arc;
use tracing::Instrument;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

/// The id of a request (`X-Request-Id`), set by the `request_id` middleware for the handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The FHIR base path every FHIR route lives under.
pub const FHIR_BASE_PATH: &str = "/fhir/R4";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/health/ready", get(handlers::ready))
        .route(
            &format!("{FHIR_BASE_PATH}/.well-known/smart-configuration"),
            get(handlers::smart_configuration),
        )
        .route(&format!("{FHIR_BASE_PATH}/{}", auth::TOKEN_PATH), post(oauth::token))
        .route(&format!("{FHIR_BASE_PATH}/{}", auth::JWKS_PATH), get(oauth::jwks))
        .route(
            &format!("{FHIR_BASE_PATH}/{}", auth::INTROSPECT_PATH),
            post(oauth::introspect),
        )
        .route(&format!("{FHIR_BASE_PATH}/{}", auth::REVOKE_PATH), post(oauth::revoke))
        // Some clients write the base with a trailing slash (`GET [base]/?…`).
        .route(FHIR_BASE_PATH, any(handlers::fhir))
        .route(&format!("{FHIR_BASE_PATH}/"), any(handlers::fhir))
        .route(&format!("{FHIR_BASE_PATH}/{{*path}}"), any(handlers::fhir))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

async fn unknown_route(request: Request) -> Error {
    Error::new(
        ErrorKind::NotFound,
        IssueCode::NotSupported,
        format!(
            "no FHIR interaction at {} {}; the FHIR base is {FHIR_BASE_PATH}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> Error {
    Error::new(
        ErrorKind::MethodNotAllowed,
        IssueCode::NotSupported,
        format!("{} is not supported on {}", request.method(), request.uri().path()),
    )
}

/// An error response that did not come from our handlers: axum's own extractor rejections
/// (e.g. a path that is not valid percent-encoded UTF-8) answer in plain text. (The OAuth
/// endpoints answer errors in JSON, as RFC 6749 has them.)
fn is_plain_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && !response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/fhir+json") || v.starts_with("application/json"))
}

/// Rewrites a plain error response as an OperationOutcome with the same status, keeping its text
/// as the diagnostic, so that every error a client sees is FHIR.
async fn as_operation_outcome(response: Response) -> Response {
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let (kind, code) = if status.is_server_error() {
        (ErrorKind::Internal, IssueCode::Exception)
    } else {
        (ErrorKind::Invalid, IssueCode::Invalid)
    };
    let mut converted = Error::new(kind, code, text).into_response();
    *converted.status_mut() = status;
    converted
}

/// Rewrites a FHIR JSON response as FHIR XML (the client negotiated XML). Bodiless responses
/// (304, HEAD, `Prefer: return=minimal`) pass through unchanged.
async fn convert_to_xml(response: Response) -> Response {
    let is_fhir_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    if !is_fhir_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => return Error::internal(format!("reading a response body: {e}")).into_response(),
    };
    if bytes.is_empty() {
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    let converted = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| Error::internal(format!("a response body is not JSON: {e}")))
        .and_then(|value| crate::xml::to_xml(&value));
    match converted {
        Ok(xml) => {
            parts.headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(negotiate::FHIR_XML),
            );
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(xml))
        }
        Err(e) => e.into_response(),
    }
}

/// A request id unique to this process run: a random prefix chosen at start-up and a counter.
/// (A fresh UUID per request costs a getrandom system call on every request.)
fn next_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    format!(
        "{prefix}-{}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Gives each request an id (the caller's `X-Request-Id` when sane, else a new one), runs it in a
/// tracing span carrying that id, and echoes the id in the response.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(next_request_id);
    // Read before the request is consumed: whether the response must be converted to XML.
    let wants_xml = negotiate::response_format(request.headers(), &negotiate::query_pairs(request.uri().query()))
        .is_ok_and(|format| format.xml);
    let span =
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut request = request;
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if is_plain_error(&response) {
        response = as_operation_outcome(response).await;
    }
    if wants_xml {
        response = convert_to_xml(response).instrument(span.clone()).await;
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response.into_response()
}
