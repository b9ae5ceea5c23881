//! FHIR transaction interaction — https://hl7.org/fhir/R4/http.html#transaction
//!
//! `POST [base]` with a `transaction` Bundle: every entry succeeds or nothing is stored. How:
//!
//! 1. Every entry is parsed and its resource validated (`bundle_request`); the first problem fails
//!    the transaction, naming the entry.
//! 2. Entries are taken in the spec's order — deletes, creates, updates, reads — and each write's
//!    target is decided: a new id for a create, the match of a conditional create, update,
//!    delete or patch (a search), the URL's id otherwise. A PATCH entry is applied here to the
//!    current version and becomes an update guarded by that version. Each `fullUrl` is mapped to the `Type/id` it
//!    became. Two entries writing one resource, or two entries with one `fullUrl`, are refused.
//! 3. Conditional references (`Patient?identifier=…`) are resolved by searching: exactly one
//!    match, else `412`. Then every reference to a `fullUrl` is rewritten (`bundle_references`).
//! 4. The writes go to the store as one group, applied in one SQL transaction
//!    (`Store::write_all`): a refused write (a stale `ifMatch`) rolls back all of them.
//! 5. Reads (GET/HEAD entries) run after the commit, so they see the transaction's writes. A read
//!    that fails does not undo the writes (they are committed); its entry carries the error.
//!
//! The searches of step 2 and 3 run before the SQL transaction. Conditional creates and updates
//! hold their types' locks (`conditional::CreateLocks`) from before their searches until the
//! commit, so two of them racing with one condition cannot both create. Each update and delete
//! found by a search is guarded by the version it matched, so one changed in between fails the
//! transaction (`412`) rather than being overwritten.

use super::bundle_references::{self, Assigned};
use super::bundle_request::{BundleKind, EntryMethod, EntryRequest, Target};
use super::bundle_response::{self, EntryOutcome, EntryReturn};
use super::conditional::{self, Condition, Matched};
use super::{Services, body, search_parameters, update};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Id, ResourceType, VersionId};
use crate::store::{WriteOp, Written};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What the transaction does for one entry, decided before anything is written.
#[derive(Debug)]
enum Planned {
    /// Create or update `resource_type/id`.
    Write {
        resource_type: ResourceType,
        id: Id,
        if_match: Option<VersionId>,
        create: bool,
    },
    /// Delete each of these (none: nothing to delete).
    Delete {
        resource_type: ResourceType,
        targets: Vec<(Id, Option<VersionId>)>,
    },
    /// A conditional create that matched: nothing is written, the match is the answer.
    Existing(ResourceType, Matched),
    /// A read, answered after the commit.
    Read,
}

/// A write of step 4, before or after its index rows are extracted.
enum PendingWrite {
    Ready(WriteOp),
    Index {
        resource_type: ResourceType,
        id: Id,
        resource: serde_json::Map<String, Value>,
        if_match: Option<VersionId>,
        create: bool,
    },
}

impl PendingWrite {
    fn into_op(self, registry: &crate::search::Registry, own_base: &str) -> WriteOp {
        match self {
            PendingWrite::Ready(op) => op,
            PendingWrite::Index {
                resource_type,
                id,
                resource,
                if_match,
                create,
            } => {
                let (resource, index) = body::with_index_rows(registry, own_base, resource);
                if create {
                    WriteOp::Create {
                        resource_type,
                        id,
                        resource,
                        index,
                    }
                } else {
                    WriteOp::Update {
                        resource_type,
                        id,
                        resource,
                        index,
                        if_match,
                    }
                }
            }
        }
    }
}

