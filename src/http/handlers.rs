//! One handler per route: extract, negotiate, call the interaction, shape the response.

use super::AppState;
use super::negotiate::{self, Format, Return};
use super::response::{json_body, set_version_headers, value_body};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::interactions::bundle_request::{self, BundleKind};
use crate::interactions::bundle_response::EntryReturn;
use crate::interactions::conditional::Condition;
use crate::interactions::history::{HistoryParams, HistoryTarget};
use crate::interactions::search::SearchScope;
use crate::interactions::{batch, create, delete, history, patch, read, search, transaction, update, vread};
use crate::model::{ResourceType, outcome};
use crate::patch::Patch;
use crate::store::{StoredVersion, Written};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_LOCATION, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

fn resource_type(name: &str) -> Result<ResourceType> {
    ResourceType::parse(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            IssueCode::NotSupported,
            format!("'{name}' is not a FHIR R4 resource type this server supports"),
        )
    })
}

/// The negotiated format and the query pairs, which every FHIR handler needs first.
fn prepare(headers: &HeaderMap, query: Option<String>) -> Result<(Format, Vec<(String, String)>)> {
    let pairs = negotiate::query_pairs(query.as_deref());
    let format = negotiate::response_format(headers, &pairs)?;
    Ok((format, pairs))
}

/// Reads the body, refusing it (413) past the configured limit and (415) when it is not JSON.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let body_format = negotiate::body_format(headers)?;
    let bytes = read_limited(state, headers, body).await?;
    match body_format {
        negotiate::BodyFormat::Json => Ok(bytes),
        // XML is a wire format only: it becomes JSON here and is handled as JSON from now on.
        negotiate::BodyFormat::Xml => {
            let text = std::str::from_utf8(&bytes).map_err(|_| Error::structure("the XML body is not UTF-8"))?;
            let resource = crate::xml::from_xml(text)?;
            Ok(Bytes::from(
                serde_json::to_vec(&resource).map_err(|e| Error::internal(e.to_string()))?,
            ))
        }
    }
}

/// The body's bytes, refused (413) past the configured limit.
async fn read_limited(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let too_large = || {
        Error::new(
            ErrorKind::PayloadTooLarge,
            IssueCode::TooLong,
            format!(
                "the request body is larger than the limit of {} bytes",
                state.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, state.max_body_bytes);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Error::invalid(format!("the request body could not be read: {e}"))),
    }
}

/// A PATCH body: a JSON Patch (`application/json-patch+json`), or a FHIRPath Patch
/// (`Parameters` in FHIR JSON or XML). Without a Content-Type, a JSON array is taken as a JSON
/// Patch and an object as a FHIRPath Patch.
async fn read_patch(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Patch> {
    let is_json_patch = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(crate::patch::JSON_PATCH_MEDIA_TYPE));
    if is_json_patch {
        let bytes = read_limited(state, headers, body).await?;
        return Patch::json_patch(&bytes);
    }
    let bytes = read_body(state, headers, body).await?;
    if headers.get(axum::http::header::CONTENT_TYPE).is_none() && bytes.trim_ascii_start().starts_with(b"[") {
        return Patch::json_patch(&bytes);
    }
    Patch::fhirpath_patch(&crate::interactions::body::parse_object(&bytes)?)
}

fn location(state: &AppState, written: &Written) -> String {
    format!(
        "{}/{}/{}/_history/{}",
        state.services.base_url, written.resource_type, written.id, written.version_id
    )
}

/// The response to a create or update, shaped by `Prefer: return=`.
fn write_response(state: &AppState, format: Format, prefer: Return, written: Written) -> Response {
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = match prefer {
        Return::Minimal => status.into_response(),
        Return::Representation => json_body(status, format, written.content.clone().unwrap_or_default()),
        Return::OperationOutcome => {
            let verb = if written.created { "created" } else { "updated" };
            let message = format!(
                "{}/{} {verb} as version {}",
                written.resource_type, written.id, written.version_id
            );
            value_body(status, format, &outcome::information(message))
        }
    };
    let header = if written.created { LOCATION } else { CONTENT_LOCATION };
    if let Ok(value) = HeaderValue::from_str(&location(state, &written)) {
        response.headers_mut().insert(header, value);
    }
    set_version_headers(&mut response, written.version_id, Some(written.last_updated));
    response
}

fn version_response(format: Format, stored: StoredVersion) -> Response {
    let mut response = json_body(StatusCode::OK, format, stored.content.unwrap_or_default());
    set_version_headers(&mut response, stored.version_id, Some(stored.last_updated));
    response
}

pub async fn health() -> &'static str {
    "ok"
}

pub async fn ready(State(state): State<AppState>) -> Result<&'static str> {
    state.services.store.ping().await?;
    Ok("ready")
}

pub async fn capabilities(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    Ok(json_body(
        StatusCode::OK,
        format,
        state.capability_statement.get(&state.services.search_parameters),
    ))
}

