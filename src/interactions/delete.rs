//! FHIR delete interaction — https://hl7.org/fhir/R4/http.html#delete and #cdelete
//!
//! `DELETE [base]/[type]/[id]`: records a delete as a new version (a tombstone); later reads answer
//! 410 and history keeps every earlier version. Deleting what does not exist, or is already
//! deleted, succeeds and changes nothing.
//!
//! `DELETE [base]/[type]?[search]` deletes the one resource the search matches (none: nothing
//! changes). Several matches are a `412`, unless the server runs with
//! `--conditional-delete-multiple`: then all of them are deleted together, in one transaction, up
//! to the largest search page (`--search-max-count`); more than that is a `412` too.

use super::access::writes::Allowed;
use super::condition::Condition;
use super::conditional;
use super::{Cx, access, search_parameters};
use crate::error::Result;
use crate::model::{Id, ResourceType, VersionId};
use crate::store::{WriteOp, Written};

/// The tombstone version written, or `None` when there was nothing to delete.
pub async fn delete(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    if_match: Option<VersionId>,
) -> Result<Option<Written>> {
    let id = Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
    let op = WriteOp::Delete {
        resource_type,
        id,
        if_match,
    };
    if access::writes::check(cx, &op).await? == Allowed::Nothing {
        return Ok(None);
    }
    let written = cx.services.store.write(op).await?;
    if written.is_some() {
        search_parameters::after_write(cx, resource_type, None).await;
    }
    Ok(written)
}

/// The tombstone versions written by a conditional delete (none when nothing matched).
pub async fn delete_conditional(cx: &Cx, condition: &Condition) -> Result<Vec<Written>> {
    let resource_type = condition.resource_type;
    let matched = conditional::find_for_delete(cx, condition).await?;
    // Each delete is guarded by the version matched, so a resource changed meanwhile (which may
    // no longer match) fails the delete rather than being removed.
    let mut ops = Vec::with_capacity(matched.len());
    for m in matched {
        let op = WriteOp::Delete {
            resource_type,
            id: m.id,
            if_match: Some(m.current.version_id),
        };
        if access::writes::check(cx, &op).await? == Allowed::Write {
            ops.push(op);
        }
    }
    let written = cx.services.store.write_all(ops).await.map_err(|e| e.error)?;
    let written: Vec<Written> = written.into_iter().flatten().collect();
    if !written.is_empty() {
        search_parameters::after_write(cx, resource_type, None).await;
    }
    Ok(written)
}
