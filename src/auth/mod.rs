//! Who is asking: the caller of a request, as every interaction sees it (`interactions::Cx`).
//!
//! An outside caller is `Anonymous` when authorization is off (whoever reaches the port may do
//! everything), else the holder of a verified access token (`Token`, with what it grants:
//! `token` verifies, `scope` reads SMART scopes). Work the server does for itself is done by an
//! explicit `System` caller naming the task, never by a caller left out or defaulted, so that a
//! permission check cannot be skipped by a path that forgot to pass one. This module never sees
//! a database, a request or axum.

pub mod discovery;
pub mod issuer;
pub mod jwks_url;
pub mod keys;
pub mod scope;

pub mod token;

use scope::ScopeSet;
use std::sync::Arc;

/// Where the OAuth endpoints live, below the FHIR base (`http::oauth` serves them).
pub const TOKEN_PATH: &str = "auth/token";
pub const INTROSPECT_PATH: &str = "auth/introspect";
pub const REVOKE_PATH: &str = "auth/revoke";
pub const JWKS_PATH: &str = ".well-known/jwks.json";

/// Authorization, when it is on: the tokens trusted, and what the server tells clients about it.
pub struct Authorization {
    pub verifier: token::Verifier,
    /// Where clients get tokens, for `.well-known/smart-configuration` and the
    /// CapabilityStatement.
    pub endpoints: Endpoints,
    /// What `patient/` scopes reach outside the patient's compartment.
    pub patient_directory: PatientDirectory,
    /// The built-in authorization server, when clients are registered (`--auth-clients-file`).
    pub issuer: Option<issuer::Issuer>,
    /// JWK Sets fetched by URL: of external issuers (by `iss`), and of built-in server clients
    /// (by `client_id`).
    pub issuer_keys: Vec<(String, jwks_url::KeySource)>,
    pub client_keys: Vec<(String, jwks_url::KeySource)>,
    /// The HTTP client that fetches them (when there is any to fetch).
    pub http: Option<reqwest::Client>,
}

impl Authorization {
    /// Fetches the JWK Set of issuer `iss` again after a token named a key not known, unless it
    /// has no URL or was fetched moments ago. Whether new keys were taken.
    pub async fn refresh_issuer_keys(&self, iss: &str) -> bool {
        let (Some(http), Some((_, source))) = (&self.http, self.issuer_keys.iter().find(|(i, _)| i == iss)) else {
            return false;
        };
        if !source.may_fetch() {
            return false;
        }
        match source
            .fetch(http)
            .await
            .and_then(|jwks| self.verifier.replace_jwks(iss, &jwks))
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(issuer = %iss, error = %e, "the issuer's keys could not be fetched");
                false
            }
        }
    }

    /// Fetches the JWK Set of the built-in server's client `client_id` again, as for an issuer.
    pub async fn refresh_client_keys(&self, client_id: &str) -> bool {
        let (Some(http), Some(issuer), Some((_, source))) = (
            &self.http,
            &self.issuer,
            self.client_keys.iter().find(|(c, _)| c == client_id),
        ) else {
            return false;
        };
        if !source.may_fetch() {
            return false;
        }
        match source
            .fetch(http)
            .await
            .and_then(|jwks| issuer.set_client_keys(client_id, &jwks))
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(client = %client_id, error = %e, "the client's keys could not be fetched");
                false
            }
        }
    }

    /// Fetches every JWK Set with a URL (at start, and every `jwks_url::REFRESH_INTERVAL`).
    pub async fn refresh_all_keys(&self) {
        let Some(http) = &self.http else { return };
        for (iss, source) in &self.issuer_keys {
            if let Err(e) = source
                .fetch(http)
                .await
                .and_then(|jwks| self.verifier.replace_jwks(iss, &jwks))
            {
                tracing::warn!(issuer = %iss, error = %e, "the issuer's keys could not be fetched");
            }
        }
        if let Some(issuer) = &self.issuer {
            for (client_id, source) in &self.client_keys {
                if let Err(e) = source
                    .fetch(http)
                    .await
                    .and_then(|jwks| issuer.set_client_keys(client_id, &jwks))
                {
                    tracing::warn!(client = %client_id, error = %e, "the client's keys could not be fetched");
                }
            }
        }
    }
}

/// Whether types outside every compartment (Practitioner, Organization, Medication, …) may be
/// read under `patient/` scopes that name them (`--auth-patient-directory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatientDirectory {
    /// When the scope names the type (`patient/Practitioner.rs`), not through `*`.
    #[default]
    Named,
    /// Never: `patient/` scopes reach the launch patient's compartment only.
    None,
}

/// The OAuth endpoints clients are pointed at.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub issuer: Option<String>,
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub jwks: Option<String>,
    pub introspection: Option<String>,
    pub revocation: Option<String>,
}

/// The one on whose behalf an interaction runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authorization is off: an unauthenticated caller from outside, restricted by nothing.
    Anonymous,
    /// The server itself, doing `SystemTask` (not on behalf of any outside caller).
    System(SystemTask),
    /// The holder of a verified access token, restricted to what it grants.
    Token(Arc<Grant>),
}

/// What an access token grants, read from its claims (`token::Verifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The scopes that grant something.
    pub scopes: ScopeSet,
    /// The launch patient's id (`patient`), which `patient/` scopes are about.
    pub patient: Option<String>,
    /// The user (`fhirUser`): a reference to a Patient, Practitioner, PractitionerRole,
    /// RelatedPerson or Person.
    pub fhir_user: Option<String>,
    /// The client the token was issued to (`client_id`, else `azp` or `sub`).
    pub client_id: Option<String>,
    /// `jti`, by which a token is revoked.
    pub token_id: Option<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    pub issuer: String,
    /// The purposes of use the token states (`purpose_of_use`: v3 PurposeOfUse codes such as
    /// `TREAT` or `ETREAT`), for consent decisions; empty when it states none.
    pub purposes: Vec<String>,
}

/// The work the server does for itself, named so that logs and a later audit trail can say
/// why the server read or wrote what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTask {
    /// Looking up the ValueSets that `:in` / `:not-in` name, to expand them into codes.
    ValueSetLookup,
    /// Loading the stored `SearchParameter` resources into the registry.
    SearchParameterLoad,
    /// A `$reindex` job re-indexing stored resources.
    Reindex,
    /// `fhir-server generate` writing a synthetic data set.
    Generate,
    /// Reading the Consents, roles and resources a consent decision needs.
    ConsentLookup,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Anonymous => f.write_str("anonymous"),
            Caller::System(task) => write!(f, "system ({task:?})"),
            Caller::Token(grant) => write!(
                f,
                "token of {}",
                grant.client_id.as_deref().unwrap_or("an unnamed client")
            ),
        }
    }
}
