//! FHIR vread interaction — https://hl7.org/fhir/R4/http.html#vread
//!
//! `GET [base]/[type]/[id]/_history/[vid]`: one version; 404 when there is no such version, 410
//! when that version is the delete itself.

use super::access::disclose::{self, Disclosed};
use super::outcome::ResourceVersion;
use super::{Cx, stored};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::model::{ResourceType, VersionId};

pub async fn vread(cx: &Cx, resource_type: ResourceType, id: &str, version_id: &str) -> Result<ResourceVersion> {
    let version: VersionId = match version_id.parse() {
        Ok(v) if v >= 1 => v,
        _ => {
            return Err(Error::not_found(format!(
                "'{version_id}' is not a version of {resource_type}/{id}: versions are 1, 2, 3 …"
            )));
        }
    };
    let no_version = || Error::not_found(format!("{resource_type}/{id} has no version {version}"));
    let Some(mut found) = cx.services.store.vread(resource_type, id, version).await? else {
        return Err(no_version());
    };
    // Granular scopes admit current versions only; this one may be past.
    match disclose::version(
        cx,
        resource_type,
        id,
        found.version_id,
        found.content.take(),
        Permission::Read,
        false,
    )
    .await?
    {
        Some(Disclosed::Hidden) => Err(no_version()),
        None => Err(Error::gone(
            format!("version {version} of {resource_type}/{id} is its deletion"),
            found.version_id,
        )),
        Some(Disclosed::Content(content)) => {
            found.content = Some(content);
            stored(resource_type, id, found)
        }
    }
}
