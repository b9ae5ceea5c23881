//! The HTTP front door: an HTTP request under `/fhir/R4` as a typed `Request`. The URL is routed
//! by `interactions::route` (as a Bundle entry's `request.url` is); the body is read only when
//! the route takes one, refused past the size limit (413) and when it is neither FHIR JSON nor FHIR
//! XML (415), and XML becomes JSON here, so everything past this point works on JSON.

use super::negotiate;
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::interactions::body::{self, ValidResource};
use crate::interactions::request::{Door, IfNoneMatch, ReadConditions, Request};
use crate::interactions::route::{Route, Verb, route};
use crate::model::{Id, Instant, ResourceType, VersionId};
use crate::patch::Patch;
use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, IF_MODIFIED_SINCE, IF_NONE_MATCH};
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use serde_json::{Map, Value};

/// The typed request for `method` on `path` (below the FHIR base) with `query`, reading `body`
/// when the route takes one.
pub async fn request_of(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
    max_body_bytes: usize,
) -> Result<Request> {
    let verb = verb_of(method, path)?;
    let route = route(verb, path, query)?;
    let body = match body_kind(&route, headers) {
        BodyKind::None => Bytes::new(),
        BodyKind::Raw => read_limited(headers, body, max_body_bytes).await?,
        BodyKind::Form => read_form(headers, body, max_body_bytes).await?,
        BodyKind::Resource => read_resource_body(headers, body, max_body_bytes).await?,
    };
    Request::build(route, &mut HttpDoor { headers, body })
}

/// The verb of an HTTP method; one FHIR does not use is a `405`.
fn verb_of(method: &Method, path: &str) -> Result<Verb> {
    Verb::parse(method.as_str()).ok_or_else(|| {
        Error::new(
            ErrorKind::MethodNotAllowed,
            IssueCode::NotSupported,
            format!("{method} is not supported on [base]/{}", path.trim_start_matches('/')),
        )
    })
}

/// How a route's body is read.
enum BodyKind {
    None,
    /// The bytes as sent: a JSON Patch document.
    Raw,
    /// `application/x-www-form-urlencoded` search parameters.
    Form,
    /// A FHIR resource in JSON or XML, as JSON bytes.
    Resource,
}

fn body_kind(route: &Route, headers: &HeaderMap) -> BodyKind {
    match route {
        Route::Create(_) | Route::Update(..) | Route::UpdateConditional(_) | Route::Bundle | Route::Validate(..) => {
            BodyKind::Resource
        }
        Route::Patch(..) | Route::PatchConditional(_) if is_json_patch(headers) => BodyKind::Raw,
        Route::Patch(..) | Route::PatchConditional(_) => BodyKind::Resource,
        Route::Search { form: true, .. } => BodyKind::Form,
        _ => BodyKind::None,
    }
}

fn is_json_patch(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(crate::patch::JSON_PATCH_MEDIA_TYPE))
}

/// The body as JSON bytes: refused (415) when it is not FHIR JSON or XML; XML converted.
async fn read_resource_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let body_format = negotiate::body_format(headers)?;
    let bytes = read_limited(headers, body, limit).await?;
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

/// The body of `POST …/_search`: form parameters, searched as if they were in the query.
async fn read_form(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            IssueCode::NotSupported,
            format!("POST _search takes application/x-www-form-urlencoded parameters, not {content_type}"),
        ));
    }
    read_limited(headers, body, limit).await
}

/// The body's bytes, refused (413) past `limit`.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let too_large = || {
        Error::new(
            ErrorKind::PayloadTooLarge,
            IssueCode::TooLong,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limit);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Error::invalid(format!("the request body could not be read: {e}"))),
    }
}

/// What the headers and the body read for the route supply.
struct HttpDoor<'a> {
    headers: &'a HeaderMap,
    body: Bytes,
}

impl Door for HttpDoor<'_> {
    /// The body of an update must carry the URL's id (http.html#update); that of a create may
    /// carry any, which the server replaces.
    fn resource(&mut self, resource_type: ResourceType, url_id: Option<&str>) -> Result<ValidResource> {
        if let Some(id) = url_id {
            Id::parse(id).map_err(|e| e.at(format!("{resource_type}.id")))?;
        }
        let resource = body::parse_valid_resource(&self.body, resource_type)?;
        if let Some(id) = url_id {
            body::check_update_id(&resource, resource_type, id)?;
        }
        Ok(resource)
    }

    /// A JSON Patch (`application/json-patch+json`), or a FHIRPath Patch (`Parameters` in FHIR
    /// JSON or XML). Without a Content-Type, a JSON array is taken as a JSON Patch and an object
    /// as a FHIRPath Patch.
    fn patch(&mut self) -> Result<Patch> {
        if is_json_patch(self.headers)
            || (self.headers.get(CONTENT_TYPE).is_none() && self.body.trim_ascii_start().starts_with(b"["))
        {
            return Patch::json_patch(&self.body);
        }
        Patch::fhirpath_patch(&body::parse_object(&self.body)?)
    }

    fn body(&mut self) -> Result<Map<String, Value>> {
        body::parse_object(&self.body)
    }

    fn search_form(&mut self) -> Result<Vec<(String, String)>> {
        Ok(form_urlencoded::parse(&self.body).into_owned().collect())
    }

    fn if_match(&self) -> Result<Option<VersionId>> {
        negotiate::if_match(self.headers)
    }

    fn if_none_exist(&self) -> Result<Option<String>> {
        self.headers
            .get("if-none-exist")
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| Error::invalid("If-None-Exist is not a valid search (not ASCII)"))
            })
            .transpose()
    }

    /// `If-None-Match`, and `If-Modified-Since` (ignored when it is not an HTTP date).
    fn read_conditions(&self) -> Result<ReadConditions> {
        let text = |name| self.headers.get(name).map(|v| v.to_str().unwrap_or_default());
        Ok(ReadConditions {
            if_none_match: text(IF_NONE_MATCH).map(IfNoneMatch::parse),
            if_modified_since: text(IF_MODIFIED_SINCE).and_then(Instant::parse_http_date),
        })
    }

    fn strict_handling(&self) -> bool {
        negotiate::prefer_strict_handling(self.headers)
    }
}
