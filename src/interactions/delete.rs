//! FHIR delete interaction — https://hl7.org/fhir/R4/http.html#delete
//!
//! `DELETE [base]/[type]/[id]`: records a delete as a new version (a tombstone); later reads answer
//! 410 and history keeps every earlier version. Deleting what does not exist, or is already
//! deleted, succeeds and changes nothing.

use super::{Services, search_parameters};
use crate::error::Result;
use crate::model::{Id, ResourceType};
use crate::store::{WriteOp, Written};

/// The tombstone version written, or `None` when there was nothing to delete.
pub async fn delete(services: &Services, resource_type: ResourceType, id: &str) -> Result<Option<Written>> {
    let id = Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
    let written = services.store.write(WriteOp::Delete { resource_type, id }).await?;
    if written.is_some() {
        search_parameters::after_write(services, resource_type, None).await;
    }
    Ok(written)
}
