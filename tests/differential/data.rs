//! The data both sides search: the official R4 examples and Synthea transaction Bundles, written to
//! the server one resource at a time (`PUT Type/id`), and kept in memory exactly as the server
//! answered each write (so `meta.lastUpdated` and anything the server adds are the same on both
//! sides).

use crate::harness::TestApp;
use crate::shared::shared;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Concurrent writes in flight while loading.
const WRITERS: usize = 8;

/// At most this share of the official examples may be refused (HL7 ships a few invalid ones).
const MAX_REFUSED_PER_MILLE: usize = 20;

/// The in-memory copy of everything the server holds, by type then id.
#[derive(Default)]
pub struct Corpus {
    pub by_type: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Corpus {
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.by_type.get(resource_type)?.get(id)
    }

    pub fn of_type(&self, resource_type: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.by_type.get(resource_type).into_iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_type.values().map(BTreeMap::len).sum()
    }
}

/// What loading did, for the report.
pub struct LoadReport {
    pub examples_written: usize,
    pub examples_refused: Vec<String>,
    pub bundles_used: usize,
    pub synthea_written: usize,
}

/// The official examples, `(file name, resource)`, in file-name order.
fn examples() -> Vec<(String, Value)> {
    let Some(dir) = shared("fhir-r4/examples-4.0.1") else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("package.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

/// The Synthea patients loaded: 8 of the 25 (about 7,300 of the 47,500 resources), the six
/// smallest bundles and the two smallest with accented names. All 25 take several minutes per
/// backend to write in a debug build on a shared machine; these keep the test near a minute while
/// every resource type and the accent-insensitive cases stay in.
pub const SYNTHEA_BUNDLES: [&str; 8] = [
    "Gertude_O'Reilly_04339be1.json",
    "Jeannine_Jenkins_1fd25030.json",
    "Fausto_Pacocha_c9efcb62.json",
    "Juliane_Hammes_700ccefc.json",
    "Lance_Stark_54f6bdec.json",
    "Donnell_Leuschke_65d2b9d7.json",
    "María Cristina_Zaragoza_ecef2550.json",
    "Soledad_Beltrán_e3c9dc1f.json",
];

fn synthea_bundles() -> Vec<Value> {
    let Some(dir) = shared("data/synthea-p25") else {
        return Vec::new();
    };
    SYNTHEA_BUNDLES
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

/// Rewrites every `reference` that is a key of `local` (`urn:uuid:…`) to the `Type/id` it names.
fn rewrite_references(value: &mut Value, local: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                {
                    if let Some(relative) = local.get(reference.as_str()) {
                        *reference = relative.clone();
                    }
                } else {
                    rewrite_references(child, local);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_references(item, local)),
        _ => {}
    }
}

/// The resources of the transaction Bundles, each with an id (from its `urn:uuid:` fullUrl when
/// it has none) and its `urn:uuid:` references made relative. A resource that several bundles
/// carry (shared practitioners, organizations, locations) is kept once, as the last bundle has it.
fn unpack(bundles: Vec<Value>) -> Vec<Value> {
    let mut unpacked: BTreeMap<(String, String), (usize, Value)> = BTreeMap::new();
    let mut order = 0;
    for bundle in bundles {
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        let mut local = HashMap::new();
        let mut resources = Vec::new();
        for entry in entries {
            let mut resource = entry["resource"].clone();
            let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
            let full_url = entry["fullUrl"].as_str().unwrap_or_default().to_owned();
            let id = match resource["id"].as_str() {
                Some(id) => id.to_owned(),
                None => full_url.trim_start_matches("urn:uuid:").to_owned(),
            };
            resource["id"] = Value::String(id.clone());
            if !full_url.is_empty() {
                local.insert(full_url, format!("{resource_type}/{id}"));
            }
            resources.push(resource);
        }
        for mut resource in resources {
            rewrite_references(&mut resource, &local);
            let key = (
                resource["resourceType"].as_str().unwrap().to_owned(),
                resource["id"].as_str().unwrap().to_owned(),
            );
            order += 1;
            unpacked.insert(key, (order, resource));
        }
    }
    let mut resources: Vec<(usize, Value)> = unpacked.into_values().collect();
    resources.sort_by_key(|(order, _)| *order);
    resources.into_iter().map(|(_, r)| r).collect()
}

/// PUTs every resource with `WRITERS` in flight; answers `(label, Ok(stored) | Err(reply))` in input order.
async fn put_all(app: &TestApp, resources: Vec<(String, Value)>) -> Vec<(String, Result<Value, String>)> {
    let limit = Arc::new(Semaphore::new(WRITERS));
    let mut tasks = Vec::with_capacity(resources.len());
    for (label, resource) in resources {
        let client = app.client.clone();
        let url = app.url(&format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        ));
        let permit = limit.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let reply = client
                .put(&url)
                .header("content-type", "application/fhir+json")
                .body(resource.to_string())
                .send()
                .await
                .expect("PUT failed");
            let status = reply.status().as_u16();
            let text = reply.text().await.expect("PUT body");
            let outcome = if status == 200 || status == 201 {
                Ok(serde_json::from_str(&text).expect("the server answers a write with the resource"))
            } else {
                Err(format!("{status}: {}", text.chars().take(300).collect::<String>()))
            };
            (label, outcome)
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Writes `written` to the server and keeps what it answered; writes `deleted` and deletes it
/// again, so the server has its history but no current version, as the corpus has none.
pub async fn write_more(app: &TestApp, corpus: &mut Corpus, written: &[Value], deleted: &[Value]) {
    let labelled = |resources: &[Value]| -> Vec<(String, Value)> {
        resources
            .iter()
            .map(|r| (format!("{}/{}", r["resourceType"], r["id"]), r.clone()))
            .collect()
    };
    for (label, outcome) in put_all(app, labelled(deleted)).await {
        let stored = outcome.unwrap_or_else(|reply| panic!("{label} refused: {reply}"));
        let path = format!(
            "{}/{}",
            stored["resourceType"].as_str().unwrap(),
            stored["id"].as_str().unwrap()
        );
        let status = app.delete(&path).await.status;
        assert_eq!(status, 204, "DELETE {path}");
    }
    for (label, outcome) in put_all(app, labelled(written)).await {
        let stored = outcome.unwrap_or_else(|reply| panic!("{label} refused: {reply}"));
        let resource_type = stored["resourceType"].as_str().unwrap().to_owned();
        let id = stored["id"].as_str().unwrap().to_owned();
        corpus.by_type.entry(resource_type).or_default().insert(id, stored);
    }
}

/// Loads the examples and the chosen Synthea bundles into the server and into memory.
pub async fn load(app: &TestApp) -> (Corpus, LoadReport) {
    let mut corpus = Corpus::default();
    let mut keep = |stored: Value| {
        let resource_type = stored["resourceType"].as_str().unwrap().to_owned();
        let id = stored["id"].as_str().unwrap().to_owned();
        corpus.by_type.entry(resource_type).or_default().insert(id, stored);
    };

    // Examples one after the other in name order where two share a `Type/id`, so the last one
    // written is the one kept on both sides: the first of each key goes in the concurrent batch,
    // later ones after it.
    let mut first = Vec::new();
    let mut later = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, example) in examples() {
        let key = format!("{}/{}", example["resourceType"], example["id"]);
        if seen.insert(key) {
            first.push((name, example));
        } else {
            later.push((name, example));
        }
    }
    let example_count = first.len() + later.len();
    let mut examples_refused = Vec::new();
    let mut examples_written = 0;
    for batch in [first, later] {
        for (name, outcome) in put_all(app, batch).await {
            match outcome {
                Ok(stored) => {
                    examples_written += 1;
                    keep(stored);
                }
                Err(reply) => examples_refused.push(format!("{name}: {reply}")),
            }
        }
    }
    assert!(
        examples_refused.len() * 1000 <= example_count * MAX_REFUSED_PER_MILLE,
        "too many official examples refused ({} of {example_count}):\n{}",
        examples_refused.len(),
        examples_refused.join("\n")
    );

    let bundles = synthea_bundles();
    let bundles_used = bundles.len();
    let resources: Vec<(String, Value)> = unpack(bundles)
        .into_iter()
        .map(|r| (format!("{}/{}", r["resourceType"], r["id"]), r))
        .collect();
    let mut synthea_written = 0;
    let mut refused = Vec::new();
    for (label, outcome) in put_all(app, resources).await {
        match outcome {
            Ok(stored) => {
                synthea_written += 1;
                keep(stored);
            }
            Err(reply) => refused.push(format!("{label}: {reply}")),
        }
    }
    assert!(
        refused.is_empty(),
        "Synthea resources refused ({}):\n{}",
        refused.len(),
        refused.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    (
        corpus,
        LoadReport {
            examples_written,
            examples_refused,
            bundles_used,
            synthea_written,
        },
    )
}
