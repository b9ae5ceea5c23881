//! The built-in authorization server for SMART Backend Services (backend-services.html): a
//! registered client authenticates with a JWT it signed (`private_key_jwt`, RFC 7523) and gets a
//! short-lived access token by `client_credentials`, signed with the server's own key and checked
//! by the same `Verifier` as any other issuer's. No HTTP here (`http::oauth` serves it).
//!
//! The client assertion: `alg` RS384 or ES384 with a key of the client's registered JWK Set
//! (by `kid`); `iss` = `sub` = the `client_id`; `aud` = the token endpoint's URL; `exp` in the
//! future and at most five minutes away; a `jti` never seen before from that client (kept until
//! the assertion expires). Granted scopes are those requested that the client's registered scopes
//! cover; an access token lives `TOKEN_LIFETIME` seconds.

use super::keys::SigningKey;
use super::scope::{Refused, Scope, ScopeSet};
use super::token::CLOCK_SKEW;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Seconds an issued access token is valid.
pub const TOKEN_LIFETIME: i64 = 300;
/// The farthest in the future a client assertion's `exp` may be.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;
/// RFC 7523's client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client registered in the `--auth-clients-file`.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub client_id: String,
    /// The client's public keys, inline…
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// …or where to fetch them.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The most this client may be granted (space-separated SMART scopes).
    pub scope: String,
    /// A reference the client acts as, put in its tokens as `fhirUser`.
    #[serde(default, rename = "fhirUser")]
    pub fhir_user: Option<String>,
}

/// A registered client, ready to authenticate.
pub struct Client {
    pub registration: Registration,
    /// The registered scopes as parsed.
    scopes: ScopeSet,
    /// Its keys by `kid`, each with its one algorithm; empty until fetched for a `jwks_url`.
    keys: Mutex<HashMap<Option<String>, (DecodingKey, Algorithm)>>,
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// The client whose assertion named a key not (yet) known: worth fetching its `jwks_url`
    /// again and retrying.
    pub unknown_key_of: Option<String>,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
            unknown_key_of: None,
        }
    }

    /// `invalid_client` (401): the client is not who it says.
    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(401, "invalid_client", description)
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_request", description)
    }

    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// The built-in authorization server.
pub struct Issuer {
    /// `iss` of its tokens: the server's base URL.
    pub iss: String,
    /// `aud` of its tokens: what the verifier expects.
    pub audience: String,
    /// The token endpoint's URL, which client assertions must name as `aud`.
    pub token_url: String,
    pub key: SigningKey,
    clients: HashMap<String, Client>,
    /// `(client_id, jti)` of assertions seen, with their `exp`.
    seen: Mutex<HashMap<(String, String), i64>>,
}

/// The claims of a client assertion.
#[derive(Deserialize)]
struct Assertion {
    sub: String,
    exp: i64,
    jti: String,
}

