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
//! 5. Reads (GET/HEAD entries, and operations such as `$validate`) run after the commit, through
//!    `dispatch` like any REST request, so they see the transaction's writes. A read that fails
//!    does not undo the writes (they are committed); its entry carries the error.
//!
//! The searches of step 2 and 3 run before the SQL transaction. Conditional creates and updates
//! hold their types' locks (`conditional::CreateLocks`) from before their searches until the
//! commit, so two of them racing with one condition cannot both create. Each update and delete
//! found by a search is guarded by the version it matched, so one changed in between fails the
//! transaction (`412`) rather than being overwritten.

use super::access::{self, writes::Allowed};
use super::bundle_references::{self, Assigned};
use super::bundle_request::EntryRequest;
use super::conditional::{self, Matched};
use super::context::Dispatch;
use super::outcome::{BundleOutcome, EntryOutcome};
use super::outcome::{DeleteTarget, Outcome, version_of};
use super::request::BundleKind;
use super::request::Request;
use super::{Cx, body, search_parameters, update};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Id, ResourceType, VersionId};
use crate::patch::Patch;
use crate::store::{WriteOp, Written};
use serde_json::{Map, Value};
use std::collections::HashMap;

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
    /// Delete each of these (none: nothing to delete), as `target` asked.
    Delete {
        resource_type: ResourceType,
        targets: Vec<(Id, Option<VersionId>)>,
        target: DeleteTarget,
    },
    /// A conditional create that matched: nothing is written, the match is the answer.
    Existing(ResourceType, Matched),
    /// A read, answered after the commit.
    Read,
}

/// One entry on its way through the transaction.
struct Step {
    index: usize,
    full_url: Option<String>,
    head: bool,
    plan: Planned,
    /// The resource a `Write` stores (a PATCH entry's, once patched).
    resource: Option<Map<String, Value>>,
    /// A `Read`'s request, dispatched after the commit.
    read: Option<Request>,
}

impl Step {
    fn fail(&self, e: Error) -> Error {
        e.in_entry(self.index, self.full_url.as_deref())
    }
}

