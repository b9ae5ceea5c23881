//! EHR-scale ingest: every transaction Bundle of `../shared/data/synthea-p25` (25 patients, 47,537
//! resources) and `../shared/data/carebundle-50` is posted as it is; afterwards the server holds
//! exactly the resources the Bundles carry, per type, and no stored reference still names a
//! Bundle-local `urn:uuid:` (or any other fullUrl of the Bundles).

use crate::harness::TestApp;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

crate::on_both_backends!(every_shared_bundle_ingests_with_its_references_resolved);

fn bundle_files() -> Vec<PathBuf> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut files = Vec::new();
    for set in ["synthea-p25", "carebundle-50"] {
        let listing = std::fs::read_dir(data.join(set)).unwrap_or_else(|e| panic!("{set}: {e}"));
        files.extend(
            listing
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json")),
        );
    }
    files.sort();
    files
}

/// Every `reference` string anywhere in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                match (key.as_str(), member) {
                    ("reference", Value::String(text)) => found.push(text),
                    _ => references(member, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

async fn every_shared_bundle_ingests_with_its_references_resolved(app: TestApp) {
    let files = bundle_files();
    assert!(
        files.len() >= 75,
        "expected the shared data sets, found {} files",
        files.len()
    );
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut full_urls = HashSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let bundle: Value = serde_json::from_str(&text).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        for entry in entries {
            *expected
                .entry(entry["resource"]["resourceType"].as_str().unwrap().to_owned())
                .or_default() += 1;
            full_urls.insert(entry["fullUrl"].as_str().unwrap().to_owned());
        }
        let reply = app
            .send(
                app.client
                    .post(app.url(""))
                    .header("content-type", "application/fhir+json")
                    .header("prefer", "return=minimal")
                    .body(text),
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "{}: {}",
            file.display(),
            &reply.text[..reply.text.len().min(2000)]
        );
        let response = reply.json();
        let answered = response["entry"].as_array().unwrap();
        assert_eq!(answered.len(), entries.len(), "{}", file.display());
        assert!(
            answered.iter().all(|e| e["response"]["status"] == "201 Created"),
            "{}",
            file.display()
        );
    }

    for (resource_type, count) in &expected {
        let reply = app.get(&format!("{resource_type}?_summary=count")).await;
        assert_eq!(reply.json()["total"], *count, "{resource_type}");
        // Read every stored resource of the type back and look at its references.
        let mut next = Some(app.url(&format!("{resource_type}?_count=1000")));
        while let Some(url) = next.take() {
            let page = app.send(app.client.get(&url)).await.json();
            for entry in page["entry"].as_array().into_iter().flatten() {
                let mut found = Vec::new();
                references(&entry["resource"], &mut found);
                for reference in found {
                    assert!(
                        !reference.starts_with("urn:") && !full_urls.contains(reference),
                        "{resource_type}/{} still refers to '{reference}'",
                        entry["resource"]["id"]
                    );
                }
            }
            next = page["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
        }
    }
}
