//! Bearer access tokens (RFC 6750) as JWTs: signature, issuer, audience and times checked, then
//! the SMART claims read into a `Grant`.
//!
//! - Keys: each trusted issuer has a JWK Set (RS256, RS384, ES256, ES384, chosen by `kid`); a
//!   development setting trusts an HS256 shared secret instead. A key is used only with its own
//!   algorithm (from the JWK's `alg`, else its type and curve), so a token cannot pick a weaker
//!   one (`alg: none`, or HS256 keyed with an RSA public key).
//! - `iss` (a trusted issuer), `aud` (string or array, must hold the server's audience), `exp` and
//!   `scope` are required; `nbf` and `iat` are honoured when present; 60 s of clock skew.
//! - Only access tokens: an ID token or a refresh token (told by `typ`, `token_use`, `nonce`) is
//!   refused even when signed by a trusted issuer.
//! - A verified token is kept (by a hash of it) until it expires, so a client's next request costs
//!   a map look-up; a revoked one is refused from then on.

use super::Grant;
use super::scope::ScopeSet;
use crate::model::ResourceType;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW: u64 = 60;

/// Why a request is not authenticated: `expired`, or anything else (`login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials, or not a bearer token.
    Missing,
    /// A token that proves nothing: bad shape, signature, issuer, audience, type, or revoked.
    Invalid(String),
    /// A token past its `exp` (or not yet valid).
    Expired(String),
    /// A token of a trusted issuer signed with a key not (yet) known: worth fetching the
    /// issuer's JWK Set again, if it has a URL; else `Invalid`.
    UnknownKey(String),
}

/// A key a trusted issuer signs with, and the one algorithm it is used with.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

/// The SHA-256 of what a token's signature signs (its header and claims): the same for every
/// encoding of one signature (an ECDSA signature has two valid forms), so that revoking one
/// revokes them all.
fn signed_part_digest(token: &str) -> [u8; 32] {
    let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
    Sha256::digest(signed.as_bytes()).into()
}

/// The codes of a `purpose_of_use` claim: a code, `system|code`, a Coding (as IHE IUA writes
/// it), or a list of those.
fn purposes_of(claim: Option<&serde_json::Value>) -> Vec<String> {
    fn code(value: &serde_json::Value) -> Option<String> {
        match value {
            serde_json::Value::String(text) => Some(text.rsplit('|').next().unwrap_or(text).to_owned()),
            serde_json::Value::Object(coding) => coding.get("code").and_then(|c| c.as_str()).map(str::to_owned),
            _ => None,
        }
    }
    match claim {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(code).collect(),
        Some(one) => code(one).into_iter().collect(),
        None => Vec::new(),
    }
}

/// How a revoked token is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Revoked {
    Jti(String),
    Digest([u8; 32]),
}

/// An issuer's keys by `kid` (`None`: a key named by no `kid`).
type KeysByKid = HashMap<Option<String>, Key>;

/// An issuer whose tokens are trusted, and its keys by `kid`.
#[derive(Clone)]
struct Issuer {
    iss: String,
    keys: HashMap<Option<String>, Key>,
}

/// Why a granular scope's search query cannot narrow a type (`None`: it can); see `ScopeSet::parse`.
pub type FilterCheck = dyn Fn(Option<ResourceType>, &[(String, String)]) -> Option<String> + Send + Sync;

/// Checks bearer tokens and remembers the ones it verified.
pub struct Verifier {
    /// Written when a JWK Set is fetched again (`jwks_url`), read by every verification.
    issuers: std::sync::RwLock<Vec<Issuer>>,
    audience: String,
    /// Verified tokens by the SHA-256 of their text, until they expire.
    verified: Mutex<HashMap<[u8; 32], Arc<Grant>>>,
    /// Revoked tokens, by their `jti` (or, for a token without one, by the digest of its text),
    /// with their `exp` (after which they fail anyway).
    revoked: Mutex<HashMap<Revoked, i64>>,
    /// Whether a scope's search query is one the server can search a type by (`None`: it is).
    check_filter: Box<FilterCheck>,
}

/// The claims read from an access token.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    scope: String,
    #[serde(default)]
    patient: Option<String>,
    #[serde(default, rename = "fhirUser")]
    fhir_user: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    /// A PurposeOfUse code, `system|code`, a Coding, or a list of them.
    #[serde(default)]
    purpose_of_use: Option<serde_json::Value>,
    /// Keycloak marks its tokens `Bearer`, `ID` or `Refresh`.
    #[serde(default)]
    typ: Option<String>,
    /// AWS Cognito marks its tokens `access` or `id`.
    #[serde(default)]
    token_use: Option<String>,
    /// Only ID tokens carry a nonce.
    #[serde(default)]
    nonce: Option<Value>,
}

