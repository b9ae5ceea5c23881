//! A synthetic, Synthea-like data set written straight through the store, for benchmarks at scale.
//!
//! `fhir-server generate --patients N --seed S` writes 20 Organizations, 50 Practitioners and, per
//! patient, one Patient with about 8 Encounters, 29 Observations (LOINC vitals and labs) and 2–3
//! Conditions (SNOMED): about 40 resources per patient, so 25,000 patients make about a million.
//!
//! Why through the store and not over HTTP: loading a million resources is the set-up of a search
//! benchmark, not the thing measured, and HTTP would only add parsing and round trips. Each
//! resource still goes the create path's way — validated, index rows computed, `WriteOp::Create` —
//! so the database holds exactly what the server would have written; creates are written in
//! groups, as a transaction Bundle's are. The generator works with the server's own services as
//! the server itself (`SystemTask::Generate`), not as any outside caller.
//!
//! Everything follows from the seed: one small PRNG of our own (splitmix64), a separate stream per
//! patient derived from (seed, patient number), and ids drawn from it as version-4-shaped UUIDs, so
//! a data set can be rebuilt identically and patients can be generated in any order.

mod resources;
mod rng;
mod vocabulary;

pub use resources::{Generated, MRN_SYSTEM, Shared, patient_resources};

use crate::auth::SystemTask;
use crate::config::ServeConfig;
use crate::error::{Error, Result};
use crate::interactions::Cx;
use crate::model::ResourceType;
use crate::search::Registry;
use crate::store::{Store, WriteOp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How often a progress line is printed, in resources written.
const PROGRESS_EVERY: u64 = 50_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub patients: u64,
    pub seed: u64,
    /// Groups of writes in flight at once (see `write_data_set`).
    pub concurrency: usize,
}

/// Resources written, per type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<&'static str, u64>);

impl Counts {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub(crate) fn add(&mut self, resource_type: ResourceType) {
        *self.0.entry(resource_type.as_str()).or_default() += 1;
    }
}

/// The command: opens (and migrates) the store at `database_url` the way the server does, writes
/// the data set, and prints progress and the load rate.
pub async fn run(database_url: &str, options: &Options) -> Result<Counts> {
    let cx = system_context(database_url, options.concurrency).await?;
    println!(
        "generating {} patients (seed {}) into {} with {} groups of writes in flight",
        options.patients,
        options.seed,
        cx.services.store.backend_name(),
        options.concurrency
    );
    let started = Instant::now();
    let counts = write_data_set(&cx, options, |written, elapsed| {
        println!(
            "  {written} resources, {:.0}/s",
            written as f64 / elapsed.as_secs_f64().max(1e-9)
        );
    })
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let per_type: Vec<String> = counts.0.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!("wrote {}: {}", counts.total(), per_type.join(", "));
    println!(
        "{} resources in {elapsed:.1} s: {:.0} resources/s",
        counts.total(),
        counts.total() as f64 / elapsed.max(1e-9)
    );
    Ok(counts)
}

/// The server's services on `database_url` (migrated, its stored search parameters loaded), for
/// the generator working as the server itself.
pub async fn system_context(database_url: &str, concurrency: usize) -> Result<Cx> {
    let mut config = ServeConfig::for_database(database_url);
    // PostgreSQL: one connection per group in flight; SQLite has one writer whatever this says.
    config.db_pool_size = u32::try_from(concurrency).unwrap_or(u32::MAX).max(1);
    // Nothing is read back, so the version cache would only hold memory.
    config.cache_mib = 0;
    // Generated references are all relative: the base URL names nothing stored.
    let state = crate::app::build_state(&config, "http://localhost/fhir/R4").await?;
    Ok(Cx::system(state.services, SystemTask::Generate))
}

/// Resources per group write: large enough that a group's statements are few and long (the
/// store's bulk path), small enough that two groups in flight keep both cores busy.
const GROUP_RESOURCES: usize = 2_000;

