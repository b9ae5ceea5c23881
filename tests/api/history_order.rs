//! History in an order no later commit can change (PostgreSQL, whose writers commit concurrently
//! and so not in the order they began writing): a client that pages through `_history`, or
//! follows it for what is new, never passes a version that commits after it looked.

use crate::harness::TestApp;
use serde_json::{Value, json};
use sqlx::Connection;
use std::time::Duration;

crate::on_postgres!(a_reader_following_history_never_misses_a_version_that_commits_late);

/// The advisory lock the held write waits for.
const HOLD: i64 = 4242;

/// `Type/id` of each entry of a history Bundle.
fn resources(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let url = e["fullUrl"].as_str().unwrap();
            url.rsplitn(3, '/')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

async fn a_reader_following_history_never_misses_a_version_that_commits_late(app: TestApp) {
    let mut control = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    // The write of Patient/held takes its transaction's id and its place in history, then waits
    // for a lock this test holds before it can commit.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION hold_history() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.id = 'held' THEN PERFORM pg_advisory_lock({HOLD}); PERFORM pg_advisory_unlock({HOLD}); END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER hold BEFORE INSERT ON resource_history FOR EACH ROW EXECUTE FUNCTION hold_history()"
    )))
    .execute(&mut control)
    .await
    .unwrap();
    for id in ["first", "before"] {
        let reply = app
            .put(&format!("Patient/{id}"), &json!({"resourceType": "Patient", "id": id}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(HOLD)
        .execute(&mut control)
        .await
        .unwrap();
    let held = {
        let (client, url) = (app.client.clone(), app.url("Patient/held"));
        tokio::spawn(async move {
            client
                .put(url)
                .header("content-type", "application/fhir+json")
                .body(json!({"resourceType": "Patient", "id": "held"}).to_string())
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let mut waiting = 0_i64;
    for _ in 0..500 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
        )
        .bind(HOLD)
        .fetch_one(&mut control)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(waiting, 1, "the write of Patient/held never began");
    // A later transaction commits while the held one is still open.
    let after = app
        .put("Patient/after", &json!({"resourceType": "Patient", "id": "after"}))
        .await;
    assert_eq!(after.status, 201, "{}", after.text);

    // The newest page shows only what is certainly in its final place: not Patient/after yet,
    // which a client would otherwise take as the newest version it has seen.
    let page = app.get("_history?_count=1").await.json();
    assert_eq!(resources(&page), ["Patient/before"], "{page}");
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("older versions follow")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let cursor = next.split("_page_before=").nth(1).unwrap().to_owned();
    // A resource's own history is not held back: its versions keep their order whatever commits.
    let own = app.get("Patient/after/_history").await.json();
    assert_eq!(own["total"], 1, "{own}");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(HOLD)
        .execute(&mut control)
        .await
        .unwrap();
    assert_eq!(held.await.unwrap(), 201);

    // Following on from the newest version it saw, the client gets both later versions.
    let newer = app
        .get(&format!("_history?_page_after={cursor}&_count=10"))
        .await
        .json();
    let mut seen = resources(&newer);
    seen.sort();
    assert_eq!(seen, ["Patient/after", "Patient/held"], "{newer}");
    let all = app.get("_history?_count=10").await.json();
    assert_eq!(resources(&all).len(), 4);
}
