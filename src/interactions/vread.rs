//! FHIR vread interaction — https://hl7.org/fhir/R4/http.html#vread
//!
//! `GET [base]/[type]/[id]/_history/[vid]`: one version; 404 when there is no such version, 410
//! when that version is the delete itself.

use super::Services;
use crate::error::{Error, Result};
use crate::model::{ResourceType, VersionId};
use crate::store::StoredVersion;

pub async fn vread(
    services: &Services,
    resource_type: ResourceType,
    id: &str,
    version_id: &str,
) -> Result<StoredVersion> {
    let version: VersionId = match version_id.parse() {
        Ok(v) if v >= 1 => v,
        _ => {
            return Err(Error::not_found(format!(
                "'{version_id}' is not a version of {resource_type}/{id}: versions are 1, 2, 3 …"
            )));
        }
    };
    match services.store.vread(resource_type, id, version).await? {
        None => Err(Error::not_found(format!(
            "{resource_type}/{id} has no version {version}"
        ))),
        Some(stored) if stored.is_deleted() => Err(Error::gone(
            format!("version {version} of {resource_type}/{id} is its deletion"),
            stored.version_id,
        )),
        Some(stored) => Ok(stored),
    }
}
