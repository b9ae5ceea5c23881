//! FHIR read interaction — https://hl7.org/fhir/R4/http.html#read
//!
//! `GET [base]/[type]/[id]`: the current version; 404 when the resource never existed, 410 (with
//! the ETag of the deleting version) when its current version is a delete.

use super::Services;
use crate::error::{Error, Result};
use crate::model::ResourceType;
use crate::store::StoredVersion;

/// The current version of `resource_type/id`, which is never a delete.
pub async fn read(services: &Services, resource_type: ResourceType, id: &str) -> Result<StoredVersion> {
    match services.store.read(resource_type, id).await? {
        None => Err(Error::not_found(format!("{resource_type}/{id} is not known"))),
        Some(version) if version.is_deleted() => Err(Error::gone(
            format!("{resource_type}/{id} was deleted"),
            version.version_id,
        )),
        Some(version) => Ok(version),
    }
}
