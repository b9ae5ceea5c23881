//! Writes checked against what the caller may reach, just before they go to the store (a single
//! write, or every write of a transaction before any is made): the resource must be within reach
//! before the write (the current version) and after it (the new one), so no write moves a resource
//! into or out of a compartment the caller does not hold. An update that creates needs `c` too.

use super::{Reach, forbidden, is_restricted, reach};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::interactions::Cx;
use crate::model::ResourceType;
use crate::search::IndexRow;
use crate::search::compartments;
use crate::store::WriteOp;

/// What becomes of a write the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Made as asked.
    Write,
    /// A delete of a resource the caller may not see: nothing is written, and the answer is that
    /// of a delete of a resource that does not exist.
    Nothing,
}

/// Whether the caller of `cx` may make `op`: a `403` when not (a delete out of reach is
/// `Allowed::Nothing`, as if there were nothing to delete).
pub async fn check(cx: &Cx, op: &WriteOp) -> Result<Allowed> {
    if !is_restricted(cx) {
        return Ok(Allowed::Write);
    }
    match op {
        WriteOp::Create {
            resource_type,
            id,
            index,
            ..
        } => {
            let reach = required(cx, *resource_type, Permission::Create)?;
            after(&reach, *resource_type, id.as_str(), index)?;
        }
        WriteOp::Update {
            resource_type,
            id,
            index,
            ..
        } => {
            let reach = required(cx, *resource_type, Permission::Update)?;
            let current = cx.services.store.read(*resource_type, id.as_str()).await?;
            match current.and_then(|v| v.content) {
                Some(content) => {
                    if !within(cx, &reach, *resource_type, id.as_str(), &content)? {
                        return Err(out_of_reach(*resource_type));
                    }
                }
                None => {
                    // Update as create (or revival): a create too.
                    let create = required(cx, *resource_type, Permission::Create)?;
                    after(&create, *resource_type, id.as_str(), index)?;
                }
            }
            after(&reach, *resource_type, id.as_str(), index)?;
        }
        WriteOp::Delete { resource_type, id, .. } => {
            let reach = required(cx, *resource_type, Permission::Delete)?;
            if let Some(content) = cx
                .services
                .store
                .read(*resource_type, id.as_str())
                .await?
                .and_then(|v| v.content)
                && !within(cx, &reach, *resource_type, id.as_str(), &content)?
            {
                return Ok(Allowed::Nothing);
            }
        }
        WriteOp::Reindex { .. } => {
            return Err(Error::forbidden("re-indexing is the server's own work"));
        }
    }
    Ok(Allowed::Write)
}

fn required(cx: &Cx, resource_type: ResourceType, permission: Permission) -> Result<Reach> {
    match reach(cx, resource_type, permission) {
        Reach::None => Err(forbidden(resource_type, permission)),
        reach => Ok(reach),
    }
}

fn out_of_reach(resource_type: ResourceType) -> Error {
    Error::forbidden(format!(
        "the access token does not grant writing this {resource_type}: it would be outside the patient \
         compartment the token is limited to"
    ))
}

/// A `403` unless the new version, with index rows `index`, is within `reach`.
fn after(reach: &Reach, resource_type: ResourceType, id: &str, index: &[IndexRow]) -> Result<()> {
    let Reach::Some(rules) = reach else {
        return Ok(());
    };
    let owners = compartments::patient_owners(resource_type.as_str(), id, index);
    let admitted = rules.iter().any(|rule| match &rule.patient {
        Some(patient) => (resource_type.as_str() == "Patient" && id == patient) || owners.contains(patient),
        None => true,
    });
    if admitted {
        Ok(())
    } else {
        Err(out_of_reach(resource_type))
    }
}

/// Whether the stored `content` of `resource_type/id` is within `reach`.
fn within(cx: &Cx, reach: &Reach, resource_type: ResourceType, id: &str, content: &[u8]) -> Result<bool> {
    let Reach::Some(rules) = reach else {
        return Ok(true);
    };
    let resource: serde_json::Value =
        serde_json::from_slice(content).map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))?;
    let owners = compartments::patient_owners_of(&cx.services.base_url, resource_type.as_str(), id, &resource);
    Ok(rules.iter().any(|rule| match &rule.patient {
        Some(patient) => (resource_type.as_str() == "Patient" && id == patient) || owners.contains(patient),
        None => true,
    }))
}