impl Issuer {
    /// The server for the clients `registrations` (the parsed `--auth-clients-file`).
    pub fn new(
        iss: String,
        audience: String,
        token_url: String,
        key: SigningKey,
        registrations: Vec<Registration>,
        check_filter: &super::token::FilterCheck,
    ) -> Result<Issuer, String> {
        let mut clients = HashMap::new();
        for registration in registrations {
            let id = registration.client_id.clone();
            if id.is_empty() {
                return Err("a registered client has an empty client_id".into());
            }
            let mut keys = HashMap::new();
            match (&registration.jwks, &registration.jwks_url) {
                (Some(jwks), None) => {
                    keys = client_keys(jwks).map_err(|e| format!("client {id}: {e}"))?;
                }
                (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {}
                _ => return Err(format!("client {id}: give its keys as jwks or jwks_url (one of them)")),
            }
            let (scopes, refused) = ScopeSet::parse(&registration.scope, false, check_filter);
            if let Some(refused) = refused.first() {
                return Err(format!("client {id}: scope {}: {}", refused.scope, refused.reason));
            }
            let client = Client {
                registration,
                scopes,
                keys: Mutex::new(keys),
            };
            if clients.insert(id.clone(), client).is_some() {
                return Err(format!("client {id} is registered twice"));
            }
        }
        Ok(Issuer {
            iss,
            audience,
            token_url,
            key,
            clients,
            seen: Mutex::default(),
        })
    }

    /// Reads the `--auth-clients-file` (a JSON array of registrations).
    pub fn read_registrations(text: &str) -> Result<Vec<Registration>, String> {
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of clients: {e}"))
    }

    /// The clients whose keys are to be fetched, with where from.
    pub fn key_urls(&self) -> Vec<(String, String)> {
        self.clients
            .values()
            .filter_map(|c| {
                c.registration
                    .jwks_url
                    .clone()
                    .map(|url| (c.registration.client_id.clone(), url))
            })
            .collect()
    }

    /// Sets the keys of `client_id` (fetched from its `jwks_url`).
    pub fn set_client_keys(&self, client_id: &str, jwks: &JwkSet) -> Result<(), String> {
        let client = self
            .clients
            .get(client_id)
            .ok_or_else(|| format!("no client {client_id}"))?;
        let keys = client_keys(jwks)?;
        *client.keys.lock().unwrap_or_else(PoisonError::into_inner) = keys;
        Ok(())
    }

    /// The client a token request (form `params`) authenticates as, by its assertion.
    pub fn authenticate(&self, params: &[(String, String)], now: i64) -> Result<&Client, OAuthError> {
        let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if param("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_client(format!(
                "authenticate with client_assertion_type={JWT_BEARER} and a signed client_assertion"
            )));
        }
        let assertion = param("client_assertion").ok_or_else(|| OAuthError::invalid_client("no client_assertion"))?;
        let invalid = |why: &str| OAuthError::invalid_client(why.to_owned());
        let header =
            jsonwebtoken::decode_header(assertion).map_err(|_| invalid("the client assertion is not a signed JWT"))?;
        if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
            return Err(invalid("the client assertion must be signed RS384 or ES384"));
        }
        #[derive(Deserialize)]
        struct Unverified {
            iss: Option<String>,
        }
        let client_id = jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(assertion)
            .ok()
            .and_then(|c| c.iss)
            .ok_or_else(|| invalid("the client assertion has no iss"))?;
        if param("client_id").is_some_and(|id| id != client_id) {
            return Err(invalid("client_id is not the assertion's iss"));
        }
        let client = self
            .clients
            .get(&client_id)
            .ok_or_else(|| invalid("the client is not registered here"))?;
        let (decoding, algorithm) = {
            let keys = client.keys.lock().unwrap_or_else(PoisonError::into_inner);
            keys.get(&header.kid)
                .or_else(|| {
                    (header.kid.is_none() && keys.len() == 1)
                        .then(|| keys.values().next())
                        .flatten()
                })
                .cloned()
                .ok_or_else(|| OAuthError {
                    unknown_key_of: Some(client_id.clone()),
                    ..invalid("the assertion's key is not one the client registered")
                })?
        };
        if algorithm != header.alg {
            return Err(invalid("the assertion is not signed with its key's algorithm"));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_SKEW;
        validation.set_issuer(&[&client_id]);
        validation.set_audience(&[&self.token_url]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<Assertion>(assertion, &decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("the client assertion has expired"),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    invalid("the client assertion's aud must be the token endpoint's URL")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    invalid("the client assertion's signature does not verify")
                }
                _ => invalid("the client assertion does not verify (iss, sub, aud, exp and jti are required)"),
            })?
            .claims;
        if claims.sub != client_id {
            return Err(invalid("the client assertion's sub must be its iss"));
        }
        if claims.exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW as i64 {
            return Err(invalid("the client assertion's exp is more than five minutes away"));
        }
        if claims.jti.is_empty() {
            return Err(invalid("the client assertion has no jti"));
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, exp| *exp + CLOCK_SKEW as i64 > now);
        if seen.insert((client_id, claims.jti), claims.exp).is_some() {
            return Err(invalid("the client assertion's jti was used before"));
        }
        Ok(client)
    }

    /// The token endpoint: the answer to a token request with form `params`.
    pub fn token(&self, params: &[(String, String)], now: i64) -> Result<Value, OAuthError> {
        let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        match param("grant_type") {
            Some("client_credentials") => {}
            Some(other) => {
                return Err(OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    format!("grant_type {other} is not offered here; use client_credentials"),
                ));
            }
            None => return Err(OAuthError::invalid_request("grant_type is required")),
        }
        let client = self.authenticate(params, now)?;
        let requested = param("scope").unwrap_or_default();
        let (granted, refused) = grantable(&client.scopes, requested);
        if granted.is_empty() {
            let why = match refused.first() {
                Some(refused) => format!("scope {}: {}", refused.scope, refused.reason),
                None => "none of the scopes asked for is registered for this client".to_owned(),
            };
            return Err(OAuthError::new(400, "invalid_scope", why));
        }
        let scope = granted.join(" ");
        let registration = &client.registration;
        let mut claims = json!({
            "iss": self.iss, "aud": self.audience, "sub": registration.client_id,
            "client_id": registration.client_id, "scope": scope, "iat": now,
            "exp": now + TOKEN_LIFETIME, "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(user) = &registration.fhir_user {
            claims["fhirUser"] = json!(user);
        }
        let access_token = self
            .key
            .sign(&claims, "at+jwt")
            .map_err(|e| OAuthError::new(500, "server_error", e))?;
        Ok(json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": scope,
        }))
    }
}

