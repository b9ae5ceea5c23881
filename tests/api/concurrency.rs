//! Versions stay exactly 1..n under concurrent writers (http.html#concurrency).

use crate::harness::TestApp;
use serde_json::json;
use std::sync::Arc;

crate::on_both_backends!(
    concurrent_puts_with_the_same_if_match_let_exactly_one_through,
    concurrent_unconditional_puts_give_contiguous_versions,
    concurrent_update_as_create_on_one_id_makes_one_resource,
    a_read_never_returns_a_version_older_than_one_already_acknowledged,
);

const WRITERS: usize = 16;

async fn concurrent_puts_with_the_same_if_match_let_exactly_one_through(app: TestApp) {
    app.put("Patient/race", &json!({"resourceType": "Patient", "id": "race"}))
        .await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": "race", "birthDate": format!("19{:02}-01-01", i + 10)});
            app.put_with("Patient/race", &body, &[("if-match", "W/\"1\"")])
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        WRITERS - 1,
        "{statuses:?}"
    );
    assert_eq!(app.get("Patient/race").await.header("etag"), Some("W/\"2\""));
}

async fn concurrent_unconditional_puts_give_contiguous_versions(app: TestApp) {
    app.put("Patient/many", &json!({"resourceType": "Patient", "id": "many"}))
        .await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    // Each writer sends its own content: an update equal to the current version writes nothing.
    for n in 0..WRITERS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": "many", "name": [{"family": format!("W{n}")}]});
            app.put("Patient/many", &body).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let history = app
        .get(&format!("Patient/many/_history?_count={}", WRITERS + 5))
        .await
        .json();
    let mut versions: Vec<i64> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().parse().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=(WRITERS as i64 + 1)).collect::<Vec<_>>());
}

async fn concurrent_update_as_create_on_one_id_makes_one_resource(app: TestApp) {
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": "fresh", "name": [{"family": format!("W{n}")}]});
            app.put("Patient/fresh", &body).await.status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        WRITERS - 1,
        "{statuses:?}"
    );
    assert_eq!(
        app.get("Patient/fresh").await.header("etag"),
        Some(format!("W/\"{WRITERS}\"").as_str())
    );
}

async fn a_read_never_returns_a_version_older_than_one_already_acknowledged(app: TestApp) {
    // Writers and readers interleave on a few ids; after a write is acknowledged as version n,
    // every later read of that id (from any task) must return version n or newer.
    let app = Arc::new(app);
    let acknowledged: Arc<Vec<std::sync::atomic::AtomicI64>> =
        Arc::new((0..4).map(|_| std::sync::atomic::AtomicI64::new(0)).collect());
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (app, acknowledged) = (app.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..15 {
                let slot = (task + round) % 4;
                let url = format!("Basic/k{slot}");
                if (task + round) % 2 == 0 {
                    let body = json!({"resourceType": "Basic", "id": format!("k{slot}"), "code": {"text": "k"}});
                    let reply = app.put(&url, &body).await;
                    let version: i64 = reply.json()["meta"]["versionId"].as_str().unwrap().parse().unwrap();
                    acknowledged[slot].fetch_max(version, std::sync::atomic::Ordering::SeqCst);
                } else {
                    let floor = acknowledged[slot].load(std::sync::atomic::Ordering::SeqCst);
                    let reply = app.get(&url).await;
                    if reply.status == 200 {
                        let version: i64 = reply.json()["meta"]["versionId"].as_str().unwrap().parse().unwrap();
                        assert!(
                            version >= floor,
                            "read version {version} after version {floor} was acknowledged"
                        );
                    } else {
                        assert_eq!(floor, 0, "a resource acknowledged as written must be readable");
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
