//! Authorization as the `--auth-…` settings ask for it: the issuers whose tokens are trusted
//! (an external one's JWK Set, a development HS256 secret, the built-in server's own key), the
//! built-in authorization server with its registered clients, and the endpoints clients are
//! told about. Built here because `auth` knows nothing of the configuration.

use crate::auth::issuer::Issuer;
use crate::auth::jwks_url::{KeySource, http_client};
use crate::auth::keys::SigningKey;
use crate::auth::token::Verifier;
use crate::auth::{Authorization, Endpoints, INTROSPECT_PATH, JWKS_PATH, PatientDirectory, REVOKE_PATH, TOKEN_PATH};
use crate::config::{PatientDirectoryArg, ServeConfig};
use crate::error::{Error, Result};
use crate::model::ResourceType;
use jsonwebtoken::jwk::JwkSet;
use std::path::{Path, PathBuf};

/// The authorization `config` asks for, or `None` when no setting turns it on: then the server
/// is open to whoever reaches it, and says so.
pub fn authorization(config: &ServeConfig, base_url: &str) -> Result<Option<Authorization>> {
    if !config.authorization_on() {
        return Ok(None);
    }
    let setting = |what: String| Error::invalid(what);
    let audience = config.auth_audience.clone().unwrap_or_else(|| base_url.to_owned());
    let mut verifier = Verifier::new(audience.clone(), check_scope_filter);
    let own = |path: &str| format!("{base_url}/{path}");
    let mut issuer_keys = Vec::new();
    let mut client_keys = Vec::new();
    let mut endpoints = Endpoints {
        introspection: Some(own(INTROSPECT_PATH)),
        revocation: Some(own(REVOKE_PATH)),
        authorization: config.auth_authorization_endpoint.clone(),
        token: config.auth_token_endpoint.clone(),
        ..Endpoints::default()
    };
    if let Some(iss) = &config.auth_issuer {
        match (&config.auth_jwks_file, &config.auth_jwks_url) {
            (Some(file), None) => {
                let jwks = read_jwks(file)?;
                for skipped in verifier.trust_jwks(iss, &jwks).map_err(setting)? {
                    tracing::warn!(issuer = %iss, "{skipped}; left out");
                }
            }
            (None, Some(url)) => {
                check_url(url).map_err(|e| setting(format!("--auth-jwks-url: {e}")))?;
                verifier.expect_issuer(iss);
                issuer_keys.push((iss.clone(), KeySource::new(url.clone())));
            }
            (Some(_), Some(_)) => return Err(setting("give --auth-jwks-file or --auth-jwks-url, not both".into())),
            (None, None) if config.auth_hs256_secret_file.is_some() => {}
            (None, None) => {
                return Err(setting(
                    "--auth-issuer needs the issuer's keys: --auth-jwks-file or --auth-jwks-url".into(),
                ));
            }
        }
        endpoints.issuer = Some(iss.clone());
    }
    if let Some(file) = &config.auth_hs256_secret_file {
        let secret =
            std::fs::read(file).map_err(|e| setting(format!("--auth-hs256-secret-file {}: {e}", file.display())))?;
        let secret = secret.trim_ascii();
        if secret.len() < 32 {
            return Err(setting("the HS256 secret must be at least 32 bytes".into()));
        }
        let iss = config.auth_issuer.as_deref().unwrap_or(base_url);
        verifier.trust_hs256(iss, secret).map_err(setting)?;
        tracing::warn!(issuer = %iss, "trusting tokens signed with a shared HS256 secret: for development only");
    }
    let issuer = match &config.auth_clients_file {
        None => None,
        Some(file) => {
            let issuer = built_in_issuer(config, file, base_url, &audience)?;
            for (client_id, url) in issuer.key_urls() {
                check_url(&url).map_err(|e| setting(format!("client {client_id}'s jwks_url: {e}")))?;
                client_keys.push((client_id, KeySource::new(url)));
            }
            verifier
                .trust_jwks(base_url, &serde_json::from_value(issuer.key.jwks()).expect("a JWK Set"))
                .map_err(setting)?;
            endpoints.issuer = Some(base_url.to_owned());
            endpoints.token = Some(own(TOKEN_PATH));
            endpoints.jwks = Some(own(JWKS_PATH));
            Some(issuer)
        }
    };
    if endpoints.token.is_none() {
        tracing::warn!(
            "no token endpoint to tell clients about: give --auth-token-endpoint (and --auth-authorization-endpoint) \
             for the identity provider"
        );
    }
    let patient_directory = match config.auth_patient_directory {
        PatientDirectoryArg::Named => PatientDirectory::Named,
        PatientDirectoryArg::None => PatientDirectory::None,
    };
    tracing::info!(issuers = ?verifier.issuers(), "authorization on: every request but the CapabilityStatement needs a bearer token");
    let http = if issuer_keys.is_empty() && client_keys.is_empty() {
        None
    } else {
        Some(http_client().map_err(Error::internal)?)
    };
    Ok(Some(Authorization {
        verifier,
        endpoints,
        patient_directory,
        issuer,
        issuer_keys,
        client_keys,
        http,
    }))
}

