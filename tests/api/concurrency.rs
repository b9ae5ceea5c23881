//! Versions stay exactly 1..n under concurrent writers (http.html#concurrency).

use crate::harness::TestApp;
use serde_json::json;
use std::sync::Arc;

crate::on_both_backends!(
    concurrent_puts_with_the_same_if_match_let_exactly_one_through,
    concurrent_unconditional_puts_give_contiguous_versions,
    concurrent_update_as_create_on_one_id_makes_one_resource,
    a_read_never_returns_a_version_older_than_one_already_acknowledged,
    concurrent_conditional_creates_of_one_patient_create_it_once,
    concurrent_conditional_updates_without_a_match_create_once,
    concurrent_transactions_with_one_if_none_exist_share_one_patient,
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

/// The Patients found by `query` (ids).
async fn patient_ids(app: &TestApp, query: &str) -> Vec<String> {
    let bundle = app.get(&format!("Patient?{query}&_count=100")).await.json();
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// http.html#ccreate: one creates, every other finds it (`200`, same id). Without the server
/// serialising conditional creates, several search before any writes and each creates one.
async fn concurrent_conditional_creates_of_one_patient_create_it_once(app: TestApp) {
    let replies = racing_conditional_creates(std::slice::from_ref(&app.base), "77").await;
    assert_eq!(replies.iter().filter(|(s, _)| *s == 201).count(), 1, "{replies:?}");
    assert_eq!(
        replies.iter().filter(|(s, _)| *s == 200).count(),
        WRITERS - 1,
        "{replies:?}"
    );
    let ids = patient_ids(&app, "identifier=urn:mrn|77").await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(replies.iter().all(|(_, id)| *id == ids[0]), "{replies:?}");
}

/// `WRITERS` conditional creates of the Patient with MRN `mrn` at once, sent to `bases` in turn:
/// each reply's status and the id it names.
async fn racing_conditional_creates(bases: &[String], mrn: &str) -> Vec<(u16, String)> {
    let client = crate::harness::client();
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let url = format!("{}/Patient", bases[n % bases.len()]);
        let client = client.clone();
        let mrn = mrn.to_owned();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}]});
            let reply = client
                .post(url)
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", format!("identifier=urn:mrn|{mrn}"))
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            let resource: serde_json::Value = reply.json().await.unwrap();
            (status, resource["id"].as_str().unwrap().to_owned())
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

/// http.html#cond-update: no match creates, so racing conditional updates must create only once.
async fn concurrent_conditional_updates_without_a_match_create_once(app: TestApp) {
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "88"}],
                              "name": [{"family": format!("W{n}")}]});
            app.put("Patient?identifier=urn:mrn|88", &body).await.status
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
    let ids = patient_ids(&app, "identifier=urn:mrn|88").await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let current = app.get(&format!("Patient/{}", ids[0])).await;
    assert_eq!(current.header("etag"), Some(format!("W/\"{WRITERS}\"").as_str()));
}

/// A transaction's `ifNoneExist` races the same way; every Observation must end up referring to
/// the one Patient.
async fn concurrent_transactions_with_one_if_none_exist_share_one_patient(app: TestApp) {
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:7f0c2b1e-0000-4000-8000-000000000001",
                 "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "99"}]},
                 "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:mrn|99"}},
                {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": format!("o{n}")},
                              "subject": {"reference": "urn:uuid:7f0c2b1e-0000-4000-8000-000000000001"}},
                 "request": {"method": "POST", "url": "Observation"}}
            ]});
            app.post("", &bundle).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let ids = patient_ids(&app, "identifier=urn:mrn|99").await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let observations = app
        .get(&format!("Observation?subject=Patient/{}&_summary=count", ids[0]))
        .await
        .json();
    assert_eq!(observations["total"], 8);
}

/// Two server processes on one PostgreSQL database (here two servers in this process, each with
/// its own in-process locks): conditional creates sent to both still create once, through the
/// database's advisory lock. SQLite admits one server per database, so this is PostgreSQL's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_creates_through_two_servers_on_one_postgres_database_create_once() {
    let Some(app) = TestApp::spawn(crate::harness::Backend::Postgres).await else {
        return;
    };
    let second = fhir_server::app::start(&fhir_server::config::ServeConfig::for_database(
        app.database_url.clone(),
    ))
    .await
    .unwrap();
    let replies = racing_conditional_creates(&[app.base.clone(), second.base_url.clone()], "66").await;
    let statuses: Vec<u16> = replies.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(patient_ids(&app, "identifier=urn:mrn|66").await.len(), 1);
    second.stop().await.unwrap();
}
