//! Who is calling: the bearer access token of a request (RFC 6750 §2.1), verified into the
//! request's `Caller`, and the `401` answers (RFC 6750 §3: `WWW-Authenticate: Bearer`, with
//! `error="invalid_token"` when a token was given but proves nothing), each with an
//! OperationOutcome (`login`, or `expired`). Tokens are never logged.

use crate::auth::token::Rejection;
use crate::auth::{Authorization, Caller};
use crate::error::{Error, IssueCode};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The realm named in challenges.
const REALM: &str = "fhir";

/// The caller of a request with `headers`, or why it is not authenticated (`unauthorized` makes
/// the answer). Without authorization every caller is anonymous (and any token ignored).
pub async fn caller(authorization: Option<&Authorization>, headers: &HeaderMap) -> Result<Caller, Rejection> {
    let Some(authorization) = authorization else {
        return Ok(Caller::Anonymous);
    };
    let Some(token) = bearer_token(headers) else {
        return Err(Rejection::Missing);
    };
    let verified = match authorization.verifier.verify(token, now()) {
        // A key the issuer may have added since its JWK Set was fetched.
        Err(Rejection::UnknownKey(iss)) if authorization.refresh_issuer_keys(&iss).await => {
            authorization.verifier.verify(token, now())
        }
        other => other,
    };
    match verified {
        Err(Rejection::UnknownKey(_)) => Err(Rejection::Invalid("the token's key is not one of its issuer's".into())),
        other => other.map(Caller::Token),
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The token of an `Authorization: Bearer …` header; `None` without one, for another scheme
/// (`Basic`), or an empty token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `401` for `rejection`.
pub fn unauthorized(rejection: Rejection) -> Response {
    let (error, challenge) = match &rejection {
        Rejection::Missing => (
            Error::unauthorized(
                IssueCode::Login,
                "this server needs a bearer access token (Authorization: Bearer …)",
            ),
            format!("Bearer realm=\"{REALM}\""),
        ),
        Rejection::Invalid(why) | Rejection::UnknownKey(why) => (
            Error::unauthorized(IssueCode::Login, why.clone()),
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""),
        ),
        Rejection::Expired(why) => (
            Error::unauthorized(IssueCode::Expired, why.clone()),
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""),
        ),
    };
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// Adds the RFC 6750 `insufficient_scope` challenge to a `403` answered to a token's holder.
pub fn mark_insufficient_scope(response: &mut Response) {
    if response.status() == axum::http::StatusCode::FORBIDDEN {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"fhir\", error=\"insufficient_scope\""),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_bearer_token_counts() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc.def.ghi").as_deref(), Some("abc.def.ghi"));
        assert_eq!(with("bearer  abc").as_deref(), Some("abc"));
        assert_eq!(with("Basic dXNlcjpwYXNz"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