/// Writes the whole data set through `store` in groups (`Store::write_all`, one SQL transaction
/// each), keeping up to `options.concurrency` groups in flight: while one is written, the next is
/// validated and indexed on the other cores. `progress` is called every 50,000 resources with
/// the number written and the time taken.
pub async fn write_data_set(cx: &Cx, options: &Options, mut progress: impl FnMut(u64, Duration)) -> Result<Counts> {
    let store = cx.services.store.clone();
    let registry = cx.services.search_parameters.current();
    let started = Instant::now();
    let shared = Shared::new(options.seed);
    let mut counts = Counts::default();
    let mut in_flight = JoinSet::new();
    let mut written = 0u64;
    let mut resources = shared
        .resources()
        .chain((1..=options.patients).flat_map(|n| patient_resources(options.seed, n, &shared)));
    loop {
        let group: Vec<Generated> = resources.by_ref().take(GROUP_RESOURCES).collect();
        if group.is_empty() {
            break;
        }
        while in_flight.len() >= options.concurrency.max(1) {
            finish(in_flight.join_next().await, &mut written, started, &mut progress)?;
        }
        for generated in &group {
            counts.add(generated.resource_type);
        }
        in_flight.spawn(write_group(store.clone(), registry.clone(), group));
    }
    while let Some(done) = in_flight.join_next().await {
        finish(Some(done), &mut written, started, &mut progress)?;
    }
    Ok(counts)
}

fn finish(
    done: Option<std::result::Result<Result<u64>, tokio::task::JoinError>>,
    written: &mut u64,
    started: Instant,
    progress: &mut impl FnMut(u64, Duration),
) -> Result<()> {
    match done {
        Some(Ok(Ok(count))) => {
            let before = *written / PROGRESS_EVERY;
            *written += count;
            if *written / PROGRESS_EVERY > before {
                progress(*written, started.elapsed());
            }
            Ok(())
        }
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(Error::internal(format!("a write task failed: {e}"))),
        None => Ok(()),
    }
}

/// The create path without HTTP, for a group: validate and compute index rows on every core, then
/// write every resource as version 1 in one transaction. Returns how many were written.
async fn write_group(store: Arc<dyn Store>, registry: Arc<Registry>, group: Vec<Generated>) -> Result<u64> {
    let ops = tokio::task::spawn_blocking(move || {
        crate::interactions::parallel::map(group, |generated| prepare(&registry, generated))
            .into_iter()
            .collect::<Result<Vec<WriteOp>>>()
    })
    .await
    .map_err(|e| Error::internal(format!("preparing a group failed: {e}")))??;
    let count = ops.len() as u64;
    store
        .write_all(ops)
        .await
        .map_err(|e| Error::internal(format!("a generated group was refused: {}", e.error)))?;
    Ok(count)
}

/// One resource's create: validated, with its index rows.
fn prepare(registry: &Registry, generated: Generated) -> Result<WriteOp> {
    let Generated {
        resource_type,
        id,
        resource,
    } = generated;
    let resource = Value::Object(resource);
    crate::validate::validate(&resource)
        .map_err(|e| Error::internal(format!("generated {resource_type}/{id} is invalid: {e}")))?;
    // Generated references are all relative, so no base URL is needed to tell them local.
    let index = crate::search::index_rows_for_write(registry, "", &resource);
    let Value::Object(resource) = resource else {
        unreachable!("wrapped an object just above")
    };
    Ok(WriteOp::Create {
        resource_type,
        id,
        resource,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{HistoryCursor, HistoryQuery, HistoryScope};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_every_resource_through_the_store() {
        let dir = std::env::temp_dir().join(format!(
            "fhir-generate-test-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        let url = format!("sqlite:{}", dir.join("fhir.sqlite").display());
        let cx = system_context(&url, 2).await.unwrap();
        let store = cx.services.store.clone();
        let generate = Options {
            patients: 4,
            seed: 11,
            concurrency: 16,
        };
        let counts = write_data_set(&cx, &generate, |_, _| {}).await.unwrap();
        assert_eq!(counts.0["Organization"], resources::ORGANIZATIONS);
        assert_eq!(counts.0["Practitioner"], resources::PRACTITIONERS);
        assert_eq!(counts.0["Patient"], 4);
        for (&name, &expected) in &counts.0 {
            let query = HistoryQuery {
                scope: HistoryScope::Type(ResourceType::parse(name).unwrap()),
                since: None,
                at: None,
                cursor: HistoryCursor::Newest,
                count: 1,
                reach: None,
            };
            assert_eq!(store.history_total(&query).await.unwrap(), expected as i64, "{name}");
        }
        let patient = &patient_resources(11, 2, &Shared::new(11))[0];
        let stored = store
            .read(patient.resource_type, patient.id.as_str())
            .await
            .unwrap()
            .unwrap();
        let stored: Value = serde_json::from_slice(&stored.content.unwrap()).unwrap();
        assert_eq!(stored["identifier"][0]["value"], "MRN-2");
        drop((store, cx));
        let _ = std::fs::remove_dir_all(dir);
    }
}
