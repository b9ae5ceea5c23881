//! Wiring: open the store, build the shared state and router, and serve until shut down.
//! `start` is what both `main` and the integration tests call, so tests exercise the real server.
//! `authorization` builds the authorization the `--auth-…` settings ask for.

mod authorization;

use crate::auth::SystemTask;
use crate::config::ServeConfig;
use crate::error::{Error, Result};
use crate::http::{self, AppState, FHIR_BASE_PATH};
use crate::interactions::{Cx, Services, capabilities};
use crate::model::Instant;
use crate::store;
use axum::serve::ListenerExt;
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
    services: Arc<Services>,
    audit_writer: JoinHandle<()>,
}

/// How long a stopping server waits for its queued audit records to be written.
const AUDIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(30);

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, writes the audit records still queued,
    /// and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.services.audit.close();
        // The queue holds at most 10,000 records, written in batches of 500: seconds at most.
        // A database that stopped answering must not hold the shutdown forever.
        let mut writer = self.audit_writer;
        if tokio::time::timeout(AUDIT_FLUSH, &mut writer).await.is_err() {
            writer.abort();
            tracing::error!(
                seconds = AUDIT_FLUSH.as_secs(),
                "the audit records still queued could not all be written before shutdown"
            );
        }
        let shed = self.services.audit.shed();
        if shed > 0 {
            tracing::warn!(shed, "audit records shed since the start: the queue was full");
        }
        served
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
    let (state, audit_writer) = build(config, &base_url).await?;
    let services = state.services.clone();
    if let Some(authorization) = &state.services.authorization
        && authorization.http.is_some()
    {
        authorization.refresh_all_keys().await;
        tokio::spawn(refresh_keys(Arc::downgrade(&state.services)));
    }
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
        services,
        audit_writer,
    })
}

pub async fn build_state(config: &ServeConfig, base_url: &str) -> Result<AppState> {
    // The audit writer goes on by itself (the data generator audits nothing).
    Ok(build(config, base_url).await?.0)
}

/// The state the router serves, and the task writing its audit trail.
async fn build(config: &ServeConfig, base_url: &str) -> Result<(AppState, JoinHandle<()>)> {
    let options = store::StoreOptions {
        max_connections: config.db_pool_size,
        cache_bytes: config.cache_mib.saturating_mul(1024 * 1024),
        sqlite_durability: match config.sqlite_durability {
            crate::config::SqliteDurabilityArg::Full => store::SqliteDurability::Full,
            crate::config::SqliteDurabilityArg::Normal => store::SqliteDurability::Normal,
        },
    };
    let store = store::open(&config.database_url, &options).await?;
    match store.durability().await {
        Ok(settings) => {
            let settings: Vec<String> = settings.iter().map(|(name, value)| format!("{name}={value}")).collect();
            tracing::info!(backend = store.backend_name(), settings = %settings.join(" "), "durability of acknowledged writes");
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the database's durability settings"),
    }
    let authorization = authorization::authorization(config, base_url)?;
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
    let (audit, audit_queue) = crate::audit::Trail::new(
        match config.audit {
            crate::config::AuditArg::Denials => crate::audit::Mode::Denials,
            crate::config::AuditArg::All => crate::audit::Mode::All,
        },
        config.audit_required,
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
        owners: Default::default(),
        consent: crate::consent::Settings {
            default: match config.consent_default {
                crate::config::ConsentEffectArg::Permit => crate::consent::Effect::Permit,
                crate::config::ConsentEffectArg::Deny => crate::consent::Effect::Deny,
            },
            combine: match config.consent_combine {
                crate::config::ConsentCombineArg::Newest => crate::consent::Combine::Newest,
                crate::config::ConsentCombineArg::DenyWins => crate::consent::Combine::DenyWins,
            },
            break_glass: config.consent_break_glass,
        },
        consent_default_purpose: config.consent_default_purpose.clone(),
        consent_system_callers: config.consent_system_callers,
        consents: Default::default(),
        audit,
        audit_index: Default::default(),
    });
    // The stored SearchParameters join the built-in ones before the first request.
    let loading = Cx::system(services.clone(), SystemTask::SearchParameterLoad);
    services
        .search_parameters
        .replace(crate::interactions::search_parameters::load(&loading).await?);
    let audit_writer = crate::interactions::audit_writer::spawn(services.clone(), audit_queue);
    crate::interactions::audit_index::spawn(&services);
    Ok((
        AppState {
            services,
            max_body_bytes: config.max_body_bytes,
        },
        audit_writer,
    ))
}

/// Fetches the JWK Sets with a URL every `REFRESH_INTERVAL`, for as long as the server lives.
async fn refresh_keys(services: std::sync::Weak<Services>) {
    let mut interval = tokio::time::interval(crate::auth::jwks_url::REFRESH_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(services) = services.upgrade() else { return };
        if let Some(authorization) = &services.authorization {
            authorization.refresh_all_keys().await;
        }
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
