//! Differential search test: the server's search results against an in-memory evaluator.
//!
//! The official R4 examples and 8 Synthea patients (`data::SYNTHEA_BUNDLES`) are written to a
//! fresh server on each backend and kept in memory. A fixed-seed generator (`generate`) draws a
//! few hundred queries from the values actually present — every parameter type, modifier and
//! prefix, `:missing`, OR and AND, `_id`, `_lastUpdated`, chains, `_has`, `_sort`, composites,
//! `_text` and `_content`, `:in` and `:not-in`, and `_list`. Before drawing queries it writes
//! ValueSets and Lists made from the data (`generate::fixtures`) for the last two. Each query
//! runs on the server (all pages of `_count=1000`, `Prefer: handling=strict`) and through
//! `eval::Evaluator`, which evaluates the search parameters' FHIRPath expressions with the
//! crate's FHIRPath engine and applies the matching rules of search.html on its own. Every
//! difference is collected, and the test fails once with all of them; there are no hand-written
//! expectations.
//!
//! Sorted queries compare the set of ids and, for the order, only pairs whose sort keys differ:
//! ties are broken by the server's insertion order (`rid`), which concurrent loading does not fix.
//!
//! Run: `cargo test --test differential -- --nocapture` (PostgreSQL as in tests/api).

// The harness serves tests/api too; this test uses only part of it.
#[allow(dead_code)]
#[path = "../api/harness.rs"]
mod harness;
#[path = "../common/shared.rs"]
mod shared;

mod data;
mod defs;
mod eval;
mod generate;
mod rules;
mod values;

use eval::{Evaluator, Expected};
use generate::{Generator, Query};
use harness::TestApp;
use rules::compare_keys;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

crate::on_both_backends!(server_search_agrees_with_the_in_memory_evaluator);

/// SQLite again with every clause tested row by row (`EXISTS`, see `search::plan`), and every
/// search sorted by one parameter walking that parameter's index: on its own the server chooses
/// those forms only for clauses of over 5,000 index rows, which this data set seldom has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_row_by_row() {
    if let Some(app) = TestApp::spawn_with(harness::Backend::Sqlite, |c| c.search_set_limit = 0).await {
        server_search_agrees_with_the_in_memory_evaluator(app).await;
    }
}

/// The same on PostgreSQL, where row by row means fenced subqueries (`Form::EachRow`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_by_row() {
    if let Some(app) = TestApp::spawn_with(harness::Backend::Postgres, |c| c.search_set_limit = 0).await {
        server_search_agrees_with_the_in_memory_evaluator(app).await;
    }
}

/// The generator's seed: change it to explore other queries, keep it fixed in the suite.
const SEED: u64 = 0x5EA2_C4D1_FF00_0004;

/// At least this many queries must be generated from the data.
const MIN_QUERIES: usize = 560;

/// Searches in flight at once.
const SEARCHERS: usize = 4;

/// The slowest searches are named in the summary, to keep the test's time in view.
const SLOWEST_SHOWN: usize = 5;

