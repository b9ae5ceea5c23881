//! The one dispatcher: every request — over HTTP, or as an entry of a batch, or a read entry of a
//! transaction — runs through `dispatch`, so a rule that must hold for a kind of request (who may
//! make it, what it discloses, what is audited) is written once, here or below, and holds on
//! every path.

use super::outcome::{DeleteTarget, Outcome, version_of};
use super::request::{BundleKind, Request};
use super::{
    Cx, access, audit_index, audited, batch, bundle_request, create, delete, history, operation_consent_evaluate,
    operation_reindex, operation_validate, patch, read, search, transaction, update, vread,
};
use crate::error::Result;
use crate::store::BoxFuture;

/// Runs `request` for `cx`'s caller, and records it in the audit trail when the trail wants it.
pub async fn dispatch(cx: &Cx, request: Request) -> Result<Outcome> {
    let _running = cx.services.audit_index.running();
    let described = audited::describe(cx, &request);
    let reserved = match &described {
        Some(_) => audited::reserve(cx)?,
        None => None,
    };
    let result = run(cx, request).await;
    match described {
        Some(described) => audited::after(cx, described, result, reserved),
        None => result,
    }
}

async fn run(cx: &Cx, request: Request) -> Result<Outcome> {
    let outcome = run_checked(cx, request).await?;
    consented_answer(cx, outcome).await
}

/// A write's answer carries the resource (`Prefer: return=representation`) only when a read of
/// it would: consents govern disclosure, not writes, so the write stands and its answer is as
/// with `return=minimal`.
async fn consented_answer(cx: &Cx, mut outcome: Outcome) -> Result<Outcome> {
    if let Outcome::Saved { version, .. } = &mut outcome
        && let Some(content) = &version.content
        && let Some(view) = access::consent::view(cx).await?
        && !access::disclose::consents_admit(
            cx,
            Some(&view),
            version.resource_type,
            version.id.as_str(),
            version.version_id,
            content,
        )?
    {
        version.content = None;
    }
    Ok(outcome)
}

async fn run_checked(cx: &Cx, request: Request) -> Result<Outcome> {
    access::check(cx, &request)?;
    // Only for a caller allowed to make the request: the pending records are stored for it.
    if audit_index::may_read_trail(&request) {
        audit_index::catch_up(&cx.services).await;
    }
    match request {
        Request::Capabilities => Ok(Outcome::Capabilities(
            cx.services.capability_statement.get(&cx.services.search_parameters),
        )),
        Request::Read {
            resource_type,
            id,
            conditions,
        } => read::read_if_changed(cx, resource_type, &id, &conditions).await,
        Request::Vread {
            resource_type,
            id,
            version,
        } => Ok(Outcome::Version(vread::vread(cx, resource_type, &id, &version).await?)),
        Request::Create {
            resource_type,
            resource,
            if_none_exist,
        } => Ok(Outcome::saved(
            create::create(cx, resource_type, resource, if_none_exist.as_ref()).await?,
        )),
        Request::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => Ok(Outcome::saved(
            update::update(cx, resource_type, &id, resource, if_match).await?,
        )),
        Request::UpdateConditional {
            condition,
            resource,
            if_match,
        } => Ok(Outcome::saved(
            update::update_conditional(cx, &condition, resource, if_match).await?,
        )),
        Request::Patch {
            resource_type,
            id,
            patch,
            if_match,
        } => Ok(Outcome::saved(
            patch::patch(cx, resource_type, &id, &patch, if_match).await?,
        )),
        Request::PatchConditional {
            condition,
            patch,
            if_match,
        } => Ok(Outcome::saved(
            patch::patch_conditional(cx, &condition, &patch, if_match).await?,
        )),
        Request::Delete {
            resource_type,
            id,
            if_match,
        } => {
            let written = delete::delete(cx, resource_type, &id, if_match).await?;
            Ok(Outcome::Deleted {
                target: DeleteTarget::Instance(resource_type, id),
                tombstones: written.into_iter().map(version_of).collect(),
            })
        }
        Request::DeleteConditional { condition } => {
            let written = delete::delete_conditional(cx, &condition).await?;
            Ok(Outcome::Deleted {
                target: DeleteTarget::Condition(condition),
                tombstones: written.into_iter().map(version_of).collect(),
            })
        }
        Request::Search { scope, query, strict } => {
            Ok(Outcome::Searchset(search::search(cx, &scope, &query, strict).await?))
        }
        Request::History { target, query } => Ok(Outcome::History(history::history(cx, &target, &query).await?)),
        Request::Bundle(mut bundle) => {
            let (kind, entries) = bundle_request::parse_bundle(&mut bundle, cx.services.bundle_max_entries)?;
            // Boxed: the entries are dispatched in turn, so this future holds itself.
            Ok(Outcome::Bundle(match kind {
                BundleKind::Transaction => Box::pin(transaction::transaction(cx, entries, dispatch_boxed)).await?,
                BundleKind::Batch => Box::pin(batch::batch(cx, entries, dispatch_boxed, write_group_boxed)).await,
            }))
        }
        Request::Validate {
            resource_type,
            id,
            body,
        } => Ok(Outcome::OperationOutcome(
            operation_validate::validate(cx, resource_type, id.as_deref(), body).await?,
        )),
        Request::Reindex(types) => {
            let job = operation_reindex::start(&cx.services, types);
            Ok(Outcome::ReindexStarted(operation_reindex::status_parameters(&[job])))
        }
        Request::ReindexStatus => Ok(Outcome::ReindexJobs(operation_reindex::status_parameters(
            &cx.services.reindex_jobs.list(),
        ))),
        Request::ConsentEvaluate(parameters) => Ok(Outcome::Parameters(
            operation_consent_evaluate::evaluate(cx, &parameters).await?,
        )),
    }
}

/// `dispatch` as the `Dispatch` a Bundle runs its entries with.
fn dispatch_boxed(cx: &Cx, request: Request) -> BoxFuture<'_, Result<Outcome>> {
    Box::pin(dispatch(cx, request))
}

fn write_group_boxed(
    cx: &Cx,
    entries: Vec<bundle_request::EntryRequest>,
) -> BoxFuture<'_, Option<Vec<Result<Outcome>>>> {
    Box::pin(write_group(cx, entries))
}

/// A batch's independent writes as one group (`batch::WriteGroup`): written the way a
/// transaction writes them, then each entry described, answered and audited as `dispatch` would
/// have for it alone. `None` when the group fails as a whole; nothing was written then.
async fn write_group(cx: &Cx, entries: Vec<bundle_request::EntryRequest>) -> Option<Vec<Result<Outcome>>> {
    // `--audit-required` holds a place in the audit queue for each request before it runs: a
    // group would hold hundreds at once (and count a full queue as shed records). Its entries
    // run one by one instead.
    if cx.services.audit.required {
        return None;
    }
    let _running = cx.services.audit_index.running();
    let described: Vec<_> = entries
        .iter()
        .map(|entry| audited::describe(cx, &entry.request))
        .collect();
    let written = transaction::transaction(cx, entries.into_iter().map(Ok).collect(), dispatch_boxed)
        .await
        .ok()?;
    let mut results = Vec::with_capacity(described.len());
    for (entry, described) in written.entries.into_iter().zip(described) {
        let result = match entry.outcome {
            Ok(outcome) => consented_answer(cx, outcome).await,
            Err(e) => Err(e),
        };
        results.push(match described {
            Some(described) => audited::after(cx, described, result, None),
            None => result,
        });
    }
    Some(results)
}
