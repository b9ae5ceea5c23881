//! An operation as an HTTP request: the method from its type (or `method`), the URL from `url`,
//! else `params`, else its target fixture, and the body from its source fixture, in the content
//! type it asks for.

use super::script::Operation;
use super::state::State;
use serde_json::Value;

pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The method an operation type implies (TestScript operation codes, R4).
fn default_method(kind: &str) -> &'static str {
    match kind {
        "create" | "batch" | "transaction" | "validate" | "process-message" | "evaluate-measure" => "POST",
        "update" | "updateCreate" => "PUT",
        "delete" | "deleteCondSingle" | "deleteCondMultiple" => "DELETE",
        "patch" => "PATCH",
        _ => "GET",
    }
}

pub fn build(operation: &Operation, state: &State) -> Result<Request, String> {
    let kind = operation.kind.as_deref().unwrap_or("");
    let method = match &operation.method {
        Some(method) => method.to_ascii_uppercase(),
        None if kind.is_empty() && operation.url.is_none() && operation.params.is_none() => {
            return Err("the operation has no type, method, url or params: nothing says what to send".to_owned());
        }
        None => default_method(kind).to_owned(),
    };
    let source = match &operation.source_id {
        Some(id) => Some(
            state
                .source(id)
                .ok_or_else(|| format!("sourceId '{id}' names no fixture or response with a body"))?,
        ),
        None => None,
    };
    let body = match source {
        Some(resource) => Some(state.substitute_resource(resource)?),
        None => None,
    };
    // The body's type names the URL only for what writes the body as a resource (a FHIRPath
    // Patch is a Parameters, a transaction a Bundle).
    let body_names_type = matches!(kind, "create" | "update" | "updateCreate" | "validate");
    let resource_type = operation.resource.clone().or_else(|| {
        body.as_ref()
            .filter(|_| body_names_type)
            .and_then(|b| b["resourceType"].as_str())
            .map(str::to_owned)
    });
    let path = url_path(operation, kind, resource_type.as_deref(), body.as_ref(), state)?;
    let base = state.base.trim_end_matches('/');
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path
    } else if path.starts_with('?') {
        format!("{base}{path}")
    } else {
        format!("{base}/{}", path.trim_start_matches('/'))
    };
    let url = if operation.encode_request_url {
        encode_query(&url)
    } else {
        url
    };
    let accept = operation
        .accept
        .clone()
        .unwrap_or_else(|| "application/fhir+json".to_owned());
    let mut headers = vec![("Accept".to_owned(), accept)];
    let content_type = operation
        .content_type
        .clone()
        .unwrap_or_else(|| "application/fhir+json".to_owned());
    let body = match body {
        Some(resource) => {
            headers.push(("Content-Type".to_owned(), content_type.clone()));
            Some(if content_type.contains("xml") {
                crate::xml::to_xml(&resource).map_err(|e| {
                    format!(
                        "the fixture cannot be written as XML: {}",
                        e.issues.first().map(|i| i.diagnostics.as_str()).unwrap_or("")
                    )
                })?
            } else {
                resource.to_string()
            })
        }
        None => None,
    };
    for (field, value) in &operation.headers {
        let value = state.substitute(value)?;
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(field));
        headers.push((field.clone(), value));
    }
    Ok(Request {
        method,
        url,
        headers,
        body,
    })
}

/// The URL after the base (or an absolute URL).
fn url_path(
    operation: &Operation,
    kind: &str,
    resource_type: Option<&str>,
    body: Option<&Value>,
    state: &State,
) -> Result<String, String> {
    if let Some(url) = &operation.url {
        return state.substitute(url);
    }
    let type_part = resource_type.unwrap_or("");
    if let Some(params) = &operation.params {
        let params = state.substitute(params)?;
        let joined = if params.starts_with('?') || params.starts_with('/') || type_part.is_empty() {
            format!("{type_part}{params}")
        } else {
            format!("{type_part}/{params}")
        };
        return Ok(joined);
    }
    if let Some(target) = &operation.target_id {
        let (target_type, id, version) = target_identity(target, state)?;
        return Ok(match kind {
            "vread" => format!(
                "{target_type}/{id}/_history/{}",
                version.ok_or_else(|| format!("targetId '{target}' has no version to read"))?
            ),
            "history" => format!("{target_type}/{id}/_history"),
            _ => format!("{target_type}/{id}"),
        });
    }
    // Nothing names the target: only what acts on a type (or the whole server) can go on; a
    // read or a delete guessed at the type would be a search, or a delete of everything.
    let needs_type = || {
        if type_part.is_empty() {
            Err(format!("a {kind} operation needs a resource type, a url or params"))
        } else {
            Ok(type_part.to_owned())
        }
    };
    Ok(match kind {
        "capabilities" => "metadata".to_owned(),
        "batch" | "transaction" => String::new(),
        "history" if type_part.is_empty() => "_history".to_owned(),
        "history" => format!("{type_part}/_history"),
        "search" if type_part.is_empty() => String::new(),
        "search" | "create" => needs_type()?,
        "validate" => format!("{}/$validate", needs_type()?),
        "update" | "updateCreate" => {
            let id = body
                .and_then(|b| b["id"].as_str())
                .ok_or_else(|| "an update needs a targetId, params, or a source fixture with an id".to_owned())?;
            format!("{}/{id}", needs_type()?)
        }
        other => {
            return Err(format!(
                "a {} operation needs a targetId, a url or params to say what it acts on",
                if other.is_empty() { "typeless" } else { other }
            ));
        }
    })
}