/// Only the issuer, read before the signature to choose the keys that check it.
#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

impl Verifier {
    /// A verifier of tokens for `audience`; `check_filter` judges the search queries of granular
    /// scopes.
    pub fn new(
        audience: impl Into<String>,
        check_filter: impl Fn(Option<ResourceType>, &[(String, String)]) -> Option<String> + Send + Sync + 'static,
    ) -> Verifier {
        Verifier {
            issuers: std::sync::RwLock::default(),
            audience: audience.into(),
            verified: Mutex::default(),
            revoked: Mutex::default(),
            check_filter: Box::new(check_filter),
        }
    }

    /// Trusts the tokens of `iss` signed with a key of `jwks` (RS256, RS384, ES256, ES384).
    /// Keys of other kinds are left out, with the reason; none usable is an error.
    pub fn trust_jwks(&mut self, iss: &str, jwks: &JwkSet) -> Result<Vec<String>, String> {
        let (keys, skipped) = usable_keys(iss, jwks)?;
        self.add_keys(iss, keys);
        Ok(skipped)
    }

    /// Trusts exactly the keys of `jwks` for `iss` from now on (a JWK Set fetched again): keys
    /// the issuer withdrew are no longer trusted.
    pub fn replace_jwks(&self, iss: &str, jwks: &JwkSet) -> Result<Vec<String>, String> {
        let (keys, skipped) = usable_keys(iss, jwks)?;
        let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        match issuers.iter_mut().find(|i| i.iss == iss) {
            Some(issuer) => {
                // Tokens verified with a key now withdrawn are verified again (and refused).
                if issuer.keys.keys().any(|kid| !keys.contains_key(kid)) {
                    self.verified
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|_, grant| grant.issuer != iss);
                }
                issuer.keys = keys;
            }
            None => issuers.push(Issuer {
                iss: iss.to_owned(),
                keys,
            }),
        }
        Ok(skipped)
    }

    /// Trusts `iss` with no keys yet (they come from its `jwks_url`).
    pub fn expect_issuer(&mut self, iss: &str) {
        self.add_keys(iss, HashMap::new());
    }

    /// Trusts the tokens of `iss` signed with the HS256 `secret` (development only).
    pub fn trust_hs256(&mut self, iss: &str, secret: &[u8]) -> Result<(), String> {
        let decoding = DecodingKey::from_secret(secret).map_err(|e| format!("not a usable HS256 secret: {e}"))?;
        let mut keys = HashMap::new();
        keys.insert(
            None,
            Key {
                decoding,
                algorithm: Algorithm::HS256,
            },
        );
        self.add_keys(iss, keys);
        Ok(())
    }

    /// Trusts `keys` for `iss`, beside any it has already.
    fn add_keys(&mut self, iss: &str, keys: HashMap<Option<String>, Key>) {
        let issuers = self.issuers.get_mut().unwrap_or_else(PoisonError::into_inner);
        match issuers.iter_mut().find(|i| i.iss == iss) {
            Some(issuer) => issuer.keys.extend(keys),
            None => issuers.push(Issuer {
                iss: iss.to_owned(),
                keys,
            }),
        }
    }

    /// RFC 7662 token introspection: the token's claims as this server reads them when it is
    /// active (verified, not expired, not revoked), else only `active: false`.
    pub fn introspect(&self, token: &str, now: i64) -> serde_json::Value {
        let Ok(grant) = self.verify(token, now) else {
            return serde_json::json!({"active": false});
        };
        let mut answer = serde_json::json!({
            "active": true, "scope": grant.scopes.to_v2(), "exp": grant.expires_at,
            "iss": grant.issuer, "aud": self.audience, "token_type": "Bearer",
        });
        let mut put = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                answer[name] = serde_json::json!(value);
            }
        };
        put("client_id", &grant.client_id);
        put("sub", &grant.client_id);
        put("patient", &grant.patient);
        put("fhirUser", &grant.fhir_user);
        put("jti", &grant.token_id);
        answer
    }

    /// The grant of the bearer `token`, or why it grants nothing.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Grant>, Rejection> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let grant = match cached {
            Some(grant) => grant,
            None => {
                let grant = Arc::new(self.verify_anew(token, now)?);
                let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                // Expired entries go when the cache grows, so it holds about the live tokens.
                if verified.len() > 10_000 {
                    verified.retain(|_, g| g.expires_at > now);
                }
                verified.insert(digest, grant.clone());
                grant
            }
        };
        if grant.expires_at + CLOCK_SKEW as i64 <= now {
            return Err(Rejection::Expired("the access token has expired".into()));
        }
        let revoked = {
            let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            !revoked.is_empty()
                && (revoked.contains_key(&Revoked::Digest(signed_part_digest(token)))
                    || grant
                        .token_id
                        .as_ref()
                        .is_some_and(|jti| revoked.contains_key(&Revoked::Jti(jti.clone()))))
        };
        if revoked {
            return Err(Rejection::Invalid("the access token was revoked".into()));
        }
        Ok(grant)
    }

    /// Refuses `token` (verified as `grant`) from now on, until it expires: by its `jti`, or when
    /// it has none by the digest of what its signature signs, so that the same token with its
    /// signature encoded otherwise is refused too.
    pub fn revoke(&self, token: &str, grant: &Grant, now: i64) {
        let key = match &grant.token_id {
            Some(jti) => Revoked::Jti(jti.clone()),
            None => Revoked::Digest(signed_part_digest(token)),
        };
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.retain(|_, exp| *exp + CLOCK_SKEW as i64 > now);
        revoked.insert(key, grant.expires_at);
    }

    fn verify_anew(&self, token: &str, now: i64) -> Result<Grant, Rejection> {
        let invalid = |why: &str| Rejection::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a signed JWT"))?;
        if let Some(typ) = &header.typ
            && !["jwt", "at+jwt", "application/at+jwt"].contains(&typ.to_ascii_lowercase().as_str())
        {
            return Err(invalid("the token is not an access token (typ)"));
        }
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<IssuerOnly>(token)
            .ok()
            .and_then(|c| c.iss)
            .ok_or_else(|| invalid("the token has no issuer"))?;
        let key = {
            let issuers = self.issuers.read().unwrap_or_else(PoisonError::into_inner);
            let issuer = issuers
                .iter()
                .find(|i| i.iss == iss)
                .ok_or_else(|| invalid("the token's issuer is not trusted here"))?;
            issuer
                .keys
                .get(&header.kid)
                .or_else(|| {
                    (header.kid.is_none() && issuer.keys.len() == 1)
                        .then(|| issuer.keys.values().next())
                        .flatten()
                })
                .cloned()
                .ok_or(Rejection::UnknownKey(iss.clone()))?
        };
        if header.alg != key.algorithm {
            return Err(invalid("the token is not signed with its key's algorithm"));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = CLOCK_SKEW;
        validation.set_issuer(&[&iss]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Rejection::Expired("the access token has expired".into())
                }
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    Rejection::Expired("the access token is not valid yet (nbf)".into())
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience
                | jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    invalid("the token is not for this server (aud)")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("the token's signature does not verify"),
                _ => invalid("the token does not verify"),
            })?
            .claims;
        if claims.iat.is_some_and(|iat| iat > now + CLOCK_SKEW as i64) {
            return Err(Rejection::Expired(
                "the access token was issued in the future (iat)".into(),
            ));
        }
        let is_access = claims.typ.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
            && claims.token_use.as_deref().is_none_or(|t| t == "access")
            && claims.nonce.is_none();
        if !is_access {
            return Err(invalid("the token is not an access token"));
        }
        let (scopes, refused) = ScopeSet::parse(&claims.scope, claims.patient.is_some(), &self.check_filter);
        // Once per token (verified tokens are remembered): why a scope it carries grants nothing.
        for refused in &refused {
            tracing::info!(scope = %refused.scope, reason = %refused.reason, "a scope of an access token grants nothing");
        }
        let purposes = purposes_of(claims.purpose_of_use.as_ref());
        Ok(Grant {
            purposes,
            scopes,
            patient: claims.patient,
            fhir_user: claims.fhir_user,
            client_id: claims.client_id.or(claims.azp).or(claims.sub),
            token_id: claims.jti,
            expires_at: claims.exp,
            issuer: claims.iss,
        })
    }

    /// The issuers trusted, for the logs.
    pub fn issuers(&self) -> HashSet<String> {
        let issuers = self.issuers.read().unwrap_or_else(PoisonError::into_inner);
        issuers.iter().map(|i| i.iss.clone()).collect()
    }
}

