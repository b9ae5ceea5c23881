//! The official R4 examples: each can be PUT by its id, reads back equal to what was sent (apart
//! from `meta.versionId`/`meta.lastUpdated`), and appears in type and system history.

use crate::harness::TestApp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

crate::on_both_backends!(every_official_example_round_trips_and_appears_in_history);

/// The resource without what the server owns: meta.versionId and meta.lastUpdated (and `meta`
/// itself when nothing else was in it).
fn without_server_meta(mut resource: Value) -> Value {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            resource.as_object_mut().unwrap().remove("meta");
        }
    }
    resource
}

async fn every_official_example_round_trips_and_appears_in_history(app: TestApp) {
    let Some(dir) = crate::shared::shared("fhir-r4/examples-4.0.1") else {
        return;
    };
    let listing = std::fs::read_dir(&dir).unwrap();
    // package.json sits beside the examples and is not a resource.
    let mut files: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("package.json"))
        .collect();
    files.sort();
    assert!(files.len() > 700, "expected the R4 examples in {}", dir.display());

    // The examples HL7 ships invalid (see tests/corpus/invalid-examples.txt).
    let known_invalid: BTreeSet<&str> = include_str!("../corpus/invalid-examples.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut versions_written = 0usize;
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let sent: Value = serde_json::from_str(&text).unwrap();
        let resource_type = sent["resourceType"].as_str().unwrap().to_owned();
        let id = sent["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no id", path.display()))
            .to_owned();
        let url = format!("{resource_type}/{id}");
        // Sent as the file's own text, so decimals and unicode are exactly what HL7 wrote.
        let put = app
            .send(
                app.client
                    .put(app.url(&url))
                    .header("content-type", "application/fhir+json")
                    .body(text),
            )
            .await;
        if known_invalid.contains(file_name(path).as_str()) {
            // HL7 ships a few examples invalid; the server must refuse them and store nothing.
            if put.status != 400 {
                failures.push(format!(
                    "{}: invalid example answered {} {}",
                    path.display(),
                    put.status,
                    put.text
                ));
            }
            continue;
        }
        if put.status != 200 && put.status != 201 {
            failures.push(format!("{}: PUT {url} -> {} {}", path.display(), put.status, put.text));
            continue;
        }
        versions_written += 1;
        let read = app.get(&url).await;
        if read.status != 200 {
            failures.push(format!("{}: GET {url} -> {}", path.display(), read.status));
            continue;
        }
        // serde_json keeps numbers as written here, so 1.50 ≠ 1.5 and 1E-22 ≠ 0.0000000000000000000001.
        if without_server_meta(read.json()) != without_server_meta(sent) {
            failures.push(format!("{}: read back differs from what was sent", path.display()));
        }
        written.entry(resource_type).or_default().insert(id);
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );

    // Type history: every written id of each type is there.
    for (resource_type, ids) in &written {
        let seen = all_history_ids(&app, &format!("{resource_type}/_history?_count=1000")).await;
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !seen.contains(&format!("{resource_type}/{id}")))
            .collect();
        assert!(missing.is_empty(), "{resource_type}/_history misses {missing:?}");
    }
    // System history: one entry per version written.
    let mut count = 0usize;
    let mut next = Some(app.url("_history?_count=500"));
    while let Some(url) = next {
        let page = app.send(app.client.get(&url)).await.json();
        count += page["entry"].as_array().map_or(0, Vec::len);
        next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
    }
    assert_eq!(count, versions_written);
}

/// "Type/id" of every entry of a history, following `next` links from `first`.
fn file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

async fn all_history_ids(app: &TestApp, first: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for entry in history_entries(app, first).await {
        let full = entry["fullUrl"].as_str().unwrap();
        let tail: Vec<&str> = full.rsplitn(3, '/').collect();
        seen.insert(format!("{}/{}", tail[1], tail[0]));
    }
    seen
}

/// Every entry of a history, following `next` links from `first`.
async fn history_entries(app: &TestApp, first: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut next = Some(app.url(first));
    while let Some(url) = next {
        let page = app.send(app.client.get(&url)).await.json();
        entries.extend(page["entry"].as_array().into_iter().flatten().cloned());
        next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
    }
    entries
}