/// The type, id and version of what a `targetId` names: the resource of a response, or of what
/// an `autocreate` made of a fixture (the `Location` header when the body has none), or a
/// fixture as written.
fn target_identity(target: &str, state: &State) -> Result<(String, String, Option<String>), String> {
    if let Some(exchange) = state.responses.get(target).or_else(|| state.created.get(target)) {
        if let Some(resource) = &exchange.response_resource
            && let (Some(t), Some(id)) = (resource["resourceType"].as_str(), resource["id"].as_str())
            && t != "OperationOutcome"
        {
            // The version from the body, else from the ETag (`W/"3"`) a write answered with.
            let version = resource["meta"]["versionId"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| etag_version(exchange.response_header("etag")?));
            return Ok((t.to_owned(), id.to_owned(), version));
        }
        if let Some(location) = exchange
            .response_header("location")
            .or_else(|| exchange.response_header("content-location"))
        {
            let (t, id, version) = location_parts(location)
                .ok_or_else(|| format!("targetId '{target}': the Location '{location}' names no resource"))?;
            let version = version.or_else(|| etag_version(exchange.response_header("etag")?));
            return Ok((t, id, version));
        }
        return Err(format!("targetId '{target}': its response names no resource"));
    }
    let resource = state
        .fixtures
        .get(target)
        .ok_or_else(|| format!("targetId '{target}' names no fixture or response"))?;
    let resource = state.substitute_resource(resource)?;
    match (resource["resourceType"].as_str(), resource["id"].as_str()) {
        (Some(t), Some(id)) => Ok((
            t.to_owned(),
            id.to_owned(),
            resource["meta"]["versionId"].as_str().map(str::to_owned),
        )),
        _ => Err(format!("targetId '{target}': the fixture has no id")),
    }
}

/// The version an ETag names: `W/"3"` → `3`.
fn etag_version(etag: &str) -> Option<String> {
    let version = etag.trim().trim_start_matches("W/").trim_matches('"');
    (!version.is_empty()).then(|| version.to_owned())
}

/// `…/Type/id` or `…/Type/id/_history/v` of a Location header.
pub fn location_parts(location: &str) -> Option<(String, String, Option<String>)> {
    let path = location.split(['?', '#']).next()?;
    let parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').collect();
    let is_type = |t: &str| t.starts_with(|c: char| c.is_ascii_uppercase());
    match parts.as_slice() {
        [version, "_history", id, t, ..] if is_type(t) => {
            Some(((*t).to_owned(), (*id).to_owned(), Some((*version).to_owned())))
        }
        ["_history", id, t, ..] if is_type(t) => Some(((*t).to_owned(), (*id).to_owned(), None)),
        [id, t, ..] if is_type(t) && *id != "_history" => Some(((*t).to_owned(), (*id).to_owned(), None)),
        _ => None,
    }
}

/// Percent-encodes what a query may not carry as written (spaces, `|` stays readable to servers
/// but is encoded as browsers do), leaving the characters that shape it (`?&=,:/$`).
fn encode_query(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let mut encoded = String::with_capacity(query.len());
    let bytes = query.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        // `%` already starting an escape stays; `+` is encoded, since servers read it as a space
        // (`${CURRENTDATETIME}` ends in `+00:00`).
        let escape_start = byte == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            b'&' | b'=' | b',' | b':' | b'/' | b'$' | b'*' | b'(' | b')' | b'!' | b'\'' => encoded.push(byte as char),
            b'%' if escape_start => encoded.push('%'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    format!("{path}?{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_encoding() {
        assert_eq!(
            location_parts("http://x/fhir/Patient/p1/_history/2"),
            Some(("Patient".into(), "p1".into(), Some("2".into())))
        );
        assert_eq!(
            location_parts("Patient/p1"),
            Some(("Patient".into(), "p1".into(), None))
        );
        assert_eq!(
            encode_query("http://x/Patient?name=a b&identifier=s|1"),
            "http://x/Patient?name=a%20b&identifier=s%7C1"
        );
        assert_eq!(encode_query("http://x/Patient/1"), "http://x/Patient/1");
        assert_eq!(
            encode_query("http://x/O?date=ge2024-01-01T00:00:00+00:00"),
            "http://x/O?date=ge2024-01-01T00:00:00%2B00:00"
        );
        assert_eq!(encode_query("http://x/O?a=%7C&b=100%"), "http://x/O?a=%7C&b=100%25");
        assert_eq!(
            location_parts("http://x/fhir/Patient/p1/_history"),
            Some(("Patient".into(), "p1".into(), None))
        );
        assert_eq!(location_parts("http://x/fhir/"), None);
        assert_eq!(etag_version("W/\"3\"").as_deref(), Some("3"));
        assert_eq!(etag_version("\"12\"").as_deref(), Some("12"));
    }
}
