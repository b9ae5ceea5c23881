//! FHIR create interaction — https://hl7.org/fhir/R4/http.html#create
//!
//! `POST [base]/[type]`: the server assigns the id; an `id` or `meta.versionId` in the body is
//! ignored, as the spec says. The result is version 1.

use super::{Services, body, search_parameters};
use crate::error::Result;
use crate::model::{Id, ResourceType};
use crate::store::{WriteOp, Written};

pub async fn create(services: &Services, resource_type: ResourceType, body: &[u8]) -> Result<Written> {
    let resource = body::parse_valid_resource(body, resource_type)?;
    let definition = search_parameters::before_write(services, resource_type, &resource)?;
    let (resource, index) = body::with_index_rows(&services.search_parameters.current(), &services.base_url, resource);
    let op = WriteOp::Create {
        resource_type,
        id: Id::generate(),
        resource,
        index,
    };
    let written = services.store.write(op).await?;
    search_parameters::after_write(services, resource_type, definition.as_ref()).await;
    Ok(written.expect("a create always writes a version"))
}
