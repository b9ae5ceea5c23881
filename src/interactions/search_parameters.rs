//! `SearchParameter` resources as search parameters of this server (search::custom holds the
//! registry). Stored ones are loaded at start-up. A `SearchParameter` the server could not search
//! by is refused with a 400 before it is stored; once one is written or deleted, the registry is
//! rebuilt from every stored definition and a re-index job brings the resources of the
//! parameter's base types up to date.

use super::{Cx, operation_reindex};
use crate::auth::SystemTask;
use crate::error::{Error, Result};
use crate::model::ResourceType;
use crate::search::custom::SearchParameters;
use crate::search::plan::Plan;
use crate::search::{Registry, compile, request};
use serde_json::{Map, Value};

/// Every stored `SearchParameter`, current versions, as JSON.
async fn stored_definitions(cx: &Cx) -> Result<Vec<Value>> {
    let store = cx.services.store.as_ref();
    let base_url = &cx.services.base_url;
    let mut definitions = Vec::new();
    let mut cursor: Option<String> = None;
    let page_size = 1000u32;
    loop {
        let mut query = vec![("_count".to_owned(), page_size.to_string())];
        if let Some(cursor) = &cursor {
            query.push(("_page_after".to_owned(), cursor.clone()));
        }
        let search = request::parse(
            Registry::r4(),
            Some(&["SearchParameter"]),
            &query,
            base_url,
            crate::search::limits::Limits {
                default_count: page_size,
                max_count: page_size,
                default_total_limit: 0,
                set_limit: crate::search::limits::SET_LIMIT,
            },
            true,
        )?;
        let mut rows = store
            .search(&compile::page_query(store.dialect(), &search, &Plan::sets())?)
            .await?;
        let more = rows.len() > page_size as usize;
        rows.truncate(page_size as usize);
        for row in &rows {
            definitions.push(
                serde_json::from_slice(&row.content)
                    .map_err(|e| Error::internal(format!("a stored SearchParameter does not parse: {e}")))?,
            );
        }
        match rows.last().and_then(|r| r.cursor.clone()) {
            Some(next) if more => cursor = Some(next),
            _ => return Ok(definitions),
        }
    }
}

/// The registry of the built-in parameters and every stored definition the server can search by;
/// one it cannot (stored before this check existed, or by another server version) is logged and
/// left out rather than keeping the server from starting. `cx` is the server's own
/// (`SystemTask::SearchParameterLoad`).
pub async fn load(cx: &Cx) -> Result<Registry> {
    let definitions = stored_definitions(cx).await?;
    let mut usable = Vec::new();
    for definition in definitions {
        let mut trial = usable.clone();
        trial.push(definition.clone());
        match SearchParameters::build(&trial) {
            Ok(_) => usable.push(definition),
            Err(why) => tracing::warn!(reason = %why, "stored SearchParameter left out"),
        }
    }
    let registry = SearchParameters::build(&usable).map_err(Error::internal)?;
    if registry.custom_count() > 0 {
        tracing::info!(count = registry.custom_count(), "custom search parameters loaded");
    }
    Ok(registry)
}

/// Refuses a `SearchParameter` this server could not search by (checked with the parameters in
/// force, which it would join).
pub fn check_definition(cx: &Cx, resource: &Map<String, Value>) -> Result<()> {
    if resource.get("status").and_then(Value::as_str) == Some("retired") {
        return Ok(());
    }
    cx.services
        .search_parameters
        .current()
        .with_custom(&[Value::Object(resource.clone())])
        .map(|_| ())
        .map_err(|why| {
            Error::invalid(format!("this server cannot search by this SearchParameter: {why}")).at("SearchParameter")
        })
}

/// Before writing `resource` of `resource_type`: a `SearchParameter` must be one the server can
/// search by. Answers the definition to hand to `after_write`.
pub fn before_write(
    cx: &Cx,
    resource_type: ResourceType,
    resource: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>> {
    if resource_type.as_str() != "SearchParameter" {
        return Ok(None);
    }
    check_definition(cx, resource)?;
    Ok(Some(resource.clone()))
}

/// After a write of `resource_type` (a `SearchParameter` written, `definition`, or deleted):
/// brings the registry up to date. The write has succeeded whatever happens here, so a failure
/// is logged rather than answered; the next change or a restart reloads the registry.
pub async fn after_write(cx: &Cx, resource_type: ResourceType, definition: Option<&Map<String, Value>>) {
    if resource_type.as_str() != "SearchParameter" {
        return;
    }
    if let Err(e) = changed(cx, definition).await {
        tracing::error!(error = %e, "search parameters not reloaded after a SearchParameter changed");
    }
}

/// After a `SearchParameter` was written (`resource`) or deleted (`None`): rebuild the registry
/// and re-index the base types of a written one.
async fn changed(cx: &Cx, resource: Option<&Map<String, Value>>) -> Result<()> {
    let registry = load(&cx.as_system(SystemTask::SearchParameterLoad)).await?;
    cx.services.search_parameters.replace(registry);
    let Some(resource) = resource else { return Ok(()) };
    let bases: Vec<&str> = resource
        .get("base")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let model = crate::model::structure::TypeModel::r4();
    let types: Vec<ResourceType> = model
        .resource_types()
        .filter(|t| bases.iter().any(|base| model.is_a(t, base)))
        .filter_map(ResourceType::parse)
        .collect();
    if !types.is_empty() {
        operation_reindex::start(&cx.services, types);
    }
    Ok(())
}
