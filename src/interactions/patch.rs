//! FHIR patch interaction — https://hl7.org/fhir/R4/http.html#patch
//!
//! `PATCH [base]/[type]/[id]` with a JSON Patch (`application/json-patch+json`) or a FHIRPath
//! Patch (a `Parameters` resource, as FHIR JSON or XML): the current version is read, patched
//! (`crate::patch`), checked like the body of an update, and written as the next version.
//! - A patch that cannot be applied (a `test` that fails, a path that finds nothing), or whose
//!   result is not a valid resource, is a `422`; a malformed patch document a `400`.
//! - A patch may not change `id` or `resourceType` (`422`).
//! - `If-Match` names the version the patch was written against (`412` otherwise). Without it the
//!   write is still guarded by the version that was patched; when another write lands in
//!   between, the patch is applied again to the newer version (a few times at most), since a
//!   patch describes a change rather than a whole resource.
//! - A patch that changes nothing writes no version (as an unchanged update).
//!
//! `PATCH [base]/[type]?[search]` patches the one match: none is a `404`, several a `412`.

use super::condition::Condition;
use super::conditional;
use super::{Cx, body, read, update};
use crate::auth::scope::Permission;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Id, ResourceType, VersionId};
use crate::patch::Patch;
use crate::store::Written;
use serde_json::{Map, Value};

/// How often a patch without `If-Match` is applied at most when other writes keep landing first.
/// Each lost attempt means another write won, so among `n` concurrent patches of one resource
/// each lands within `n` attempts.
const ATTEMPTS: usize = 10;

pub async fn patch(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    patch: &Patch,
    if_match: Option<VersionId>,
) -> Result<Written> {
    let id = Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
    let mut attempt = 1;
    loop {
        let (patched, patched_version) = patched_current(cx, resource_type, &id, patch, if_match).await?;
        let guard = if_match.or(Some(patched_version));
        match update::write_version(cx, resource_type, id.clone(), patched, guard).await {
            Err(e) if e.kind == ErrorKind::PreconditionFailed && if_match.is_none() && attempt < ATTEMPTS => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A conditional patch: `condition` names the one resource to patch.
pub async fn patch_conditional(
    cx: &Cx,
    condition: &Condition,
    patch_document: &Patch,
    if_match: Option<VersionId>,
) -> Result<Written> {
    match conditional::find_one(cx, condition, "a conditional patch").await? {
        Some(matched) => {
            patch(
                cx,
                condition.resource_type,
                matched.id.as_str(),
                patch_document,
                if_match,
            )
            .await
        }
        None => Err(Error::not_found(format!(
            "no {} matches '{condition}'",
            condition.resource_type
        ))),
    }
}

/// The current version of `resource_type/id` with `patch` applied and checked like the body of
/// an update, and the version it was applied to. `if_match`, when given, must be that version.
pub async fn patched_current(
    cx: &Cx,
    resource_type: ResourceType,
    id: &Id,
    patch: &Patch,
    if_match: Option<VersionId>,
) -> Result<(Map<String, Value>, VersionId)> {
    let current = read::read_for(cx, resource_type, id.as_str(), Permission::Update).await?;
    if let Some(expected) = if_match
        && expected != current.version_id
    {
        return Err(Error::precondition_failed(format!(
            "If-Match names version {expected} of {resource_type}/{id}, but the current version is {}",
            current.version_id
        )));
    }
    let content = current.content.as_deref().expect("read never returns a delete");
    let resource: Map<String, Value> = serde_json::from_slice(content)
        .map_err(|e| Error::internal(format!("stored {resource_type}/{id} is not a JSON object: {e}")))?;
    let patched = patch.apply(&resource)?;
    let as_unprocessable = |mut e: Error| {
        // The patch was well-formed; what it made of the resource breaks the rules.
        if e.kind == ErrorKind::Invalid {
            e.kind = ErrorKind::Unprocessable;
            for issue in &mut e.issues {
                issue.diagnostics = format!("the patched resource is not valid: {}", issue.diagnostics);
            }
        }
        e
    };
    let patched = body::valid_resource(patched, resource_type).map_err(as_unprocessable)?;
    Ok((patched.into_map(), current.version_id))
}