/// The words of `requested` that a registered scope covers (each as asked for), and those that
/// are not scopes this server grants at all, with the reason (a modifier or a chain in a query,
/// letters out of order, …).
fn grantable(registered: &ScopeSet, requested: &str) -> (Vec<String>, Vec<Refused>) {
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for word in requested.split(' ').filter(|w| !w.is_empty()) {
        let (asked, why) = ScopeSet::parse(word, false, |_, _| None);
        refused.extend(why);
        let [asked] = asked.scopes.as_slice() else { continue };
        if registered.scopes.iter().any(|r| covers(r, asked)) && !granted.iter().any(|g| g == word) {
            granted.push(word.to_owned());
        }
    }
    (granted, refused)
}

/// Whether the registered scope `wide` grants all that `narrow` asks.
fn covers(wide: &Scope, narrow: &Scope) -> bool {
    wide.context == narrow.context
        && (wide.resource_type.is_none() || wide.resource_type == narrow.resource_type)
        && narrow
            .permissions
            .letters()
            .chars()
            .all(|p| wide.permissions.letters().contains(p))
        && (wide.filter.is_empty() || wide.filter == narrow.filter)
}

/// A client's keys, each with the algorithm it signs assertions with: the JWK's `alg` when
/// given, else RS384 for RSA and ES384 for P-384 (SMART Backend Services' two).
fn client_keys(jwks: &JwkSet) -> Result<HashMap<Option<String>, (DecodingKey, Algorithm)>, String> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let algorithm = client_algorithm(jwk)?;
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {:?}: {e}", jwk.common.key_id))?;
        keys.insert(jwk.common.key_id.clone(), (decoding, algorithm));
    }
    if keys.is_empty() {
        return Err("its JWK Set has no keys".into());
    }
    Ok(keys)
}

fn client_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    let named = jwk
        .common
        .key_algorithm
        .as_ref()
        .and_then(|alg| serde_json::to_value(alg).ok())
        .and_then(|v| v.as_str().and_then(|s| s.parse::<Algorithm>().ok()));
    let algorithm = match (named, &jwk.algorithm) {
        (Some(alg), _) => alg,
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS384,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P384 => Algorithm::ES384,
        _ => return Err(format!("key {:?} is neither RSA nor P-384", jwk.common.key_id)),
    };
    if !matches!(algorithm, Algorithm::RS384 | Algorithm::ES384) {
        return Err(format!(
            "key {:?}: {algorithm:?}; client assertions are RS384 or ES384",
            jwk.common.key_id
        ));
    }
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scopes_are_those_asked_that_a_registered_one_covers() {
        let (registered, _) = ScopeSet::parse("system/*.rs system/Observation.cruds", false, |_, _| None);
        assert_eq!(
            grantable(
                &registered,
                "system/Patient.read system/Observation.c system/Patient.c launch openid"
            )
            .0,
            ["system/Patient.read", "system/Observation.c"]
        );
        assert!(grantable(&registered, "patient/*.rs user/Observation.r").0.is_empty());
        assert!(grantable(&registered, "").0.is_empty());
        // A query with a modifier or a chain is no scope this server grants, and says why.
        let (granted, refused) = grantable(&registered, "system/Observation.rs?code:text=x");
        assert!(granted.is_empty());
        assert_eq!(refused.len(), 1);
        assert!(refused[0].reason.contains("modifier"), "{}", refused[0].reason);
        let (_, refused) = grantable(&registered, "system/Observation.rs?subject.name=x");
        assert!(refused[0].reason.contains("chain"), "{}", refused[0].reason);
    }
}
