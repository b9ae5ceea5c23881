//! FHIR create interaction — https://hl7.org/fhir/R4/http.html#create and #ccreate
//!
//! `POST [base]/[type]`: the server assigns the id; an `id` or `meta.versionId` in the body is
//! ignored, as the spec says. The result is version 1.
//!
//! With `If-None-Exist: [search]` the create is conditional: when the search matches one
//! resource nothing is written and that resource is the answer (`200`); several matches are a
//! `412`; no match creates.

use super::body::ValidResource;
use super::condition::Condition;
use super::conditional;
use super::{Cx, access, body, search_parameters};
use crate::error::Result;
use crate::model::{Id, ResourceType};
use crate::store::{WriteOp, Written};

pub async fn create(
    cx: &Cx,
    resource_type: ResourceType,
    resource: ValidResource,
    if_none_exist: Option<&Condition>,
) -> Result<Written> {
    let services = &cx.services;
    // Held until the create is written, so a racing conditional create of the type finds it.
    let mut _guard = None;
    if let Some(condition) = if_none_exist {
        _guard = Some(
            services
                .create_locks
                .acquire(services.store.as_ref(), [resource_type])
                .await?,
        );
        if let Some(existing) = conditional::find_one(cx, condition, "a conditional create").await? {
            let existing = conditional::disclosed(cx, resource_type, existing).await?;
            return Ok(Written::existing(resource_type, existing.id, existing.current));
        }
    }
    let resource = resource.into_map();
    let definition = search_parameters::before_write(cx, resource_type, &resource)?;
    let (resource, index) = body::with_index_rows(&services.search_parameters.current(), &services.base_url, resource);
    let op = WriteOp::Create {
        resource_type,
        id: Id::generate(),
        resource,
        index,
    };
    access::writes::check(cx, &op).await?;
    let written = services.store.write(op).await?;
    search_parameters::after_write(cx, resource_type, definition.as_ref()).await;
    Ok(written.expect("a create always writes a version"))
}