/// A write of step 4, before or after its index rows are extracted.
enum PendingWrite {
    Ready(WriteOp),
    Index {
        resource_type: ResourceType,
        id: Id,
        resource: Map<String, Value>,
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

/// The order a transaction processes entries in (http.html#trules): deletes, then creates, then
/// updates and patches, then reads.
fn processing_rank(request: &Request) -> u8 {
    match request {
        Request::Delete { .. } | Request::DeleteConditional { .. } => 0,
        Request::Create { .. } => 1,
        Request::Update { .. }
        | Request::UpdateConditional { .. }
        | Request::Patch { .. }
        | Request::PatchConditional { .. } => 2,
        _ => 3,
    }
}

/// Runs a transaction whose entries `parse_bundle` produced.
/// `dispatch` is the dispatcher its reads run through.
pub async fn transaction(cx: &Cx, entries: Vec<Result<EntryRequest>>, dispatch: Dispatch) -> Result<BundleOutcome> {
    let services = &cx.services;
    let entries: Vec<EntryRequest> = entries.into_iter().collect::<Result<_>>()?;
    check_full_urls(&entries)?;
    // What each entry asks, checked before any of them runs.
    for entry in &entries {
        access::check(cx, &entry.request).map_err(|e| entry.fail(e))?;
    }
    // Conditional creates and updates search in step 2 and write in step 4; the locks of their
    // types are held from before the searches until the commit.
    let create_guard = services
        .create_locks
        .acquire(
            services.store.as_ref(),
            entries.iter().filter_map(|entry| match &entry.request {
                Request::Create {
                    resource_type,
                    if_none_exist: Some(_),
                    ..
                } => Some(*resource_type),
                Request::UpdateConditional { condition, .. } => Some(condition.resource_type),
                _ => None,
            }),
        )
        .await?;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| processing_rank(&entries[i].request));

    // Step 2: what each entry writes, and where each fullUrl goes.
    let mut assigned = Assigned::default();
    let mut claimed: HashMap<(ResourceType, String), usize> = HashMap::new();
    let mut steps: Vec<Step> = Vec::with_capacity(entries.len());
    for entry in entries {
        let step = plan_entry(cx, entry).await?;
        let written_targets: Vec<(ResourceType, &Id)> = match &step.plan {
            Planned::Write { resource_type, id, .. } => vec![(*resource_type, id)],
            Planned::Delete {
                resource_type, targets, ..
            } => targets.iter().map(|(id, _)| (*resource_type, id)).collect(),
            Planned::Existing(..) | Planned::Read => Vec::new(),
        };
        for (resource_type, id) in written_targets {
            if let Some(other) = claimed.insert((resource_type, id.as_str().to_owned()), step.index) {
                return Err(step.fail(Error::invalid(format!(
                    "{resource_type}/{id} is also written by Bundle.entry[{other}]; a transaction may change a resource only once"
                ))));
            }
        }
        if let Some(full_url) = &step.full_url {
            match &step.plan {
                Planned::Write { resource_type, id, .. } => assigned.insert(full_url, format!("{resource_type}/{id}")),
                Planned::Existing(resource_type, matched) => {
                    assigned.insert(full_url, format!("{resource_type}/{}", matched.id))
                }
                _ => {}
            }
        }
        steps.push(step);
    }

    // Step 3: conditional references, then every reference to a fullUrl.
    let mut conditional = HashMap::new();
    for step in &mut steps {
        if let Some(resource) = step.resource.as_mut() {
            let resolved = conditional::resolve_references(cx, resource, &mut conditional).await;
            resolved.map_err(|e| step.fail(e))?;
        }
    }
    let rewritten = super::parallel::map(steps, |mut step| {
        if let Planned::Write { id, .. } = &step.plan {
            let resource = step.resource.as_mut().expect("writes carry a resource");
            resource.insert("id".to_owned(), Value::String(id.as_str().to_owned()));
            let rewritten = bundle_references::rewrite(resource, step.full_url.as_deref(), &assigned, &conditional);
            rewritten.map_err(|e| step.fail(e))?;
        }
        Ok(step)
    });
    let mut steps: Vec<Step> = rewritten.into_iter().collect::<Result<_>>()?;

    // Step 4: the writes, as one group in processing order. Index rows are extracted for all of
    // them at once, spread over the cores.
    let mut pending = Vec::new();
    let mut op_steps = Vec::new();
    let mut unchanged: HashMap<usize, Written> = HashMap::new();
    let mut definitions = Vec::new();
    let registry = services.search_parameters.current();
    for &i in &order {
        let step = &mut steps[i];
        match &step.plan {
            Planned::Write {
                resource_type,
                id,
                if_match,
                create,
            } => {
                let resource = step.resource.take().expect("writes carry a resource");
                if !*create
                    && !services.update_always_versions
                    && let Some(current) =
                        update::unchanged_current(cx, *resource_type, id, &resource, *if_match).await?
                {
                    unchanged.insert(i, current);
                    continue;
                }
                let definition = search_parameters::before_write(cx, *resource_type, &resource)
                    .map_err(|e| e.in_entry(step.index, step.full_url.as_deref()))?;
                definitions.push((*resource_type, definition));
                pending.push(PendingWrite::Index {
                    resource_type: *resource_type,
                    id: id.clone(),
                    resource,
                    if_match: *if_match,
                    create: *create,
                });
                op_steps.push(i);
            }
            Planned::Delete {
                resource_type, targets, ..
            } => {
                for (id, if_match) in targets {
                    pending.push(PendingWrite::Ready(WriteOp::Delete {
                        resource_type: *resource_type,
                        id: id.clone(),
                        if_match: *if_match,
                    }));
                    op_steps.push(i);
                }
                definitions.push((*resource_type, None));
            }
            Planned::Existing(..) | Planned::Read => {}
        }
    }
    let ops = super::parallel::map(pending, |write| write.into_op(&registry, &services.base_url));
    // Every write checked before any is made: one out of reach fails the whole transaction.
    let mut allowed_ops = Vec::with_capacity(ops.len());
    let mut allowed_steps = Vec::with_capacity(ops.len());
    for (op, step) in ops.into_iter().zip(op_steps) {
        match access::writes::check(cx, &op).await {
            Ok(Allowed::Write) => {
                allowed_ops.push(op);
                allowed_steps.push(step);
            }
            Ok(Allowed::Nothing) => {}
            Err(e) => return Err(steps[step].fail(e)),
        }
    }
    let (ops, op_steps) = (allowed_ops, allowed_steps);
    let results = services
        .store
        .write_all(ops)
        .await
        .map_err(|failure| match failure.index {
            Some(op) => steps[op_steps[op]].fail(failure.error),
            None => failure.error,
        })?;
    drop(create_guard);
    for (resource_type, definition) in &definitions {
        search_parameters::after_write(cx, *resource_type, definition.as_ref()).await;
    }

    // The outcome of each entry, in request order.
    let mut written_by_step: HashMap<usize, Vec<Written>> = HashMap::new();
    for (op, written) in results.into_iter().enumerate() {
        if let Some(written) = written {
            written_by_step.entry(op_steps[op]).or_default().push(written);
        }
    }
    let mut outcomes = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let outcome = match step.plan {
            Planned::Write { .. } => match unchanged.remove(&i) {
                Some(current) => Ok(Outcome::saved(current)),
                None => Ok(Outcome::saved(
                    written_by_step
                        .remove(&i)
                        .and_then(|mut w| w.pop())
                        .ok_or_else(|| Error::internal("a transaction write returned no version"))?,
                )),
            },
            Planned::Delete { target, .. } => Ok(Outcome::Deleted {
                target,
                tombstones: written_by_step
                    .remove(&i)
                    .unwrap_or_default()
                    .into_iter()
                    .map(version_of)
                    .collect(),
            }),
            Planned::Existing(resource_type, matched) => Ok(Outcome::saved(Written::existing(
                resource_type,
                matched.id,
                matched.current,
            ))),
            // Step 5.
            Planned::Read => {
                let request = step.read.expect("a read step keeps its request");
                dispatch(cx, request)
                    .await
                    .map_err(|e| e.in_entry(step.index, step.full_url.as_deref()))
            }
        };
        outcomes.push(EntryOutcome {
            head: step.head,
            outcome,
        });
    }
    Ok(BundleOutcome {
        kind: BundleKind::Transaction,
        entries: outcomes,
    })
}

