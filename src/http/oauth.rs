//! The OAuth endpoints beside the FHIR base: the built-in server's token endpoint and its JWK
//! Set (SMART Backend Services), and — whenever authorization is on — token introspection
//! (RFC 7662) and revocation (RFC 7009). Forms in, JSON out, `Cache-Control: no-store`; errors as
//! RFC 6749 §5.2 (`{"error", "error_description"}`), never as OperationOutcomes. Tokens are
//! never logged.

use super::AppState;
use super::authenticate::{bearer_token, now};
use crate::auth::Authorization;
use crate::auth::issuer::OAuthError;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The largest form accepted (a client assertion is a few kilobytes).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// `POST [base]/auth/token`: `client_credentials` with a client assertion.
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(issuer) = state.services.authorization.as_ref().and_then(|a| a.issuer.as_ref()) else {
        return not_offered();
    };
    let params = match read_form(&headers, body).await {
        Ok(params) => params,
        Err(e) => return oauth_error(&e),
    };
    let mut answer = issuer.token(&params, now());
    if let Err(OAuthError {
        unknown_key_of: Some(client_id),
        ..
    }) = &answer
        && let Some(authorization) = &state.services.authorization
        && authorization.refresh_client_keys(client_id).await
    {
        answer = issuer.token(&params, now());
    }
    match answer {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => {
            tracing::info!(error = e.error, reason = %e.description, "token request refused");
            oauth_error(&e)
        }
    }
}

/// `GET [base]/.well-known/jwks.json`: the keys the built-in server signs with.
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.services.authorization.as_ref().and_then(|a| a.issuer.as_ref()) {
        Some(issuer) => json_response(StatusCode::OK, &issuer.key.jwks()),
        None => not_offered(),
    }
}

/// `POST [base]/auth/introspect` (RFC 7662) with `token=…`: whether it is active, and what it
/// grants. The caller authenticates with a bearer token of its own (a resource server's or the
/// client's) or, for the built-in server's clients, a client assertion.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authorization) = state.services.authorization.as_ref() else {
        return not_offered();
    };
    match asked_token(authorization, &headers, body, Action::Introspect).await {
        Ok(token) => json_response(StatusCode::OK, &authorization.verifier.introspect(&token, now())),
        Err(e) => oauth_error(&e),
    }
}

/// `POST [base]/auth/revoke` (RFC 7009) with `token=…`: the token is refused from now on. The
/// caller is the token's own holder (presenting it as its bearer token) or, for the built-in
/// server's clients, the client it was issued to (by a client assertion). The answer is `200`
/// whether or not the token was valid.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(authorization) = state.services.authorization.as_ref() else {
        return not_offered();
    };
    let token = match asked_token(authorization, &headers, body, Action::Revoke).await {
        Ok(token) => token,
        Err(e) => return oauth_error(&e),
    };
    let now = now();
    if let Ok(grant) = authorization.verifier.verify(&token, now) {
        authorization.verifier.revoke(&token, &grant, now);
        tracing::info!(
            client = grant.client_id.as_deref().unwrap_or("-"),
            "access token revoked"
        );
    }
    (StatusCode::OK, [(CACHE_CONTROL, "no-store")]).into_response()
}

/// What a caller of the introspection or revocation endpoint asks about a token.
#[derive(Clone, Copy)]
enum Action {
    Introspect,
    Revoke,
}

/// The `token` a form to the introspection or revocation endpoint asks about, once its caller
/// is found entitled to `action` on it.
async fn asked_token(
    authorization: &Authorization,
    headers: &HeaderMap,
    body: Body,
    action: Action,
) -> Result<String, OAuthError> {
    let params = read_form(headers, body).await?;
    let token = param(&params, "token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    authenticate_caller(authorization, headers, &params, action, token)?;
    Ok(token.to_owned())
}

/// Who calls introspection or revocation: a holder of a valid bearer token — for introspection,
/// of that token itself or with a `system/` scope (a backend or resource server); for
/// revocation, the token being revoked itself — or a client of the built-in server by its
/// assertion (for revocation, the client the token was issued to).
fn authenticate_caller(
    authorization: &Authorization,
    headers: &HeaderMap,
    params: &[(String, String)],
    action: Action,
    token: &str,
) -> Result<(), OAuthError> {
    let now = now();
    if let Some(bearer) = bearer_token(headers) {
        let grant = authorization.verifier.verify(bearer, now).ok();
        let system = || {
            grant.as_ref().is_some_and(|g| {
                g.scopes
                    .scopes
                    .iter()
                    .any(|s| s.context == crate::auth::scope::Context::System)
            })
        };
        return match action {
            _ if grant.is_some() && token == bearer => Ok(()),
            Action::Introspect if system() => Ok(()),
            _ => Err(OAuthError::invalid_client(
                "the bearer token does not authorize this (introspect your own token, or with a system/ scope; \
                 revoke a token by presenting it, or as its client)",
            )),
        };
    }
    let revoking = match action {
        Action::Revoke => Some(token),
        Action::Introspect => None,
    };
    let issuer = authorization
        .issuer
        .as_ref()
        .ok_or_else(|| OAuthError::invalid_client("authenticate with a bearer token"))?;
    let client = issuer.authenticate(params, now)?;
    if let Some(token) = revoking
        && let Ok(grant) = authorization.verifier.verify(token, now)
        && grant.client_id.as_deref() != Some(client.registration.client_id.as_str())
    {
        return Err(OAuthError::invalid_client(
            "a client revokes only the tokens issued to it",
        ));
    }
    Ok(())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The form body's parameters; a form that is not `application/x-www-form-urlencoded`, is too
/// large or repeats a parameter is an `invalid_request`.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<Vec<(String, String)>, OAuthError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("the form is too large"))?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    for (n, (name, _)) in params.iter().enumerate() {
        if params[..n].iter().any(|(other, _)| other == name) {
            return Err(OAuthError::invalid_request(format!("{name} is given twice")));
        }
    }
    Ok(params)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn oauth_error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_response(status, &error.body());
    if status == StatusCode::UNAUTHORIZED
        && let Ok(value) = "Bearer realm=\"fhir\", error=\"invalid_client\"".parse()
    {
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, value);
    }
    response
}

fn not_offered() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "invalid_request", "error_description": "this server offers no such endpoint with its settings"}),
    )
}