/// The built-in authorization server: the clients of `clients_file`, and the signing key
/// (`--auth-signing-key`, else generated on first start beside the SQLite database or in
/// `./data/`).
fn built_in_issuer(config: &ServeConfig, clients_file: &Path, base_url: &str, audience: &str) -> Result<Issuer> {
    let setting = |what: String| Error::invalid(what);
    let text = std::fs::read_to_string(clients_file)
        .map_err(|e| setting(format!("--auth-clients-file {}: {e}", clients_file.display())))?;
    let registrations = Issuer::read_registrations(&text)
        .map_err(|e| setting(format!("--auth-clients-file {}: {e}", clients_file.display())))?;
    let key_path = config
        .auth_signing_key
        .clone()
        .unwrap_or_else(|| default_key_path(&config.database_url));
    let key = SigningKey::load_or_generate(&key_path).map_err(|e| setting(format!("the signing key: {e}")))?;
    let issuer = Issuer::new(
        base_url.to_owned(),
        audience.to_owned(),
        format!("{base_url}/{TOKEN_PATH}"),
        key,
        registrations,
        &check_scope_filter,
    )
    .map_err(|e| setting(format!("--auth-clients-file {}: {e}", clients_file.display())))?;
    Ok(issuer)
}

/// Where a generated signing key goes: beside the SQLite database, else `./data/`.
fn default_key_path(database_url: &str) -> PathBuf {
    let dir = database_url
        .strip_prefix("sqlite:")
        .map(|path| path.trim_start_matches("//"))
        .map(|path| path.split('?').next().unwrap_or(path))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"));
    dir.join("signing-key.pem")
}

/// A JWK Set URL must be HTTPS; plain HTTP only to this machine (a local identity provider, a
/// test).
fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let local = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if local => Ok(()),
        _ => Err(format!(
            "{url} is not an https:// URL (plain http only to this machine)"
        )),
    }
}

fn read_jwks(file: &Path) -> Result<JwkSet> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::invalid(format!("--auth-jwks-file {}: {e}", file.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("--auth-jwks-file {} is not a JWK Set: {e}", file.display())))
}

/// Why the search query of a granular scope cannot narrow `resource_type` (`None`: it can): it
/// must be a search the server runs, on the R4 parameters, with at least one criterion.
fn check_scope_filter(resource_type: Option<ResourceType>, filter: &[(String, String)]) -> Option<String> {
    let resource_type = resource_type?;
    let parsed = crate::search::request::parse(
        crate::search::Registry::r4(),
        Some(&[resource_type.as_str()]),
        filter,
        "",
        crate::search::limits::Limits::default(),
        true,
    );
    match parsed {
        Ok(request) if !request.clauses.is_empty() => None,
        Ok(_) => Some("the scope's query has no search criteria".to_owned()),
        Err(e) => Some(format!("the scope's query is not a search of {resource_type}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_are_https_or_this_machine() {
        assert!(check_url("https://idp.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://[::1]/jwks").is_ok());
        assert!(check_url("http://localhost.evil.example/jwks").is_err());
        assert!(check_url("http://10.0.0.1/jwks").is_err());
        assert!(check_url("ftp://idp/jwks").is_err());
    }

    #[test]
    fn a_generated_key_goes_beside_the_sqlite_database() {
        assert_eq!(
            default_key_path("sqlite:data/fhir.sqlite"),
            PathBuf::from("data/signing-key.pem")
        );
        assert_eq!(
            default_key_path("sqlite:///var/lib/fhir/db.sqlite?mode=rwc"),
            PathBuf::from("/var/lib/fhir/signing-key.pem")
        );
        assert_eq!(
            default_key_path("sqlite:fhir.sqlite"),
            PathBuf::from("data/signing-key.pem")
        );
        assert_eq!(
            default_key_path("postgres://u@h/db"),
            PathBuf::from("data/signing-key.pem")
        );
    }
}
