//! FHIR batch interaction — https://hl7.org/fhir/R4/http.html#transaction (batch)
//!
//! `POST [base]` with a `batch` Bundle: each entry is its own interaction, run in entry order
//! through the same code as the REST interaction it stands for, with its own status and, when it
//! fails, its own OperationOutcome; one failure changes nothing for the others. A batch's entries
//! may not depend on each other, so a reference to another entry's `fullUrl` fails that entry
//! (`400`). Conditional references (`Patient?identifier=…`) are resolved per entry.

use super::bundle_references::{self, Assigned};
use super::bundle_request::{BundleKind, EntryMethod, EntryRequest, Target};
use super::bundle_response::{self, EntryOutcome, EntryReturn};
use super::history::{self, HistoryParams, HistoryTarget};
use super::search::SearchScope;
use super::{Services, create, delete, patch, read, search, update, vread};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::Id;
use bytes::Bytes;

/// Runs a batch whose entries `parse_bundle` produced.
pub async fn batch(services: &Services, entries: Vec<Result<EntryRequest>>, prefer: EntryReturn) -> Result<Bytes> {
    let mut others = Assigned::default();
    for entry in entries.iter().flatten() {
        if let Some(full_url) = &entry.full_url {
            others.insert(full_url, String::new());
        }
    }
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let outcome = match entry {
            Err(e) => EntryOutcome::Failed(e),
            Ok(mut entry) => match run_entry(services, &mut entry, &others).await {
                Ok(outcome) => outcome,
                Err(e) => EntryOutcome::Failed(entry.fail(e)),
            },
        };
        outcomes.push(outcome);
    }
    bundle_response::serialise(services, BundleKind::Batch, &outcomes, prefer)
}

async fn run_entry(services: &Services, entry: &mut EntryRequest, others: &Assigned) -> Result<EntryOutcome> {
    if let Some(resource) = entry.resource.as_mut()
        && let Some((reference, path)) = bundle_references::first_reference_to(resource, others)
    {
        return Err(Error::invalid(format!(
            "the reference '{reference}' names another entry of the batch; batch entries are processed independently and may not refer to each other (use a transaction)"
        ))
        .at(path));
    }
    let conditional = super::transaction::resolve_conditional_references(services, std::slice::from_mut(entry)).await?;
    if let Some(resource) = entry.resource.as_mut() {
        bundle_references::rewrite(resource, None, &Assigned::default(), &conditional)?;
    }
    match (entry.method, &entry.target) {
        (EntryMethod::Get | EntryMethod::Head, _) => read_entry(services, entry).await,
        (EntryMethod::Post, Target::Type(resource_type)) => {
            let resource = entry.resource.take().expect("a POST entry carries a resource");
            let written =
                create::create_resource(services, *resource_type, resource, entry.if_none_exist.as_deref()).await?;
            Ok(EntryOutcome::Written(written))
        }
        (EntryMethod::Put, Target::Instance(resource_type, id)) => {
            let resource = entry.resource.take().expect("a PUT entry carries a resource");
            let id = Id::parse(id)?;
            let written = update::write_version(services, *resource_type, id, resource, entry.if_match).await?;
            Ok(EntryOutcome::Written(written))
        }
        (EntryMethod::Put, Target::Conditional(condition)) => {
            let resource = entry.resource.take().expect("a PUT entry carries a resource");
            let written = update::update_conditional_resource(services, condition, resource, entry.if_match).await?;
            Ok(EntryOutcome::Written(written))
        }
        (EntryMethod::Delete, Target::Instance(resource_type, id)) => {
            let written = delete::delete(services, *resource_type, id, entry.if_match).await?;
            Ok(EntryOutcome::Deleted(written.into_iter().collect()))
        }
        (EntryMethod::Delete, Target::Conditional(condition)) => Ok(EntryOutcome::Deleted(
            delete::delete_conditional(services, condition).await?,
        )),
        (EntryMethod::Patch, Target::Instance(resource_type, id)) => {
            let document = entry.patch.as_ref().expect("a PATCH entry carries its patch");
            let written = patch::patch(services, *resource_type, id, document, entry.if_match).await?;
            Ok(EntryOutcome::Written(written))
        }
        (EntryMethod::Patch, Target::Conditional(condition)) => {
            let document = entry.patch.as_ref().expect("a PATCH entry carries its patch");
            let written = patch::patch_conditional(services, condition, document, entry.if_match).await?;
            Ok(EntryOutcome::Written(written))
        }
        _ => Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::NotSupported,
            format!("{} {} is not supported in a batch", entry.method.as_str(), entry.url),
        )),
    }
}

/// A GET or HEAD entry: a read, a vread, a search (type, system or compartment) or a history,
/// with the entry's `ifNoneMatch` / `ifModifiedSince` for reads.
pub async fn read_entry(services: &Services, entry: &EntryRequest) -> Result<EntryOutcome> {
    let head = entry.method == EntryMethod::Head;
    let searched = |bundle: Bytes| EntryOutcome::Read {
        body: (!head).then_some(bundle),
        version: None,
    };
    match &entry.target {
        Target::Instance(resource_type, id) => {
            let stored = read::read(services, *resource_type, id).await?;
            let not_modified = match (&entry.if_none_match, entry.if_modified_since) {
                (Some(tags), _) => tags
                    .split(',')
                    .any(|tag| tag.trim() == "*" || crate::model::parse_etag(tag) == Some(stored.version_id)),
                (None, Some(since)) => stored.last_updated.whole_seconds() <= since,
                (None, None) => false,
            };
            if not_modified {
                return Ok(EntryOutcome::NotModified {
                    version: stored.version_id,
                    last_updated: stored.last_updated,
                });
            }
            Ok(EntryOutcome::Read {
                version: Some((stored.version_id, stored.last_updated)),
                body: if head { None } else { stored.content },
            })
        }
        Target::Version(resource_type, id, version) => {
            let stored = vread::vread(services, *resource_type, id, version).await?;
            Ok(EntryOutcome::Read {
                version: Some((stored.version_id, stored.last_updated)),
                body: if head { None } else { stored.content },
            })
        }
        Target::Type(resource_type) => Ok(searched(
            search::search(services, &SearchScope::Type(*resource_type), &[], false).await?,
        )),
        Target::Conditional(condition) => Ok(searched(
            search::search(
                services,
                &SearchScope::Type(condition.resource_type),
                &condition.query,
                false,
            )
            .await?,
        )),
        Target::System(query) => Ok(searched(
            search::search(services, &SearchScope::System, &query_pairs(query), false).await?,
        )),
        Target::Compartment {
            compartment,
            id,
            target,
            query,
        } => {
            let scope = SearchScope::Compartment {
                compartment: *compartment,
                id: id.clone(),
                target: *target,
            };
            Ok(searched(
                search::search(services, &scope, &query_pairs(query), false).await?,
            ))
        }
        Target::History {
            resource_type,
            id,
            query,
        } => {
            let target = match (resource_type, id) {
                (Some(t), Some(id)) => HistoryTarget::Instance(*t, id),
                (Some(t), None) => HistoryTarget::Type(*t),
                _ => HistoryTarget::System,
            };
            let params = HistoryParams::parse(&query_pairs(query))?;
            Ok(searched(history::history(services, target, &params).await?))
        }
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
