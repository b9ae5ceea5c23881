//! Crash safety: the server process killed (`SIGKILL`) in the middle of a large transaction.
//! After a restart nothing of that transaction is visible and every earlier write is intact.
//!
//! The server under test runs as a child process (the `fhir-server` binary) on the test's fresh
//! database, so that it can be killed without killing the test.

use crate::harness::TestApp;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

crate::on_both_backends!(a_transaction_cut_by_sigkill_leaves_no_trace);

/// Starts the server binary on `database_url` and waits until it answers.
async fn start_server(database_url: &str) -> (Child, String) {
    let port = crate::harness::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fhir-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("{base}/health/ready"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, format!("{base}/fhir/R4"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

/// Returns once another connection holds a write transaction open on the database: on
/// PostgreSQL a session with a transaction id (assigned at its first write); on SQLite the write
/// lock, which makes `BEGIN IMMEDIATE` fail at once.
async fn wait_for_an_open_write_transaction(database_url: &str) {
    use sqlx::Connection;
    if database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        for _ in 0..3000 {
            let writers: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            if writers > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
            .unwrap()
            .busy_timeout(Duration::ZERO);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        for _ in 0..3000 {
            if sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.is_err() {
                return;
            }
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    panic!("the server never opened a write transaction");
}

/// The largest Bundle of `synthea-p25`: thousands of entries, seconds of work.
fn large_transaction() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/synthea-p25");
    let largest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::read_to_string(largest).unwrap()
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn total(client: &reqwest::Client, url: String) -> i64 {
    get_json(client, url).await["total"].as_i64().unwrap()
}

async fn a_transaction_cut_by_sigkill_leaves_no_trace(mut app: TestApp) {
    app.stop_server().await;
    let client = crate::harness::client();
    let (mut server, base) = start_server(&app.database_url).await;
    let before = client
        .put(format!("{base}/Patient/before"))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "id": "before", "active": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 201);

    let bundle = large_transaction();
    let posting = tokio::spawn({
        let client = client.clone();
        let url = base.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/fhir+json")
                .header("prefer", "return=minimal")
                .body(bundle)
                .send()
                .await
        }
    });
    // Killed once the SQL transaction has started writing, and a little after.
    wait_for_an_open_write_transaction(&app.database_url).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    let cut = posting.await.unwrap();
    assert!(
        cut.is_err(),
        "the transaction finished before the kill ({:?}); the test did not cut it",
        cut.map(|r| r.status())
    );

    let (mut restarted, base) = start_server(&app.database_url).await;
    assert_eq!(total(&client, format!("{base}/Patient?_summary=count")).await, 1);
    for resource_type in ["Observation", "Encounter", "Condition", "Claim"] {
        assert_eq!(
            total(&client, format!("{base}/{resource_type}?_summary=count")).await,
            0,
            "{resource_type}"
        );
    }
    let history = get_json(&client, format!("{base}/_history")).await;
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(1),
        "only the earlier write is in history"
    );
    let kept = get_json(&client, format!("{base}/Patient/before")).await;
    assert_eq!(kept["active"], true);
    assert_eq!(kept["meta"]["versionId"], "1");
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}