pub async fn read(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let stored = read::read(&state.services, resource_type, &id).await?;
    // If-None-Match decides alone when present (RFC 9110 §13.1.3); else If-Modified-Since.
    let unchanged = negotiate::if_none_match_hits(&headers, stored.version_id)
        .or_else(|| negotiate::not_modified_since(&headers, stored.last_updated))
        .unwrap_or(false);
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_version_headers(&mut response, stored.version_id, Some(stored.last_updated));
        return Ok(response);
    }
    Ok(version_response(format, stored))
}

pub async fn vread(
    State(state): State<AppState>,
    Path((type_name, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let stored = vread::vread(&state.services, resource_type, &id, &version).await?;
    Ok(version_response(format, stored))
}

pub async fn create(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let body = read_body(&state, &headers, body).await?;
    let if_none_exist = headers
        .get("if-none-exist")
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid("If-None-Exist is not a valid search (not ASCII)"))
        })
        .transpose()?;
    let written = create::create(&state.services, resource_type, &body, if_none_exist).await?;
    Ok(write_response(
        &state,
        format,
        negotiate::prefer_return(&headers),
        written,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let if_match = negotiate::if_match(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let written = update::update(&state.services, resource_type, &id, &body, if_match).await?;
    Ok(write_response(
        &state,
        format,
        negotiate::prefer_return(&headers),
        written,
    ))
}

pub async fn patch(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let if_match = negotiate::if_match(&headers)?;
    let document = read_patch(&state, &headers, body).await?;
    let written = patch::patch(&state.services, resource_type, &id, &document, if_match).await?;
    Ok(write_response(
        &state,
        format,
        negotiate::prefer_return(&headers),
        written,
    ))
}

/// `PATCH [type]?[search]`.
pub async fn patch_conditional(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query.clone())?;
    let resource_type = resource_type(&type_name)?;
    let condition = Condition::new(resource_type, query.as_deref().unwrap_or_default());
    let if_match = negotiate::if_match(&headers)?;
    let document = read_patch(&state, &headers, body).await?;
    let written = patch::patch_conditional(&state.services, &condition, &document, if_match).await?;
    Ok(write_response(
        &state,
        format,
        negotiate::prefer_return(&headers),
        written,
    ))
}

/// `POST [base]` with a transaction or batch Bundle.
pub async fn bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let body = read_body(&state, &headers, body).await?;
    let mut bundle = crate::interactions::body::parse_object(&body)?;
    let (kind, entries) = bundle_request::parse_bundle(&mut bundle, state.services.bundle_max_entries)?;
    let prefer = match negotiate::prefer_return(&headers) {
        Return::Minimal => EntryReturn::Minimal,
        Return::Representation => EntryReturn::Representation,
        Return::OperationOutcome => EntryReturn::OperationOutcome,
    };
    let response = match kind {
        BundleKind::Transaction => transaction::transaction(&state.services, entries, prefer).await?,
        BundleKind::Batch => batch::batch(&state.services, entries, prefer).await?,
    };
    Ok(json_body(StatusCode::OK, format, response))
}

/// `PUT [base]/[type]?[search]`: a conditional update.
pub async fn update_conditional(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query.clone())?;
    let condition = Condition::new(resource_type(&type_name)?, query.as_deref().unwrap_or_default());
    let if_match = negotiate::if_match(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let written = update::update_conditional(&state.services, &condition, &body, if_match).await?;
    Ok(write_response(
        &state,
        format,
        negotiate::prefer_return(&headers),
        written,
    ))
}

/// `DELETE [base]/[type]?[search]`: a conditional delete.
pub async fn delete_conditional(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query.clone())?;
    let condition = Condition::new(resource_type(&type_name)?, query.as_deref().unwrap_or_default());
    let written = delete::delete_conditional(&state.services, &condition).await?;
    let message = match written.as_slice() {
        [] => format!("nothing matches '{condition}'; nothing changed"),
        [w] => format!("{}/{} deleted as version {}", w.resource_type, w.id, w.version_id),
        all => format!("{} resources matching '{condition}' deleted", all.len()),
    };
    let only = match written.as_slice() {
        [w] => Some(w),
        _ => None,
    };
    Ok(delete_response(&headers, format, message, only))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let resource_type = resource_type(&type_name)?;
    let if_match = negotiate::if_match(&headers)?;
    let written = delete::delete(&state.services, resource_type, &id, if_match).await?;
    let message = match &written {
        Some(w) => format!("{resource_type}/{id} deleted as version {}", w.version_id),
        None => {
            format!("{resource_type}/{id} does not exist or is already deleted; nothing changed")
        }
    };
    Ok(delete_response(&headers, format, message, written.as_ref()))
}

