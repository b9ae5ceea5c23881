//! FHIR update interaction — https://hl7.org/fhir/R4/http.html#update
//!
//! `PUT [base]/[type]/[id]`: a new version; creates the resource with the client's id when it does
//! not exist (update-as-create) and revives it when deleted. The body's `id` must equal the URL's.
//! With `If-Match: W/"n"` the update happens only when `n` is the current version (else 412).
//! An update whose content equals the current version's (apart from `meta.versionId` and
//! `meta.lastUpdated`) writes no version and answers with the current one, unless the server runs
//! with `--update-always-versions`: a client re-sending what it read, or an integration replaying
//! a feed, then leaves history as it was.
//!
//! `PUT [base]/[type]?[search]` is a conditional update (http.html#cond-update): one match is
//! updated (a body `id`, if any, must be the match's); no match creates the resource, at the body's
//! `id` when it has one; several matches are a `412`.

use super::body::ValidResource;
use super::condition::Condition;
use super::conditional;
use super::{Cx, access, body, search_parameters};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::model::{Id, ResourceType, VersionId};
use crate::store::rules;
use crate::store::{WriteOp, Written};
use serde_json::{Map, Value};

/// `PUT [type]/[id]`; the front door has checked that the body's `id` is the URL's.
pub async fn update(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    resource: ValidResource,
    if_match: Option<VersionId>,
) -> Result<Written> {
    let id = Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
    write_version(cx, resource_type, id, resource.into_map(), if_match).await
}

/// A conditional update: `condition` names the resource to update.
pub async fn update_conditional(
    cx: &Cx,
    condition: &Condition,
    resource: ValidResource,
    if_match: Option<VersionId>,
) -> Result<Written> {
    let services = &cx.services;
    let mut resource = resource.into_map();
    let resource_type = condition.resource_type;
    // Without a match this creates: held until written, as for a conditional create.
    let _guard = services
        .create_locks
        .acquire(services.store.as_ref(), [resource_type])
        .await?;
    let (id, if_match) = conditional_target(cx, condition, &resource, if_match).await?;
    // So that a body without an id still compares equal to an unchanged current version.
    resource.insert("id".to_owned(), Value::String(id.as_str().to_owned()));
    write_version(cx, resource_type, id, resource, if_match).await
}

/// The id a conditional update of `resource` writes, and the version it must find there: the
/// one match (whose id a body id must equal), or, without a match, the body's id or a new one.
pub async fn conditional_target(
    cx: &Cx,
    condition: &Condition,
    resource: &Map<String, Value>,
    if_match: Option<VersionId>,
) -> Result<(Id, Option<VersionId>)> {
    let resource_type = condition.resource_type;
    let body_id = match resource.get("id") {
        Some(Value::String(id)) => Some(Id::parse(id)?),
        _ => None,
    };
    match conditional::find_one(cx, condition, "a conditional update").await? {
        Some(matched) => {
            if body_id.as_ref().is_some_and(|id| id != &matched.id) {
                return Err(Error::invalid(format!(
                    "the resource's id '{}' is not that of the {resource_type} matching '{condition}' ('{}')",
                    body_id.as_ref().map(Id::as_str).unwrap_or_default(),
                    matched.id
                ))
                .at(format!("{resource_type}.id")));
            }
            // Guarded by the version matched, unless the client gave its own If-Match: a
            // resource changed meanwhile may no longer match.
            Ok((matched.id, if_match.or(Some(matched.current.version_id))))
        }
        None => Ok((body_id.unwrap_or_else(Id::generate), if_match)),
    }
}

/// Writes `resource` (whose `id` is `id`) as the next version of `resource_type/id`, or its
/// first; an update equal to the current version writes nothing (see the module comment).
pub async fn write_version(
    cx: &Cx,
    resource_type: ResourceType,
    id: Id,
    resource: Map<String, Value>,
    if_match: Option<VersionId>,
) -> Result<Written> {
    let services = &cx.services;
    if !services.update_always_versions
        && let Some(current) = unchanged_current(cx, resource_type, &id, &resource, if_match).await?
    {
        return Ok(current);
    }
    let definition = search_parameters::before_write(cx, resource_type, &resource)?;
    let (resource, index) = body::with_index_rows(&services.search_parameters.current(), &services.base_url, resource);
    let op = WriteOp::Update {
        resource_type,
        id,
        resource,
        index,
        if_match,
    };
    access::writes::check(cx, &op).await?;
    let written = services.store.write(op).await?;
    search_parameters::after_write(cx, resource_type, definition.as_ref()).await;
    Ok(written.expect("an update always writes a version"))
}

/// The current version, when an update of it to `resource` would change nothing
/// (`rules::unchanged`): the update then writes no version and answers with it.
pub async fn unchanged_current(
    cx: &Cx,
    resource_type: ResourceType,
    id: &Id,
    resource: &Map<String, Value>,
    if_match: Option<VersionId>,
) -> Result<Option<Written>> {
    let Some(current) = cx.services.store.read(resource_type, id.as_str()).await? else {
        return Ok(None);
    };
    if !rules::unchanged(&current, resource, if_match)? {
        return Ok(None);
    }
    // One the caller may not write (or see, by a patient's consent) is not answered with: the
    // write is refused instead.
    let disclosed = access::disclose::version(
        cx,
        resource_type,
        id.as_str(),
        current.version_id,
        current.content.clone(),
        Permission::Update,
        true,
    );
    // Nor is one the caller sees only in part (a Group without other patients): answering it
    // whole would confirm what was left out.
    match disclosed.await? {
        Some(access::disclose::Disclosed::Content(content)) if Some(&content) == current.content.as_ref() => {}
        _ => return Ok(None),
    }
    Ok(Some(Written::existing(resource_type, id.clone(), current)))
}
