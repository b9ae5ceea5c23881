//! The HTTP front door: an HTTP request under `/fhir/R4` as a typed `Request`. The URL is routed
//! by `interactions::route` (as a Bundle entry's `request.url` is); the body is read only when
//! the route takes one, refused past the size limit (413) and when it is neither FHIR JSON nor FHIR
//! XML (415), and XML becomes JSON here, so everything past this point works on JSON.

use super::negotiate;
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::interactions::body::{self, ValidResource};
use crate::interactions::request::{IfNoneMatch, ReadConditions, Request};
use crate::interactions::route::{Door, Route, Verb, route};
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
    route.into_request(&mut HttpDoor { headers, body })
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
        Route::Create(_)
        | Route::Update(..)
        | Route::UpdateConditional(_)
        | Route::Bundle
        | Route::Validate(..)
        | Route::ConsentEvaluate => BodyKind::Resource,
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

#[cfg(test)]
mod tests {
    //! The two front doors against each other: the same URL reaches the same typed request over
    //! HTTP and as a Bundle entry, for every interaction.

    use super::*;
    use crate::interactions::bundle_request::parse_entry;
    use axum::http::HeaderValue;
    use serde_json::json;

    /// One interaction: as an HTTP request (method, URL, headers, body) and as a Bundle entry.
    struct Case {
        method: &'static str,
        url: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Option<String>,
        entry: Value,
    }

    fn case(method: &'static str, url: &'static str) -> Case {
        Case {
            method,
            url,
            headers: Vec::new(),
            body: None,
            entry: json!({"request": {"method": method, "url": url}}),
        }
    }

    impl Case {
        fn header(mut self, name: &'static str, value: &str, entry_element: &str, entry_value: &str) -> Case {
            self.headers.push((name, value.to_owned()));
            self.entry["request"][entry_element] = json!(entry_value);
            self
        }

        /// The same resource as the HTTP body and the entry's resource.
        fn resource(mut self, resource: Value) -> Case {
            self.body = Some(resource.to_string());
            self.entry["resource"] = resource;
            self
        }

        /// An HTTP body with its Content-Type, and the entry's resource that stands for it.
        fn body(mut self, content_type: &str, body: &str, entry_resource: Value) -> Case {
            self.headers.push(("content-type", content_type.to_owned()));
            self.body = Some(body.to_owned());
            self.entry["resource"] = entry_resource;
            self
        }
    }

