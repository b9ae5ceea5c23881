//! `$reindex`: recomputes the search-index rows of stored resources with the search parameters
//! in force now. Needed when a `SearchParameter` is added or changed (started by itself then, for
//! the parameter's base types) and for resources stored before their index tables existed.
//!
//! - `POST [base]/$reindex` (every type) or `POST [base]/[type]/$reindex` starts a background job
//!   and answers `202 Accepted` at once, with the job's status as a `Parameters` resource and its
//!   address in `Content-Location`;
//! - `GET [base]/$reindex` lists the jobs of this server process with their progress.
//!
//! A job walks each type in `rid` order, a page at a time, and writes each resource's new rows
//! with `WriteOp::Reindex`, which applies only if the resource is still at the version read: a
//! resource written meanwhile was indexed by that write. Progress goes to the log every
//! `LOG_EVERY` resources. Jobs live in memory; one cut short by a restart is simply run again.
//!
//! On a database written by an older server, a job first records the owners of the versions
//! stored before the server recorded them with every version (`store::owners`): whose each was,
//! from its own content, a page at a time, resuming where an interrupted job stopped.

use super::{Cx, Services};
use crate::auth::SystemTask;
use crate::error::Result;
use crate::model::{Id, ResourceType};
use crate::search::compartments::patient_owners;
use crate::search::plan::Plan;
use crate::search::{compile, request};
use crate::store::WriteOp;
use crate::store::owners::VersionOwners;
use crate::store::rules::Owners;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Resources per page read by a job.
const PAGE_SIZE: u32 = 500;
/// How often a job logs its progress.
const LOG_EVERY: u64 = 10_000;

#[derive(Default)]
pub struct ReindexJobs {
    jobs: Mutex<Vec<JobStatus>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Running,
    Completed,
    /// The reason is in the server log, not here: it may be an internal error.
    Failed,
}

#[derive(Debug, Clone)]
pub struct JobStatus {
    pub id: u64,
    pub types: Vec<String>,
    pub state: JobState,
    /// Resources given new index rows so far.
    pub reindexed: u64,
    /// Resources skipped because a newer write had indexed them.
    pub skipped: u64,
    started: Instant,
    pub seconds: f64,
}

impl ReindexJobs {
    fn update(&self, id: u64, change: impl FnOnce(&mut JobStatus)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = jobs.iter_mut().find(|j| j.id == id) {
            change(job);
            job.seconds = job.started.elapsed().as_secs_f64();
        }
    }

    pub fn list(&self) -> Vec<JobStatus> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, id: u64) -> Option<JobStatus> {
        self.list().into_iter().find(|j| j.id == id)
    }
}

/// Starts a job over `types` in the background and returns its status as it begins. The job
/// runs as the server itself (`SystemTask::Reindex`), whoever asked for it.
pub fn start(services: &Arc<Services>, types: Vec<ResourceType>) -> JobStatus {
    let status = {
        let mut jobs = services.reindex_jobs.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let status = JobStatus {
            id: jobs.len() as u64 + 1,
            types: types.iter().map(|t| t.as_str().to_owned()).collect(),
            state: JobState::Running,
            reindexed: 0,
            skipped: 0,
            started: Instant::now(),
            seconds: 0.0,
        };
        jobs.push(status.clone());
        status
    };
    tracing::info!(job = status.id, types = status.types.len(), "re-index started");
    let cx = Cx::system(services.clone(), SystemTask::Reindex);
    let id = status.id;
    tokio::spawn(async move {
        let outcome = run(&cx, id, &types).await;
        let jobs = &cx.services.reindex_jobs;
        match outcome {
            Ok(()) => jobs.update(id, |job| job.state = JobState::Completed),
            Err(e) => {
                tracing::error!(job = id, error = %e, "re-index failed");
                jobs.update(id, |job| job.state = JobState::Failed);
            }
        }
        if let Some(job) = jobs.get(id) {
            tracing::info!(job = id, reindexed = job.reindexed, skipped = job.skipped, seconds = job.seconds, state = ?job.state, "re-index finished");
        }
    });
    status
}