async fn server_search_agrees_with_the_in_memory_evaluator(app: TestApp) {
    let started = Instant::now();
    let (mut corpus, report) = data::load(&app).await;
    if corpus.len() == 0 {
        eprintln!("NOTICE: ../shared is absent; the differential search test is skipped");
        return;
    }
    let fixtures = Generator::new(&Evaluator::new(&corpus, &app.base), SEED).fixtures();
    data::write_more(&app, &mut corpus, &fixtures.written, &fixtures.deleted).await;
    let loaded = started.elapsed();

    let evaluator = Evaluator::new(&corpus, &app.base);
    let queries = Generator::new(&evaluator, SEED).generate(&fixtures);
    assert!(queries.len() >= MIN_QUERIES, "only {} queries generated", queries.len());
    let expected: Vec<Result<Expected, String>> = queries
        .iter()
        .map(|q| evaluator.run(&q.resource_type, &q.params))
        .collect();
    if std::env::var_os("DIFFERENTIAL_LIST").is_some() {
        for (query, expected) in queries.iter().zip(&expected) {
            let found = expected.as_ref().map_or(0, |e| e.ids.len());
            eprintln!("  [{}] {} ({found} expected)", query.category, query.path());
        }
    }
    let evaluated = started.elapsed();

    let answers = search_all(&app, &queries).await;
    let searched = started.elapsed();

    let mut mismatches = Vec::new();
    let mut per_category: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut matched_total = 0usize;
    for ((query, expected), (answer, _)) in queries.iter().zip(&expected).zip(&answers) {
        let entry = per_category.entry(&query.category).or_default();
        entry.0 += 1;
        let difference = match (expected, answer) {
            (Err(e), _) => Some(format!("the evaluator cannot run it: {e}")),
            (_, Err(e)) => Some(format!("the server refused it: {e}")),
            (Ok(expected), Ok(found)) => {
                matched_total += found.len();
                compare(expected, found)
            }
        };
        if let Some(difference) = difference {
            entry.1 += 1;
            mismatches.push(format!("{}  [{}]\n{difference}", query.path(), query.category));
        }
    }

    let unhandled = evaluator.unhandled.borrow();
    eprintln!(
        "{:?}: {} resources ({} examples, {} refused; {} Synthea bundles, {} resources); {} queries, \
         {} ids found in all; load {:.1?}, evaluate {:.1?}, search {:.1?}",
        app.backend,
        corpus.len(),
        report.examples_written,
        report.examples_refused.len(),
        report.bundles_used,
        report.synthea_written,
        queries.len(),
        matched_total,
        loaded,
        evaluated - loaded,
        searched - evaluated,
    );
    for refused in &report.examples_refused {
        eprintln!("  example refused: {refused}");
    }
    for (category, (count, failed)) in &per_category {
        eprintln!("  {category:<28} {count:>4} queries, {failed:>3} differ");
    }
    if !unhandled.is_empty() {
        eprintln!("  complex values no search rule covers (ignored by the evaluator): {unhandled:?}");
    }
    let mut slowest: Vec<(Duration, String)> = answers
        .iter()
        .zip(&queries)
        .map(|((_, took), query)| (*took, query.path()))
        .collect();
    slowest.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    for (took, path) in slowest.iter().take(SLOWEST_SHOWN) {
        eprintln!("  slow: {took:.1?} {path}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} queries differ between the server and the evaluator on {:?}:\n\n{}",
        mismatches.len(),
        queries.len(),
        app.backend,
        mismatches.join("\n\n")
    );
}

/// What differs between the evaluator's answer and the server's, if anything.
fn compare(expected: &Expected, found: &[String]) -> Option<String> {
    let wanted: BTreeSet<&String> = expected.ids.iter().collect();
    let got: BTreeSet<&String> = found.iter().collect();
    let sample = |ids: Vec<&&String>| {
        let shown: Vec<&str> = ids.iter().take(5).map(|s| s.as_str()).collect();
        format!("{} {shown:?}", ids.len())
    };
    if got.len() != found.len() {
        return Some(format!("  the server answered an id twice: {found:?}"));
    }
    if wanted != got {
        let only_server: Vec<&&String> = got.difference(&wanted).collect();
        let only_evaluator: Vec<&&String> = wanted.difference(&got).collect();
        return Some(format!(
            "  server {} ids, evaluator {} ids\n  only in the server:    {}\n  only in the evaluator: {}",
            found.len(),
            expected.ids.len(),
            sample(only_server),
            sample(only_evaluator)
        ));
    }
    let keys = expected.keys.as_ref()?;
    for pair in found.windows(2) {
        let (a, b) = (&keys[&pair[0]], &keys[&pair[1]]);
        if compare_keys(a, b, &expected.descending) == std::cmp::Ordering::Greater {
            return Some(format!(
                "  out of order: {} (keys {a:?}) before {} (keys {b:?})",
                pair[0], pair[1]
            ));
        }
    }
    None
}

/// Every query on the server, `SEARCHERS` at a time: all matching ids in the server's order, or
/// why the server did not answer; and how long each took.
async fn search_all(app: &TestApp, queries: &[Query]) -> Vec<(Result<Vec<String>, String>, Duration)> {
    let limit = Arc::new(tokio::sync::Semaphore::new(SEARCHERS));
    let mut tasks = Vec::new();
    for query in queries {
        let client = app.client.clone();
        let first = app.url(&format!("{}&_count=1000", query.path()));
        let permit = limit.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let answer = search(&client, first).await;
            (answer, started.elapsed())
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

async fn search(client: &reqwest::Client, first: String) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next.take() {
        let reply = client
            .get(&url)
            .header("prefer", "handling=strict")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = reply.status().as_u16();
        let text = reply.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{status} {}", text.chars().take(400).collect::<String>()));
        }
        let bundle: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "match" {
                ids.push(entry["resource"]["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        next = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    Ok(ids)
}