/// Runs a transaction whose entries `parse_bundle` produced.
pub async fn transaction(
    services: &Services,
    entries: Vec<Result<EntryRequest>>,
    prefer: EntryReturn,
) -> Result<Bytes> {
    let mut entries: Vec<EntryRequest> = entries.into_iter().collect::<Result<_>>()?;
    check_full_urls(&entries)?;
    // Conditional creates and updates search in step 2 and write in step 4; the locks of their
    // types are held from before the searches until the commit.
    let create_guard = services
        .create_locks
        .acquire(
            services.store.as_ref(),
            entries.iter().filter_map(|entry| match (&entry.method, &entry.target) {
                (EntryMethod::Post, Target::Type(t)) if entry.if_none_exist.is_some() => Some(*t),
                (EntryMethod::Put, Target::Conditional(condition)) => Some(condition.resource_type),
                _ => None,
            }),
        )
        .await?;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].method.processing_rank());

    // Step 2: what each entry writes, and where each fullUrl goes.
    let mut assigned = Assigned::default();
    let mut claimed: HashMap<(ResourceType, String), usize> = HashMap::new();
    let mut plans: Vec<Planned> = Vec::with_capacity(entries.len());
    for entry in entries.iter_mut() {
        let plan = plan_entry(services, entry).await.map_err(|e| entry.fail(e))?;
        let written_targets: Vec<(ResourceType, &Id)> = match &plan {
            Planned::Write { resource_type, id, .. } => vec![(*resource_type, id)],
            Planned::Delete { resource_type, targets } => targets.iter().map(|(id, _)| (*resource_type, id)).collect(),
            Planned::Existing(..) | Planned::Read => Vec::new(),
        };
        for (resource_type, id) in written_targets {
            if let Some(other) = claimed.insert((resource_type, id.as_str().to_owned()), entry.index) {
                return Err(entry.fail(Error::invalid(format!(
                    "{resource_type}/{id} is also written by Bundle.entry[{other}]; a transaction may change a resource only once"
                ))));
            }
        }
        if let Some(full_url) = &entry.full_url {
            match &plan {
                Planned::Write { resource_type, id, .. } => assigned.insert(full_url, format!("{resource_type}/{id}")),
                Planned::Existing(resource_type, matched) => {
                    assigned.insert(full_url, format!("{resource_type}/{}", matched.id))
                }
                _ => {}
            }
        }
        plans.push(plan);
    }

    // Step 3: conditional references, then every reference to a fullUrl.
    let conditional = resolve_conditional_references(services, &mut entries).await?;
    let planned_entries: Vec<(EntryRequest, &Planned)> = entries.into_iter().zip(&plans).collect();
    let rewritten = super::parallel::map(planned_entries, |(mut entry, plan)| {
        if let Planned::Write { id, .. } = plan {
            let fail = |e: Error| e.in_entry(entry.index, entry.full_url.as_deref());
            let resource = entry.resource.as_mut().expect("writes carry a resource");
            resource.insert("id".to_owned(), Value::String(id.as_str().to_owned()));
            bundle_references::rewrite(resource, entry.full_url.as_deref(), &assigned, &conditional).map_err(fail)?;
        }
        Ok(entry)
    });
    let mut entries: Vec<EntryRequest> = rewritten.into_iter().collect::<Result<_>>()?;

    // Step 4: the writes, as one group in processing order. Index rows are extracted for all of
    // them at once, spread over the cores.
    let mut pending = Vec::new();
    let mut op_entries = Vec::new();
    let mut unchanged: HashMap<usize, Written> = HashMap::new();
    let mut definitions = Vec::new();
    let registry = services.search_parameters.current();
    for &i in &order {
        let entry = &mut entries[i];
        match &plans[i] {
            Planned::Write {
                resource_type,
                id,
                if_match,
                create,
            } => {
                let resource = entry.resource.take().expect("writes carry a resource");
                if !*create
                    && !services.update_always_versions
                    && let Some(current) =
                        update::unchanged_current(services, *resource_type, id, &resource, *if_match).await?
                {
                    unchanged.insert(i, current);
                    continue;
                }
                let definition = search_parameters::before_write(services, *resource_type, &resource)
                    .map_err(|e| e.in_entry(i, entry.full_url.as_deref()))?;
                definitions.push((*resource_type, definition));
                pending.push(PendingWrite::Index {
                    resource_type: *resource_type,
                    id: id.clone(),
                    resource,
                    if_match: *if_match,
                    create: *create,
                });
                op_entries.push(i);
            }
            Planned::Delete { resource_type, targets } => {
                for (id, if_match) in targets {
                    pending.push(PendingWrite::Ready(WriteOp::Delete {
                        resource_type: *resource_type,
                        id: id.clone(),
                        if_match: *if_match,
                    }));
                    op_entries.push(i);
                }
                definitions.push((*resource_type, None));
            }
            Planned::Existing(..) | Planned::Read => {}
        }
    }
    let ops = super::parallel::map(pending, |write| write.into_op(&registry, &services.base_url));
    let results = services
        .store
        .write_all(ops)
        .await
        .map_err(|failure| match failure.index {
            Some(op) => {
                let entry = &entries[op_entries[op]];
                entry.fail(failure.error)
            }
            None => failure.error,
        })?;
    drop(create_guard);
    for (resource_type, definition) in &definitions {
        search_parameters::after_write(services, *resource_type, definition.as_ref()).await;
    }

    // The outcome of each entry, in request order.
    let mut written_by_entry: HashMap<usize, Vec<Written>> = HashMap::new();
    for (op, written) in results.into_iter().enumerate() {
        if let Some(written) = written {
            written_by_entry.entry(op_entries[op]).or_default().push(written);
        }
    }
    let mut outcomes = Vec::with_capacity(entries.len());
    for (i, (entry, plan)) in entries.iter().zip(plans).enumerate() {
        let outcome = match plan {
            Planned::Write { .. } => match unchanged.remove(&i) {
                Some(current) => EntryOutcome::Written(current),
                None => EntryOutcome::Written(
                    written_by_entry
                        .remove(&i)
                        .and_then(|mut w| w.pop())
                        .ok_or_else(|| Error::internal("a transaction write returned no version"))?,
                ),
            },
            Planned::Delete { .. } => EntryOutcome::Deleted(written_by_entry.remove(&i).unwrap_or_default()),
            Planned::Existing(resource_type, matched) => {
                EntryOutcome::Written(Written::existing(resource_type, matched.id, matched.current))
            }
            // Step 5.
            Planned::Read => super::batch::read_entry(services, entry)
                .await
                .unwrap_or_else(|e| EntryOutcome::Failed(entry.fail(e))),
        };
        outcomes.push(outcome);
    }
    bundle_response::serialise(services, BundleKind::Transaction, &outcomes, prefer)
}