/// Decides what `entry` writes (step 2), searching for the matches of conditional entries. A
/// PATCH entry is applied here, to the current version, and becomes the write of its result.
async fn plan_entry(cx: &Cx, entry: EntryRequest) -> Result<Step> {
    let mut step = Step {
        index: entry.index,
        full_url: entry.full_url.clone(),
        head: entry.is_head(),
        plan: Planned::Read,
        resource: None,
        read: None,
    };
    let planned = plan_request(cx, entry.request, &mut step).await;
    step.plan = planned.map_err(|e| step.fail(e))?;
    Ok(step)
}

async fn plan_request(cx: &Cx, request: Request, step: &mut Step) -> Result<Planned> {
    match request {
        Request::Delete {
            resource_type,
            id,
            if_match,
        } => Ok(Planned::Delete {
            resource_type,
            targets: vec![(Id::parse(&id)?, if_match)],
            target: DeleteTarget::Instance(resource_type, id),
        }),
        Request::DeleteConditional { condition } => {
            let matched = conditional::find_for_delete(cx, &condition).await?;
            Ok(Planned::Delete {
                resource_type: condition.resource_type,
                targets: matched
                    .into_iter()
                    .map(|m| (m.id, Some(m.current.version_id)))
                    .collect(),
                target: DeleteTarget::Condition(condition),
            })
        }
        Request::Create {
            resource_type,
            resource,
            if_none_exist,
        } => {
            if let Some(condition) = &if_none_exist
                && let Some(existing) =
                    conditional::find_one(cx, condition, "a conditional create (ifNoneExist)").await?
            {
                let existing = conditional::disclosed(cx, resource_type, existing).await?;
                return Ok(Planned::Existing(resource_type, existing));
            }
            step.resource = Some(resource.into_map());
            Ok(Planned::Write {
                resource_type,
                id: Id::generate(),
                if_match: None,
                create: true,
            })
        }
        Request::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => {
            step.resource = Some(resource.into_map());
            Ok(Planned::Write {
                resource_type,
                id: Id::parse(&id)?,
                if_match,
                create: false,
            })
        }
        Request::UpdateConditional {
            condition,
            resource,
            if_match,
        } => {
            let (id, if_match) = update::conditional_target(cx, &condition, resource.as_map(), if_match).await?;
            step.resource = Some(resource.into_map());
            Ok(Planned::Write {
                resource_type: condition.resource_type,
                id,
                if_match,
                create: false,
            })
        }
        Request::Patch {
            resource_type,
            id,
            patch,
            if_match,
        } => plan_patch(cx, step, resource_type, Id::parse(&id)?, &patch, if_match).await,
        Request::PatchConditional {
            condition,
            patch,
            if_match,
        } => match conditional::find_one(cx, &condition, "a conditional patch").await? {
            Some(matched) => plan_patch(cx, step, condition.resource_type, matched.id, &patch, if_match).await,
            None => Err(Error::not_found(format!(
                "no {} matches '{condition}'",
                condition.resource_type
            ))),
        },
        Request::Bundle(_) | Request::Reindex(_) => Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::NotSupported,
            "this request is not supported in a transaction",
        )),
        read => {
            step.read = Some(read);
            Ok(Planned::Read)
        }
    }
}

/// The write of a PATCH entry: the patched current version, guarded by the version patched.
async fn plan_patch(
    cx: &Cx,
    step: &mut Step,
    resource_type: ResourceType,
    id: Id,
    patch: &Patch,
    if_match: Option<VersionId>,
) -> Result<Planned> {
    let (patched, version) = super::patch::patched_current(cx, resource_type, &id, patch, if_match).await?;
    step.resource = Some(patched);
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
