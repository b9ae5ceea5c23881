//! FHIR update interaction — https://hl7.org/fhir/R4/http.html#update
//!
//! `PUT [base]/[type]/[id]`: a new version; creates the resource with the client's id when it does
//! not exist (update-as-create) and revives it when deleted. The body's `id` must equal the URL's.
//! With `If-Match: W/"n"` the update happens only when `n` is the current version (else 412).

use super::{Services, body, search_parameters};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Id, ResourceType, VersionId};
use crate::store::{WriteOp, Written};
use serde_json::Value;

pub async fn update(
    services: &Services,
    resource_type: ResourceType,
    id: &str,
    body: &[u8],
    if_match: Option<VersionId>,
) -> Result<Written> {
    let id = Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
    let resource = body::parse_valid_resource(body, resource_type)?;
    match resource.get("id") {
        Some(Value::String(body_id)) if body_id == id.as_str() => {}
        Some(Value::String(body_id)) => {
            return Err(Error::invalid(format!(
                "the resource's id '{body_id}' does not match the id '{id}' in the URL"
            ))
            .at(format!("{resource_type}.id")));
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Invalid,
                IssueCode::Required,
                format!("an update must carry the resource's id ('{id}') in the body"),
            )
            .at(format!("{resource_type}.id")));
        }
    }
    let definition = search_parameters::before_write(services, resource_type, &resource)?;
    let (resource, index) = body::with_index_rows(&services.search_parameters.current(), &services.base_url, resource);
    let op = WriteOp::Update {
        resource_type,
        id,
        resource,
        index,
        if_match,
    };
    let written = services.store.write(op).await?;
    search_parameters::after_write(services, resource_type, definition.as_ref()).await;
    Ok(written.expect("an update always writes a version"))
}