/// Decides what `entry` writes (step 2), searching for the matches of conditional entries. A
/// PATCH entry is applied here, to the current version, and becomes the write of its result.
async fn plan_entry(services: &Services, entry: &mut EntryRequest) -> Result<Planned> {
    match (entry.method, &entry.target) {
        (EntryMethod::Get | EntryMethod::Head, _) => Ok(Planned::Read),
        (EntryMethod::Delete, Target::Instance(resource_type, id)) => Ok(Planned::Delete {
            resource_type: *resource_type,
            targets: vec![(Id::parse(id)?, entry.if_match)],
        }),
        (EntryMethod::Delete, Target::Conditional(condition)) => {
            let matched = conditional::find_for_delete(services, condition).await?;
            Ok(Planned::Delete {
                resource_type: condition.resource_type,
                targets: matched
                    .into_iter()
                    .map(|m| (m.id, Some(m.current.version_id)))
                    .collect(),
            })
        }
        (EntryMethod::Post, Target::Type(resource_type)) => {
            if let Some(query) = &entry.if_none_exist {
                let condition = Condition::new(*resource_type, query);
                if let Some(existing) =
                    conditional::find_one(services, &condition, "a conditional create (ifNoneExist)").await?
                {
                    return Ok(Planned::Existing(*resource_type, existing));
                }
            }
            Ok(Planned::Write {
                resource_type: *resource_type,
                id: Id::generate(),
                if_match: None,
                create: true,
            })
        }
        (EntryMethod::Put, Target::Instance(resource_type, id)) => Ok(Planned::Write {
            resource_type: *resource_type,
            id: Id::parse(id)?,
            if_match: entry.if_match,
            create: false,
        }),
        (EntryMethod::Put, Target::Conditional(condition)) => {
            let resource = entry.resource.as_ref().expect("a PUT entry carries a resource");
            let (id, if_match) = update::conditional_target(services, condition, resource, entry.if_match).await?;
            Ok(Planned::Write {
                resource_type: condition.resource_type,
                id,
                if_match,
                create: false,
            })
        }
        (EntryMethod::Patch, Target::Instance(resource_type, id)) => {
            let id = Id::parse(id)?;
            plan_patch(services, entry, *resource_type, id).await
        }
        (EntryMethod::Patch, Target::Conditional(condition)) => {
            let condition = condition.clone();
            match conditional::find_one(services, &condition, "a conditional patch").await? {
                Some(matched) => plan_patch(services, entry, condition.resource_type, matched.id).await,
                None => Err(Error::not_found(format!(
                    "no {} matches '{condition}'",
                    condition.resource_type
                ))),
            }
        }
        _ => Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::NotSupported,
            format!(
                "{} {} is not supported in a transaction",
                entry.method.as_str(),
                entry.url
            ),
        )),
    }
}