/// The response to a delete: `204`, or `200` with `message` as an OperationOutcome when asked
/// for one; with the ETag of the tombstone when one version was written.
fn delete_response(headers: &HeaderMap, format: Format, message: String, written: Option<&Written>) -> Response {
    let mut response = match negotiate::prefer_return(headers) {
        Return::OperationOutcome => value_body(StatusCode::OK, format, &outcome::information(message)),
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    if let Some(w) = written {
        set_version_headers(&mut response, w.version_id, Some(w.last_updated));
    }
    response
}

async fn search_response(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<String>,
    form: Option<Bytes>,
    scope: SearchScope,
) -> Result<Response> {
    let (format, mut pairs) = prepare(headers, query)?;
    if let Some(form) = form {
        pairs.extend(form_urlencoded::parse(&form).into_owned());
    }
    let strict = negotiate::prefer_strict_handling(headers);
    let bundle = search::search(&state.services, &scope, &pairs, strict).await?;
    Ok(json_body(StatusCode::OK, format, bundle))
}

/// The body of `POST …/_search`: form parameters, searched as if they were in the query.
async fn read_search_form(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            IssueCode::NotSupported,
            format!("POST _search takes application/x-www-form-urlencoded parameters, not {content_type}"),
        ));
    }
    let limited = http_body_util::Limited::new(body, state.max_body_bytes);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(Error::invalid(format!("the request body could not be read: {e}"))),
    }
}

pub async fn search_type(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let scope = SearchScope::Type(resource_type(&type_name)?);
    search_response(&state, &headers, query, None, scope).await
}

pub async fn search_type_post(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let scope = SearchScope::Type(resource_type(&type_name)?);
    let form = read_search_form(&state, &headers, body).await?;
    search_response(&state, &headers, query, Some(form), scope).await
}

pub async fn search_system(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    search_response(&state, &headers, query, None, SearchScope::System).await
}

pub async fn search_system_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let form = read_search_form(&state, &headers, body).await?;
    search_response(&state, &headers, query, Some(form), SearchScope::System).await
}

pub async fn search_compartment(
    State(state): State<AppState>,
    Path((compartment, id, target)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let scope = SearchScope::Compartment {
        compartment: resource_type(&compartment)?,
        id,
        target: if target == "*" {
            None
        } else {
            Some(resource_type(&target)?)
        },
    };
    search_response(&state, &headers, query, None, scope).await
}

async fn history_response(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<String>,
    target: HistoryTarget<'_>,
) -> Result<Response> {
    let (format, pairs) = prepare(headers, query)?;
    let params = HistoryParams::parse(&pairs)?;
    let bundle = history::history(&state.services, target, &params).await?;
    Ok(json_body(StatusCode::OK, format, bundle))
}

pub async fn history_system(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    history_response(&state, &headers, query, HistoryTarget::System).await
}

pub async fn history_type(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let resource_type = resource_type(&type_name)?;
    history_response(&state, &headers, query, HistoryTarget::Type(resource_type)).await
}

pub async fn history_instance(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let resource_type = resource_type(&type_name)?;
    history_response(&state, &headers, query, HistoryTarget::Instance(resource_type, &id)).await
}

async fn validate_response(
    state: &AppState,
    type_name: &str,
    id: Option<&str>,
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
) -> Result<Response> {
    let (format, _) = prepare(headers, query)?;
    let resource_type = resource_type(type_name)?;
    let body = read_body(state, headers, body).await?;
    let outcome = crate::interactions::operation_validate::validate(&state.services, resource_type, id, &body).await?;
    Ok(value_body(StatusCode::OK, format, &outcome))
}

pub async fn validate_type(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    validate_response(&state, &type_name, None, &headers, query, body).await
}

pub async fn validate_instance(
    State(state): State<AppState>,
    Path((type_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    validate_response(&state, &type_name, Some(&id), &headers, query, body).await
}

/// `POST [base]/$reindex` and `POST [base]/[type]/$reindex`: `202` with the new job's status,
/// whose address (`GET [base]/$reindex`, which lists every job) is in `Content-Location`.
async fn reindex_start(
    state: &AppState,
    types: Vec<ResourceType>,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response> {
    let (format, _) = prepare(headers, query)?;
    let job = crate::interactions::operation_reindex::start(&state.services, types);
    let body = crate::interactions::operation_reindex::status_parameters(std::slice::from_ref(&job));
    let mut response = value_body(StatusCode::ACCEPTED, format, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/$reindex", state.services.base_url)) {
        response.headers_mut().insert(CONTENT_LOCATION, location);
    }
    Ok(response)
}

pub async fn reindex_system(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    reindex_start(&state, ResourceType::all().collect(), &headers, query).await
}

pub async fn reindex_type(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let resource_type = resource_type(&type_name)?;
    reindex_start(&state, vec![resource_type], &headers, query).await
}

/// `GET [base]/$reindex`: every re-index job of this server process, with its progress.
pub async fn reindex_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (format, _) = prepare(&headers, query)?;
    let jobs = state.services.reindex_jobs.list();
    let body = crate::interactions::operation_reindex::status_parameters(&jobs);
    Ok(value_body(StatusCode::OK, format, &body))
}
