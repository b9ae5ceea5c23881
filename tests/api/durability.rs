//! What an acknowledged write survives: on SQLite every commit is synced by default
//! (`synchronous=FULL` in WAL mode, for the writer and the checkpointer alike), and
//! `--sqlite-durability normal` is the explicit opt-out; on PostgreSQL the database's own
//! `fsync` and `synchronous_commit` decide, and the server never turns them off.

use crate::harness::{Backend, TestApp};
use clap::Parser;
use fhir_server::config::{Cli, SqliteDurabilityArg};
use fhir_server::store::{SqliteDurability, StoreOptions};
use std::collections::HashMap;

crate::on_both_backends!(acknowledged_writes_are_durable_by_default);

async fn settings(app: &TestApp, durability: SqliteDurability) -> HashMap<String, String> {
    let options = StoreOptions {
        max_connections: 2,
        cache_bytes: 0,
        sqlite_durability: durability,
    };
    let store = app.open_store(&options).await;
    store.durability().await.unwrap().into_iter().collect()
}

async fn acknowledged_writes_are_durable_by_default(mut app: TestApp) {
    // The server holds the SQLite file: read the settings through a store of our own.
    app.stop_server().await;
    let found = settings(&app, SqliteDurability::default()).await;
    match app.backend {
        Backend::Sqlite => {
            assert_eq!(found["synchronous"], "FULL", "{found:?}");
            assert_eq!(found["checkpoint synchronous"], "FULL", "{found:?}");
            assert_eq!(found["journal_mode"], "wal", "{found:?}");
            let normal = settings(&app, SqliteDurability::Normal).await;
            assert_eq!(normal["synchronous"], "NORMAL", "{normal:?}");
            assert_eq!(normal["checkpoint synchronous"], "NORMAL", "{normal:?}");
        }
        Backend::Postgres => {
            // What the database is configured with, seen from a connection of the harness's own
            // (the test cluster runs with fsync off, for speed): the server's connections
            // report the same, so the server changed nothing for itself.
            for name in ["fsync", "synchronous_commit"] {
                let configured = app
                    .query_i64(&format!(
                        "SELECT CASE WHEN current_setting('{name}') = 'on' THEN 1::bigint ELSE 0::bigint END"
                    ))
                    .await;
                let reported = if found[name] == "on" { 1 } else { 0 };
                assert_eq!(reported, configured, "{name}: {found:?}");
            }
            // The SQLite setting does not touch PostgreSQL.
            assert_eq!(settings(&app, SqliteDurability::Normal).await, found);
            // Nowhere does the server set them.
            for file in source_files(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))) {
                let text = std::fs::read_to_string(&file).unwrap().to_ascii_lowercase();
                for setting in ["synchronous_commit", "fsync"] {
                    assert!(
                        !text.contains(&format!("set {setting}")) && !text.contains(&format!("set_config('{setting}'")),
                        "{} changes {setting}",
                        file.display()
                    );
                }
            }
        }
    }
    // The command line: durable unless asked otherwise.
    assert_eq!(
        Cli::parse_from(["fhir-server"]).serve.sqlite_durability,
        SqliteDurabilityArg::Full
    );
    let opted_out = Cli::parse_from(["fhir-server", "--sqlite-durability", "normal"]);
    assert_eq!(opted_out.serve.sqlite_durability, SqliteDurabilityArg::Normal);
    app.start_server().await;
}

fn source_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(source_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") {
            files.push(path);
        }
    }
    files
}
