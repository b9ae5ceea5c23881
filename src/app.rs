//! Wiring: open the store, build the shared state and router, and serve until shut down.
//! `start` is what both `main` and the integration tests call, so tests exercise the real server.

use crate::auth::token::Verifier;
use crate::auth::{Authorization, Endpoints, SystemTask};
use crate::config::ServeConfig;
use crate::error::Error;
use crate::error::Result;
use crate::http::{self, AppState, FHIR_BASE_PATH};
use crate::interactions::{Cx, Services, capabilities};
use crate::model::Instant;
use crate::model::ResourceType;
use crate::store;
use axum::serve::ListenerExt;
use jsonwebtoken::jwk::JwkSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server started by `start`: where it listens, and how to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server ends (it ends on its own only on an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// The most versions one transaction may write: on PostgreSQL a version's place in history is its
/// transaction's id times 2^20 plus its place in the transaction (see "History positions" in
/// `store::postgres`). A transaction Bundle writes a version per entry at most, and a conditional
/// delete a version per match.
const MAX_VERSIONS_PER_TRANSACTION: usize = 1 << 20;

/// Binds, opens the store (applying migrations) and starts serving in the background.
pub async fn start(config: &ServeConfig) -> Result<RunningServer> {
    if !config.authorization_on() && !config.allow_unauthenticated && !is_loopback(&config.listen) {
        return Err(Error::invalid(format!(
            "refusing to serve {} without authorization: give an --auth-… setting, or \
             --allow-unauthenticated to let whoever reaches it read and write every record",
            config.listen
        )));
    }
    for (flag, value) in [
        ("--bundle-max-entries", config.bundle_max_entries),
        ("--search-max-count", config.search_max_count as usize),
    ] {
        if value >= MAX_VERSIONS_PER_TRANSACTION {
            return Err(crate::error::Error::invalid(format!(
                "{flag} must be below {MAX_VERSIONS_PER_TRANSACTION}, the most versions one transaction writes"
            )));
        }
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| crate::error::Error::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    let base_url = config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}{FHIR_BASE_PATH}"))
        .trim_end_matches('/')
        .to_owned();
    let state = build_state(config, &base_url).await?;
    if state.services.authorization.is_none() {
        tracing::warn!(
            listen = %config.listen,
            "authorization is off: whoever reaches this server reads and writes every record"
        );
    }
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    Ok(RunningServer {
        addr,
        base_url,
        shutdown: Some(tx),
        task,
    })
}

pub async fn build_state(config: &ServeConfig, base_url: &str) -> Result<AppState> {
    let options = store::StoreOptions {
        max_connections: config.db_pool_size,
        cache_bytes: config.cache_mib.saturating_mul(1024 * 1024),
    };
    let store = store::open(&config.database_url, &options).await?;
    let authorization = authorization(config, base_url)?;
    let capability_statement = capabilities::CapabilityCache::new(
        base_url,
        store.backend_name(),
        Instant::now(),
        if config.conditional_delete_multiple {
            capabilities::ConditionalDelete::Multiple
        } else {
            capabilities::ConditionalDelete::Single
        },
        crate::auth::discovery::capability_security(authorization.as_ref().map(|a| &a.endpoints)),
    );
    let services = Arc::new(Services {
        search_parameters: Default::default(),
        reindex_jobs: Default::default(),
        update_always_versions: config.update_always_versions,
        conditional_delete_multiple: config.conditional_delete_multiple,
        bundle_max_entries: config.bundle_max_entries,
        create_locks: Default::default(),
        store,
        base_url: base_url.into(),
        search_limits: crate::search::limits::Limits {
            default_count: config.search_default_count.min(config.search_max_count),
            max_count: config.search_max_count,
            default_total_limit: config.search_default_total_limit,
            set_limit: config.search_set_limit,
        },
        capability_statement,
        authorization,
    });
    // The stored SearchParameters join the built-in ones before the first request.
    let loading = Cx::system(services.clone(), SystemTask::SearchParameterLoad);
    services
        .search_parameters
        .replace(crate::interactions::search_parameters::load(&loading).await?);
    Ok(AppState {
        services,
        max_body_bytes: config.max_body_bytes,
    })
}

/// Authorization as the settings ask for it (see `ServeConfig`'s `--auth-…` flags), or `None`
/// when none is given: then the server is open, and says so.
fn authorization(config: &ServeConfig, base_url: &str) -> Result<Option<Authorization>> {
    if !config.authorization_on() {
        return Ok(None);
    }
    let audience = config.auth_audience.clone().unwrap_or_else(|| base_url.to_owned());
    let mut verifier = Verifier::new(audience, check_scope_filter);
    let mut endpoints = Endpoints::default();
    let setting = |what: String| Error::invalid(what);
    if let Some(iss) = &config.auth_issuer {
        match (&config.auth_jwks_file, &config.auth_jwks_url) {
            (Some(file), None) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| setting(format!("--auth-jwks-file {}: {e}", file.display())))?;
                let jwks: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| setting(format!("--auth-jwks-file {} is not a JWK Set: {e}", file.display())))?;
                for skipped in verifier.trust_jwks(iss, &jwks).map_err(setting)? {
                    tracing::warn!(issuer = %iss, "{skipped}; left out");
                }
            }
            (None, Some(_)) => {
                return Err(setting(
                    "--auth-jwks-url is not supported by this build yet; give the keys with --auth-jwks-file".into(),
                ));
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
    if config.auth_clients_file.is_some() {
        return Err(setting("--auth-clients-file is not supported by this build yet".into()));
    }
    tracing::info!(issuers = ?verifier.issuers(), "authorization on: every request but the CapabilityStatement needs a bearer token");
    let patient_directory = match config.auth_patient_directory {
        crate::config::PatientDirectoryArg::Named => crate::auth::PatientDirectory::Named,
        crate::config::PatientDirectoryArg::None => crate::auth::PatientDirectory::None,
    };
    Ok(Some(Authorization {
        verifier,
        endpoints,
        patient_directory,
    }))
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

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // TCP_NODELAY: responses are written whole, so Nagle's algorithm would only add latency.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs the server in the foreground until Ctrl-C or SIGTERM.
pub async fn run(config: ServeConfig) -> Result<()> {
    let server = start(&config).await?;
    tracing::info!(listen = %server.addr, base_url = %server.base_url, database = %redact(&config.database_url), "FHIR R4 server ready");
    wait_for_signal()
        .await
        .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    tracing::info!("shutting down: finishing requests in flight");
    server
        .stop()
        .await
        .map_err(|e| crate::error::Error::internal(e.to_string()))
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = terminate.recv() => Ok(()),
    }
}

/// Whether `listen` (`host:port`) is a loopback address, which only this machine reaches.
fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_addresses_are_only_this_machines() {
        for listen in ["127.0.0.1:8080", "localhost:80", "[::1]:8080", "127.0.0.2:1"] {
            assert!(super::is_loopback(listen), "{listen}");
        }
        for listen in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080", "example.org:80"] {
            assert!(!super::is_loopback(listen), "{listen}");
        }
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            super::redact("postgres://fhir:secret@db:5432/x"),
            "postgres://fhir:***@db:5432/x"
        );
        assert_eq!(super::redact("sqlite:data/fhir.sqlite"), "sqlite:data/fhir.sqlite");
    }
}