/// The write of a PATCH entry: the patched current version, guarded by the version patched.
async fn plan_patch(
    services: &Services,
    entry: &mut EntryRequest,
    resource_type: ResourceType,
    id: Id,
) -> Result<Planned> {
    let document = entry.patch.as_ref().expect("a PATCH entry carries its patch");
    let (patched, version) =
        super::patch::patched_current(services, resource_type, &id, document, entry.if_match).await?;
    entry.resource = Some(patched);
    Ok(Planned::Write {
        resource_type,
        id,
        if_match: Some(version),
        create: false,
    })
}

/// Every `fullUrl` at most once.
fn check_full_urls(entries: &[EntryRequest]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for entry in entries {
        if let Some(full_url) = &entry.full_url
            && let Some(first) = seen.insert(full_url.as_str(), entry.index)
        {
            return Err(entry.fail(Error::invalid(format!(
                "the fullUrl '{full_url}' is also that of Bundle.entry[{first}]; each entry needs its own"
            ))));
        }
    }
    Ok(())
}

/// Resolves each distinct conditional reference in the entries' resources to the `Type/id` of its
/// single match; no match or several fail (`412`), naming the first entry that used it.
pub async fn resolve_conditional_references(
    services: &Services,
    entries: &mut [EntryRequest],
) -> Result<HashMap<String, String>> {
    let mut resolved = HashMap::new();
    let mut tried = HashSet::new();
    for entry in entries.iter_mut() {
        let Some(resource) = entry.resource.as_mut() else {
            continue;
        };
        for reference in bundle_references::conditional_references(resource) {
            if !tried.insert(reference.clone()) {
                continue;
            }
            let target = resolve_one(services, &reference)
                .await
                .map_err(|e| e.in_entry(entry.index, entry.full_url.as_deref()))?;
            resolved.insert(reference, target);
        }
    }
    Ok(resolved)
}

async fn resolve_one(services: &Services, reference: &str) -> Result<String> {
    let condition = Condition::parse_url(reference).expect("only conditional references are resolved");
    match conditional::find_one(services, &condition, "a conditional reference").await? {
        Some(matched) => Ok(format!("{}/{}", condition.resource_type, matched.id)),
        None => Err(Error::precondition_failed(format!(
            "the conditional reference '{reference}' matches no resource"
        ))),
    }
}
