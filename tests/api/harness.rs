//! Test harness: a real server on 127.0.0.1:0 over a fresh database per test, on SQLite or on
//! PostgreSQL. PostgreSQL comes from `DATABASE_URL` when set (an admin URL: each test creates its
//! own database there, and drops it when done), else from a private cluster this harness starts
//! once per test run with the installed server binaries (`initdb`, `postgres`) in a temporary
//! directory on a free port. The cluster dies with the test process (parent-death signal) and
//! stale directories from earlier runs are removed at the next start. Under `CI=true` a
//! PostgreSQL that cannot be had fails the test; elsewhere the PostgreSQL variant is skipped with
//! a notice.
//!
//! `on_both_backends!` makes a test of an `async fn(TestApp)` per backend, with the default
//! settings or (`with |config| …;`) its own; `on_postgres!` one on PostgreSQL only, for what only
//! PostgreSQL has (concurrent writers committing in another order than they wrote).

use fhir_server::app::{self, RunningServer};
use fhir_server::config::ServeConfig;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for an `async fn(TestApp)`; with
/// `with |config| …;` first, each server starts with those settings.
#[macro_export]
macro_rules! on_both_backends {
    (with $adjust:expr; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = $crate::harness::TestApp::spawn_with($crate::harness::Backend::Sqlite, $adjust).await {
                        super::$name(app).await;
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::harness::TestApp::spawn_with($crate::harness::Backend::Postgres, $adjust).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(with |_| {}; $($name),*);
    };
}

/// Generates a `#[tokio::test]` on PostgreSQL only for an `async fn(TestApp)`.
#[macro_export]
macro_rules! on_postgres {
    (with $adjust:expr; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::harness::TestApp::spawn_with($crate::harness::Backend::Postgres, $adjust).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::harness::TestApp::spawn($crate::harness::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub database_url: String,
    pub client: reqwest::Client,
    /// The settings the server runs with (a restart keeps them).
    pub config: ServeConfig,
    server: Option<RunningServer>,
    sqlite_dir: Option<PathBuf>,
    /// The PostgreSQL database of this test, dropped with it: (admin URL, database name).
    postgres_database: Option<(String, String)>,
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OperationOutcome with an error issue of `code`; returns the outcome.
    pub fn assert_outcome(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        let outcome = self.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{}", self.text);
        assert_eq!(outcome["issue"][0]["code"], code, "{}", self.text);
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        outcome
    }
}

/// An HTTP client for the tests. reqwest is built with TLS but no crypto provider (the server's
/// choice, shared by the tests), so one is installed first.
pub fn client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    format!("t{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl TestApp {
    /// A server over a fresh, empty database; `None` (after a notice) when PostgreSQL is wanted
    /// but unavailable outside CI.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut ServeConfig)) -> Option<TestApp> {
        let (database_url, sqlite_dir, postgres_database) = match backend {
            Backend::Sqlite => {
                let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sqlite-{}", unique_name()));
                std::fs::create_dir_all(&dir).unwrap();
                (format!("sqlite:{}", dir.join("fhir.sqlite").display()), Some(dir), None)
            }
            Backend::Postgres => {
                let (admin, name) = fresh_postgres_database().await?;
                (replace_database(&admin, &name), None, Some((admin, name)))
            }
        };
        let mut config = ServeConfig::for_database(database_url.clone());
        adjust(&mut config);
        let server = app::start(&config)
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Some(TestApp {
            backend,
            base: server.base_url.clone(),
            database_url,
            client: crate::harness::client(),
            config,
            server: Some(server),
            sqlite_dir,
            postgres_database,
        })
    }

    /// Stops this server, keeping its database (for a test that serves it from another process).
    pub async fn stop_server(&mut self) {
        self.server.take().expect("running").stop().await.unwrap();
    }

    /// Stops this server and starts a new one on the same database (a restart).
    pub async fn restart(&mut self) {
        self.stop_server().await;
        self.start_server().await;
    }

    /// Starts a server on this test's database after `stop_server`.
    pub async fn start_server(&mut self) {
        assert!(self.server.is_none(), "a server is running already");
        let server = app::start(&self.config).await.unwrap();
        self.base = server.base_url.clone();
        self.server = Some(server);
    }

    /// Runs `sql` (one or more statements) on this test's database directly, beside the server:
    /// what an older server, another program or an operator could have done to it.
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::Connection;
        let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()));
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::Executor::execute(&mut conn, sql).await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = connect_with_retry(&self.database_url).await;
                sqlx::Executor::execute(&mut conn, sql).await.unwrap();
            }
        }
    }

    /// The integer `sql` selects (one row, one column), read from this test's database directly,
    /// beside the server.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = connect_with_retry(&self.database_url).await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Stops this server and opens its database as a store of this process, to look at what it
    /// holds below the HTTP interface. The stopped server's store closes once the last task using
    /// it ends (a background `$reindex` job may outlive the server by a moment), and a SQLite
    /// database opens only then.
    pub async fn into_store(mut self) -> (std::sync::Arc<dyn fhir_server::store::Store>, TestApp) {
        self.stop_server().await;
        let options = fhir_server::store::StoreOptions {
            max_connections: 2,
            cache_bytes: 0,
            sqlite_durability: Default::default(),
        };
        (self.open_store(&options).await, self)
    }

    /// A store of the test's own on its database, once the stopped server has let go of it: a
    /// SQLite file is held by one process, and the server's last tasks release it shortly after
    /// it stops.
    pub async fn open_store(
        &self,
        options: &fhir_server::store::StoreOptions,
    ) -> std::sync::Arc<dyn fhir_server::store::Store> {
        let mut attempts = 0;
        loop {
            match fhir_server::store::open(&self.database_url, options).await {
                Ok(store) => return store,
                Err(e) if attempts < 100 => {
                    attempts += 1;
                    eprintln!("the store does not open yet ({e}); trying again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the store does not open: {e}"),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Reply { status, headers, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_with(path, body, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.put_with(path, body, &[]).await
    }

    /// POST a resource with extra headers (`Prefer`, …).
    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        self.send_resource(self.client.post(self.url(path)), body, headers)
            .await
    }

    /// PUT a resource with extra headers (`If-Match`, `Prefer`, …).
    pub async fn put_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        self.send_resource(self.client.put(self.url(path)), body, headers).await
    }

    async fn send_resource(
        &self,
        mut request: reqwest::RequestBuilder,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// PATCH with a body of `content_type` (`application/json-patch+json`, FHIR JSON or XML).
    pub async fn patch(&self, path: &str, content_type: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .client
            .patch(self.url(path))
            .header("content-type", content_type)
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = self.postgres_database.take() {
            // On a thread of its own with its own runtime: `drop` cannot wait on the test's.
            // `FORCE` ends the connections the server (stopped or not) still holds.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async {
                    let mut conn = connect_with_retry(&admin).await;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql))
                        .await
                        .map(|_| ())
                        .map_err(std::io::Error::other)
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("NOTICE: a test database was not dropped: {dropped:?}");
            }
        }
    }
}