    async fn over_http(case: &Case) -> Result<Request> {
        let (path, query) = case.url.split_once('?').unwrap_or((case.url, ""));
        let mut headers = HeaderMap::new();
        for (name, value) in &case.headers {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let body = Body::from(case.body.clone().unwrap_or_default());
        let method = Method::from_bytes(case.method.as_bytes()).unwrap();
        request_of(&method, path, query, &headers, body, 1 << 20).await
    }

    fn patient(id: &str) -> Value {
        json!({"resourceType": "Patient", "id": id, "name": [{"family": "Chalmers"}]})
    }

    fn cases() -> Vec<Case> {
        let json_patch = r#"[{"op":"replace","path":"/active","value":false}]"#;
        let fhirpath_patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.active"},
            {"name": "value", "valueBoolean": false}]}]});
        let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6ZmFsc2V9XQ=="});
        vec![
            case("GET", "metadata"),
            case("GET", "Patient/p1"),
            case("GET", "Patient/p1").header("if-none-match", "W/\"2\"", "ifNoneMatch", "W/\"2\""),
            case("GET", "Patient/p1").header(
                "if-modified-since",
                "Wed, 21 Oct 2015 07:28:00 GMT",
                "ifModifiedSince",
                "2015-10-21T07:28:00Z",
            ),
            case("GET", "Patient/p1/_history/2"),
            case("POST", "Patient").resource(patient("ignored")),
            case("POST", "Patient").resource(patient("x")).header(
                "if-none-exist",
                "identifier=urn:x|1",
                "ifNoneExist",
                "identifier=urn:x|1",
            ),
            case("PUT", "Patient/p1").resource(patient("p1")),
            case("PUT", "Patient/p1")
                .resource(patient("p1"))
                .header("if-match", "W/\"3\"", "ifMatch", "W/\"3\""),
            case("PUT", "Patient?identifier=urn:x%7C1").resource(patient("p1")),
            case("PATCH", "Patient/p1").body("application/json-patch+json", json_patch, binary),
            case("PATCH", "Patient/p1").body(
                "application/fhir+json",
                &fhirpath_patch.to_string(),
                fhirpath_patch.clone(),
            ),
            case("PATCH", "Patient?name=chalmers")
                .body("application/fhir+json", &fhirpath_patch.to_string(), fhirpath_patch)
                .header("if-match", "W/\"1\"", "ifMatch", "W/\"1\""),
            case("DELETE", "Patient/p1"),
            case("DELETE", "Patient/p1").header("if-match", "W/\"2\"", "ifMatch", "W/\"2\""),
            case("DELETE", "Patient?identifier=urn:x%7C1"),
            case("GET", "Patient?name=chalmers&_count=2"),
            case("GET", "?_type=Patient,Observation&_lastUpdated=gt2020"),
            case("GET", "Patient/p1/Observation?code=1234-5"),
            case("GET", "Patient/p1/*"),
            case("GET", "_history?_count=2"),
            case("GET", "Patient/_history?_since=2020-01-01"),
            case("GET", "Patient/p1/_history"),
            case("POST", "Patient/$validate").resource(patient("p1")),
            case("POST", "Patient/p1/$validate").resource(patient("p1")),
            case("GET", "$reindex"),
            case("POST", "Consent/$evaluate").resource(json!({"resourceType": "Parameters",
                "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/p1"}}]})),
        ]
    }

    #[tokio::test]
    async fn the_same_url_is_the_same_request_over_http_and_in_a_bundle() {
        let cases = cases();
        for case in &cases {
            let http = over_http(case)
                .await
                .unwrap_or_else(|e| panic!("{} {} over HTTP: {e}", case.method, case.url));
            let entry = parse_entry(0, case.entry.clone())
                .unwrap_or_else(|e| panic!("{} {} as an entry: {e}", case.method, case.url));
            assert_eq!(http, entry.request, "{} {}", case.method, case.url);
        }
        // Every kind of request is in the table, but the Bundle itself (an entry cannot hold one)
        // and `$reindex` (refused in a Bundle).
        let mut kinds: Vec<String> = Vec::new();
        for case in &cases {
            let request = over_http(case).await.unwrap();
            let kind = format!("{request:?}");
            let kind = kind.split([' ', '(', '{']).next().unwrap().to_owned();
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "Capabilities",
                "ConsentEvaluate",
                "Create",
                "Delete",
                "DeleteConditional",
                "History",
                "Patch",
                "PatchConditional",
                "Read",
                "ReindexStatus",
                "Search",
                "Update",
                "UpdateConditional",
                "Validate",
                "Vread"
            ]
        );
    }

    #[tokio::test]
    async fn a_search_form_over_http_is_the_query_of_an_entry() {
        let form = Case {
            method: "POST",
            url: "Patient/_search?_count=1",
            headers: vec![("content-type", "application/x-www-form-urlencoded".to_owned())],
            body: Some("name=chalmers".to_owned()),
            entry: json!({"request": {"method": "GET", "url": "Patient?_count=1&name=chalmers"}}),
        };
        let entry = parse_entry(0, form.entry.clone()).unwrap();
        assert_eq!(over_http(&form).await.unwrap(), entry.request);
    }

    #[tokio::test]
    async fn unknown_types_and_methods_fail_alike_at_both_doors() {
        for (method, url, status) in [
            ("GET", "Nope/1", 404),
            ("POST", "Patient/p1", 405),
            ("GET", "Patient/1/a/b/c", 404),
        ] {
            let http = over_http(&case(method, url)).await.unwrap_err();
            let entry = parse_entry(0, case(method, url).entry).unwrap_err();
            assert_eq!(http.kind.http_status(), status, "{method} {url}");
            assert_eq!(entry.kind, http.kind, "{method} {url}");
        }
    }
}
