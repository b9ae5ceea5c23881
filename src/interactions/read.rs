//! FHIR read interaction — https://hl7.org/fhir/R4/http.html#read
//!
//! `GET [base]/[type]/[id]`: the current version; 404 when the resource never existed, 410 (with
//! the ETag of the deleting version) when its current version is a delete. With `If-None-Match`
//! or `If-Modified-Since` (http.html#cread), a client that has the current version gets
//! `304 Not Modified` instead.

use super::access::{
    self,
    disclose::{self, Disclosed},
};
use super::outcome::{Outcome, ResourceVersion};
use super::request::ReadConditions;
use super::{Cx, stored};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::model::ResourceType;

/// The current version of `resource_type/id`, which is never a delete.
pub async fn read(cx: &Cx, resource_type: ResourceType, id: &str) -> Result<ResourceVersion> {
    read_for(cx, resource_type, id, Permission::Read).await
}

/// The current version of `resource_type/id` for an interaction that needs `permission` on it (a
/// patch reads what it updates). One the caller may not see is not known, exactly as one that
/// never existed (`access::disclose`).
pub async fn read_for(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    permission: Permission,
) -> Result<ResourceVersion> {
    let not_known = || Error::not_found(format!("{resource_type}/{id} is not known"));
    // A type out of reach is refused before the store is asked, whatever it holds.
    if access::reach(cx, resource_type, permission).is_none() {
        return Err(access::forbidden(resource_type, permission));
    }
    let Some(mut version) = cx.services.store.read(resource_type, id).await? else {
        return Err(not_known());
    };
    match disclose::version(
        cx,
        resource_type,
        id,
        version.version_id,
        version.content.take(),
        permission,
        true,
    )
    .await?
    {
        Some(Disclosed::Hidden) => Err(not_known()),
        None => Err(Error::gone(
            format!("{resource_type}/{id} was deleted"),
            version.version_id,
        )),
        Some(Disclosed::Content(content)) => {
            version.content = Some(content);
            stored(resource_type, id, version)
        }
    }
}

/// A read, answered `NotModified` when `conditions` find the client's copy current.
pub async fn read_if_changed(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    conditions: &ReadConditions,
) -> Result<Outcome> {
    let version = read(cx, resource_type, id).await?;
    if conditions.unchanged(version.version_id, version.last_updated) {
        return Ok(Outcome::NotModified {
            version_id: version.version_id,
            last_updated: version.last_updated,
        });
    }
    Ok(Outcome::Version(version))
}