// ---- PostgreSQL -------------------------------------------------------------------------------

/// An admin URL for the cluster tests create databases in, or the reason there is none.
fn postgres_admin_url() -> &'static Result<String, String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Ok(url),
        _ => start_private_cluster(),
    })
}

/// A new, empty database for one test: the admin URL and the database's name.
async fn fresh_postgres_database() -> Option<(String, String)> {
    let admin = match postgres_admin_url() {
        Ok(url) => url.clone(),
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required under CI=true but unavailable: {reason}");
            }
            eprintln!("NOTICE: skipping the PostgreSQL variant of this test: {reason}");
            return None;
        }
    };
    let name = unique_name();
    let mut conn = connect_with_retry(&admin).await;
    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    Some((admin, name))
}

async fn connect_with_retry(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut last = None;
    for _ in 0..100 {
        match sqlx::PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to PostgreSQL at {url}: {last:?}");
}

/// `postgres://u@h:p/db?x` with its database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (without_query, query) = url.split_once('?').map_or((url, None), |(a, b)| (a, Some(b)));
    let authority_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match without_query[authority_end..].find('/') {
        Some(slash) => &without_query[..authority_end + slash],
        None => without_query,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn find_postgres_bin(program: &str) -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates.push(PathBuf::from("/usr/local/bin"));
    candidates.push(PathBuf::from("/usr/bin"));
    candidates
        .into_iter()
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `program` through setpriv: as the `postgres` user when we are root (PostgreSQL refuses
/// root), and with `--pdeathsig=INT` when it must end with the thread that starts it.
fn as_cluster_owner(program: &Path, root: bool, die_with_parent: bool) -> Command {
    let mut cmd = Command::new("setpriv");
    if root {
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    if die_with_parent {
        cmd.arg("--pdeathsig=INT");
    }
    cmd.arg("--").arg(program);
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn remove_stale_clusters(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("pg-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_private_cluster() -> Result<String, String> {
    let initdb = find_postgres_bin("initdb").ok_or("initdb not found (install the postgresql package)")?;
    let postgres = find_postgres_bin("postgres").ok_or("postgres server binary not found")?;
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf();
    remove_stale_clusters(&parent);
    let dir = parent.join(format!("pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let root = is_root();
    if root {
        let status = Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(&dir)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let output = as_cluster_owner(&initdb, root, false)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let port = free_port();
    // The server must not outlive this test process: it gets a parent-death signal, and it is
    // spawned from a thread that lives as long as the process (the signal follows the spawning
    // thread, not the process).
    let mut command = as_cluster_owner(&postgres, root, true);
    command
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
        .arg(&dir)
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "max_connections=400", "-c", "shared_buffers=128MB"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = command.spawn();
        let started = child
            .as_ref()
            .map(|_| ())
            .map_err(|e| format!("cannot start postgres: {e}"));
        tx.send(started).unwrap();
        // Keep this thread (the parent of the server) alive until the process ends.
        let _child = child;
        loop {
            std::thread::park();
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    eprintln!(
        "started a private PostgreSQL cluster in {} on port {port}",
        dir.display()
    );
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}