async fn run(cx: &Cx, job: u64, types: &[ResourceType]) -> Result<()> {
    let services = &cx.services;
    let backfilled = backfill_owners(cx).await?;
    if backfilled > 0 {
        tracing::info!(job, versions = backfilled, "owners of earlier versions recorded");
    }
    let mut done: u64 = 0;
    for resource_type in types {
        let mut cursor: Option<String> = None;
        loop {
            // The registry is taken per page, so a job started by one parameter change also
            // applies any that come after it.
            let registry = services.search_parameters.current();
            let mut query = vec![("_count".to_owned(), PAGE_SIZE.to_string())];
            if let Some(cursor) = &cursor {
                query.push(("_page_after".to_owned(), cursor.clone()));
            }
            let search = request::parse(
                &registry,
                Some(&[resource_type.as_str()]),
                &query,
                &services.base_url,
                crate::search::limits::Limits {
                    default_count: PAGE_SIZE,
                    max_count: PAGE_SIZE,
                    default_total_limit: 0,
                    set_limit: crate::search::limits::SET_LIMIT,
                },
                true,
            )?;
            let mut rows = services
                .store
                .search(&compile::page_query(services.store.dialect(), &search, &Plan::sets())?)
                .await?;
            let more = rows.len() > PAGE_SIZE as usize;
            rows.truncate(PAGE_SIZE as usize);
            for row in &rows {
                let resource: Value = serde_json::from_slice(&row.content)
                    .map_err(|e| crate::error::Error::internal(format!("stored JSON does not parse: {e}")))?;
                let Some(version_id) = resource
                    .pointer("/meta/versionId")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse().ok())
                else {
                    continue;
                };
                let index = crate::search::index_rows_for_write(&registry, &services.base_url, &resource);
                let written = services
                    .store
                    .write(WriteOp::Reindex {
                        resource_type: *resource_type,
                        id: Id::parse(&row.id)?,
                        version_id,
                        index,
                    })
                    .await?;
                let reindexed = written.is_some();
                services.reindex_jobs.update(job, |status| {
                    if reindexed {
                        status.reindexed += 1;
                    } else {
                        status.skipped += 1;
                    }
                });
                done += 1;
                if done.is_multiple_of(LOG_EVERY) {
                    tracing::info!(job, resource_type = %resource_type, done, "re-index progress");
                }
            }
            match rows.last().and_then(|r| r.cursor.clone()) {
                Some(next) if more => cursor = Some(next),
                _ => break,
            }
        }
    }
    Ok(())
}

/// Records whose each version written before owners were recorded was (see the module comment);
/// answers how many versions it went through.
pub async fn backfill_owners(cx: &Cx) -> Result<u64> {
    let store = &cx.services.store;
    let Some(mut backfill) = store.owner_backfill().await? else {
        return Ok(0);
    };
    let mut count = 0;
    loop {
        let page = store.history_between(backfill.done, backfill.up_to, PAGE_SIZE).await?;
        let through = match page.last() {
            Some(last) if page.len() == PAGE_SIZE as usize => last.seq,
            _ => backfill.up_to,
        };
        count += page.len() as u64;
        let registry = cx.services.search_parameters.current();
        let versions = page
            .into_iter()
            .map(|version| {
                let owners = match &version.content {
                    None => Owners::OfDeletedVersion,
                    Some(content) => {
                        let resource: Value = serde_json::from_slice(content)
                            .map_err(|e| crate::error::Error::internal(format!("stored JSON does not parse: {e}")))?;
                        let rows = crate::search::index_rows_for_write(&registry, &cx.services.base_url, &resource);
                        Owners::Patients(patient_owners(&version.resource_type, &version.id, &rows))
                    }
                };
                Ok(VersionOwners {
                    seq: version.seq,
                    resource_type: version.resource_type,
                    id: version.id,
                    version_id: version.version_id,
                    owners,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        store.record_owners(versions, through, backfill.up_to).await?;
        if through >= backfill.up_to {
            return Ok(count);
        }
        backfill.done = through;
    }
}

/// A job's status as `Parameters` parts.
pub fn status_parameters(jobs: &[JobStatus]) -> Value {
    let parameter = jobs
        .iter()
        .map(|job| {
            let state = match job.state {
                JobState::Running => "running",
                JobState::Completed => "completed",
                JobState::Failed => "failed",
            };
            let mut parts = vec![
                json!({"name": "id", "valueString": job.id.to_string()}),
                json!({"name": "status", "valueCode": state}),
                json!({"name": "reindexed", "valueInteger": job.reindexed}),
                json!({"name": "skipped", "valueInteger": job.skipped}),
                json!({"name": "seconds", "valueDecimal": (job.seconds * 1000.0).round() / 1000.0}),
            ];
            for t in &job.types {
                parts.push(json!({"name": "type", "valueCode": t}));
            }
            json!({"name": "job", "part": parts})
        })
        .collect::<Vec<_>>();
    // FHIR JSON has no empty arrays: with no jobs there is no `parameter`.
    if parameter.is_empty() {
        return json!({"resourceType": "Parameters"});
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}