/// The usable keys of `jwks` by `kid`, and why each other one was left out; none usable is an
/// error.
fn usable_keys(iss: &str, jwks: &JwkSet) -> Result<(KeysByKid, Vec<String>), String> {
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for jwk in &jwks.keys {
        match key_of(jwk) {
            Ok(key) => {
                keys.insert(jwk.common.key_id.clone(), key);
            }
            Err(why) => skipped.push(format!("key {:?}: {why}", jwk.common.key_id)),
        }
    }
    if keys.is_empty() {
        return Err(format!("no usable key in the JWK Set of {iss}: {}", skipped.join("; ")));
    }
    Ok((keys, skipped))
}

/// A JWK as a key with its one algorithm: the JWK's `alg` when given, else RS256 for RSA, ES256
/// for P-256 and ES384 for P-384.
fn key_of(jwk: &Jwk) -> Result<Key, String> {
    const ACCEPTED: [Algorithm; 4] = [Algorithm::RS256, Algorithm::RS384, Algorithm::ES256, Algorithm::ES384];
    let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(alg), _) => {
            // The JWK's `alg` as written (`RS384`), which names the signature algorithm too.
            let name = serde_json::to_value(alg)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            name.and_then(|n| n.parse::<Algorithm>().ok())
                .ok_or_else(|| "an algorithm not used for signatures".to_owned())?
        }
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P384 => Algorithm::ES384,
        _ => return Err("a key type other than RSA, P-256 or P-384".to_owned()),
    };
    if !ACCEPTED.contains(&algorithm) {
        return Err(format!("{algorithm:?} is not one of RS256, RS384, ES256, ES384"));
    }
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("not a valid key: {e}"))?;
    Ok(Key { decoding, algorithm })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const ISS: &str = "https://idp.example.test/realms/fhir";
    const AUD: &str = "https://h/fhir/R4";

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    fn key_set(kids: &[&str]) -> JwkSet {
        let mut all: serde_json::Value = serde_json::from_str(&fixture("idp-jwks.json")).unwrap();
        all["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| kids.contains(&k["kid"].as_str().unwrap()));
        serde_json::from_value(all).unwrap()
    }

    fn token(kid: &str, jti: Option<&str>, now: i64) -> String {
        let mut claims =
            serde_json::json!({"iss": ISS, "aud": AUD, "exp": now + 300, "iat": now, "scope": "system/*.rs"});
        if let Some(jti) = jti {
            claims["jti"] = serde_json::json!(jti);
        }
        let (algorithm, key) = match kid {
            "idp-ec" => (
                Algorithm::ES384,
                EncodingKey::from_ec_pem(fixture("idp-ec384.pem").as_bytes()).unwrap(),
            ),
            _ => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(fixture("idp-rsa.pem").as_bytes()).unwrap(),
            ),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn verifier() -> Verifier {
        let mut verifier = Verifier::new(AUD, |_, _| None);
        verifier.trust_jwks(ISS, &key_set(&["idp-ec", "idp-rsa"])).unwrap();
        verifier
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_withdrawn_key_no_longer_verifies_tokens_verified_before() {
        let verifier = verifier();
        let (ec, rsa) = (token("idp-ec", Some("a"), now()), token("idp-rsa", Some("b"), now()));
        assert!(verifier.verify(&ec, now()).is_ok());
        assert!(verifier.verify(&rsa, now()).is_ok());
        verifier.replace_jwks(ISS, &key_set(&["idp-rsa"])).unwrap();
        assert!(verifier.verify(&ec, now()).is_err(), "signed with the withdrawn key");
        assert!(verifier.verify(&rsa, now()).is_ok());
    }

    #[test]
    fn purposes_of_use_come_as_codes_codings_or_lists() {
        use serde_json::json;
        assert_eq!(purposes_of(Some(&json!("TREAT"))), ["TREAT"]);
        assert_eq!(
            purposes_of(Some(
                &json!(["http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT", {"code": "HRESCH"}])
            )),
            ["ETREAT", "HRESCH"]
        );
        assert!(purposes_of(None).is_empty());
        assert!(purposes_of(Some(&json!(7))).is_empty());
    }

    #[test]
    fn tokens_with_or_without_jti_are_revoked() {
        let verifier = verifier();
        for jti in [Some("j1"), None] {
            let token = token("idp-ec", jti, now());
            let grant = verifier.verify(&token, now()).unwrap();
            verifier.revoke(&token, &grant, now());
            assert!(verifier.verify(&token, now()).is_err(), "{jti:?}");
        }
        // Another encoding of the same signature signs the same part, so it is revoked too.
        assert_eq!(signed_part_digest("h.c.sig1"), signed_part_digest("h.c.sig2"));
        assert_ne!(signed_part_digest("h.c.sig"), signed_part_digest("h.d.sig"));
        let other = token("idp-ec", None, now() + 1);
        assert!(
            verifier.verify(&other, now()).is_ok(),
            "another token without jti is not revoked"
        );
    }
}
