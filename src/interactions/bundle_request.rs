//! The entries of a transaction or batch Bundle as requests — R4 http.html#transaction and
//! bundle.html. Each entry is the second front door to the one request path: its `request.method`
//! and `request.url` are routed by `route::route`, as an HTTP request's are, and the rest of the
//! typed `Request` comes from the entry (its `resource`, `ifMatch`, `ifNoneExist`, …) through
//! `EntryDoor`. Resources are validated here, like the body of the same REST interaction, on every
//! core at once; the transaction and batch interactions act on the requests, never on the JSON.

use super::body::ValidResource;
use super::request::{BundleKind, IfNoneMatch, ReadConditions, Request};
use super::route::Door;
use super::route::{self, Route, Verb};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Instant, ResourceType, VersionId, parse_etag};
use crate::patch::Patch;
use serde_json::{Map, Value};

/// One entry of the Bundle, as a request.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    /// Position in `Bundle.entry`.
    pub index: usize,
    pub full_url: Option<String>,
    pub verb: Verb,
    /// `request.url` as given.
    pub url: String,
    pub request: Request,
}

impl EntryRequest {
    /// The error `e` as this entry's failure.
    pub fn fail(&self, e: Error) -> Error {
        e.in_entry(self.index, self.full_url.as_deref())
    }

    /// A HEAD entry is answered as its GET, without the body.
    pub fn is_head(&self) -> bool {
        self.verb == Verb::Head
    }
}

/// The Bundle's kind and its entries. Errors here concern the Bundle as a whole (not a Bundle,
/// the wrong type, too many entries); an entry's own problems come back per entry, since a batch
/// answers them one by one.
pub fn parse_bundle(
    bundle: &mut Map<String, Value>,
    max_entries: usize,
) -> Result<(BundleKind, Vec<Result<EntryRequest>>)> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Error::invalid("POST to the base takes a Bundle of type transaction or batch").at("resourceType"));
    }
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => BundleKind::Transaction,
        Some("batch") => BundleKind::Batch,
        Some(other) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                IssueCode::Value,
                format!("a Bundle of type '{other}' cannot be processed; POST a transaction or a batch"),
            )
            .at("Bundle.type"));
        }
        None => {
            return Err(
                Error::new(ErrorKind::Invalid, IssueCode::Required, "the Bundle has no type").at("Bundle.type"),
            );
        }
    };
    let entries = match bundle.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(Error::structure("Bundle.entry must be an array").at("Bundle.entry")),
    };
    if entries.len() > max_entries {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            IssueCode::TooLong,
            format!(
                "the Bundle has {} entries; this server takes at most {max_entries} per Bundle",
                entries.len()
            ),
        )
        .at("Bundle.entry"));
    }
    // Validating the resources is most of the work: spread over the cores.
    let numbered: Vec<(usize, Value)> = entries.into_iter().enumerate().collect();
    let parsed = super::parallel::map(numbered, |(index, entry)| parse_entry(index, entry));
    Ok((kind, parsed))
}

/// One entry as a request; its problems name it (`Bundle.entry[n]`, with its `fullUrl`).
pub fn parse_entry(index: usize, entry: Value) -> Result<EntryRequest> {
    let Value::Object(mut entry) = entry else {
        return Err(Error::structure("a Bundle entry must be an object").in_entry(index, None));
    };
    let full_url = entry.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
    let fail = |e: Error| e.in_entry(index, full_url.as_deref());
    let resource = entry.remove("resource");
    let request = match entry.get("request") {
        Some(Value::Object(request)) => request,
        _ => {
            return Err(fail(
                Error::new(
                    ErrorKind::Invalid,
                    IssueCode::Required,
                    "the entry has no request (method and url)",
                )
                .at("Bundle.entry.request"),
            ));
        }
    };
    let text = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
    let method_text = text("method").unwrap_or_default();
    let verb = Verb::parse(&method_text).ok_or_else(|| {
        fail(Error::new(
            ErrorKind::Invalid,
            IssueCode::Value,
            format!("request.method '{method_text}' is not one of GET, HEAD, POST, PUT, DELETE, PATCH"),
        ))
    })?;
    let url = text("url").filter(|u| !u.is_empty()).ok_or_else(|| {
        fail(Error::new(
            ErrorKind::Invalid,
            IssueCode::Required,
            "the entry's request has no url",
        ))
    })?;
    let if_match = match text("ifMatch") {
        None => None,
        Some(tag) => Some(parse_etag(&tag).ok_or_else(|| {
            fail(Error::invalid(format!(
                "request.ifMatch '{tag}' is not a version ETag such as W/\"3\""
            )))
        })?),
    };
    let if_modified_since = match text("ifModifiedSince") {
        None => None,
        Some(at) => Some(Instant::from_datetime(
            crate::model::InstantRange::parse(&at)
                .map_err(|_| {
                    fail(Error::invalid(format!(
                        "request.ifModifiedSince '{at}' is not a FHIR instant"
                    )))
                })?
                .start,
        )),
    };
    let mut door = EntryDoor {
        verb,
        resource,
        if_match,
        if_none_exist: text("ifNoneExist"),
        conditions: ReadConditions {
            if_none_match: text("ifNoneMatch").map(|tags| IfNoneMatch::parse(&tags)),
            if_modified_since,
        },
    };
    let request = route_entry(verb, &url)
        .and_then(|route| route.into_request(&mut door))
        .map_err(fail)?;
    Ok(EntryRequest {
        index,
        full_url,
        verb,
        url,
        request,
    })
}

/// `request.url` routed like the same URL over HTTP. An absolute URL is taken as relative to its
/// first segment that names a resource type, since a client may write our own base in front. A
/// Bundle inside a Bundle and `$reindex` are refused: they are not interactions on a resource.
fn route_entry(verb: Verb, url: &str) -> Result<Route> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let route = route::route(verb, strip_base(path), query)?;
    if matches!(route, Route::Bundle | Route::Reindex(_)) {
        return Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::NotSupported,
            format!("{} {url} is not supported inside a Bundle", verb.as_str()),
        ));
    }
    Ok(route)
}

/// The part of an absolute URL after its FHIR base: from the first segment that is a resource
/// type. A relative URL is returned as is.
fn strip_base(path: &str) -> &str {
    if !(path.starts_with("http://") || path.starts_with("https://")) {
        return path.trim_start_matches('/');
    }
    let mut offset = 0;
    for segment in path.split('/') {
        if ResourceType::parse(segment).is_some() {
            return &path[offset..];
        }
        offset += segment.len() + 1;
    }
    ""
}

/// What an entry supplies besides its URL: its `resource` and the elements of its `request`.
struct EntryDoor {
    verb: Verb,
    resource: Option<Value>,
    if_match: Option<VersionId>,
    if_none_exist: Option<String>,
    conditions: ReadConditions,
}

impl EntryDoor {
    /// The entry's resource, which the route needs.
    fn take_resource(&mut self) -> Result<Map<String, Value>> {
        match self.resource.take() {
            Some(Value::Object(resource)) => Ok(resource),
            Some(_) => Err(Error::structure("the entry's resource must be a JSON object")),
            None => Err(Error::new(
                ErrorKind::Invalid,
                IssueCode::Required,
                format!("a {} entry needs a resource", self.verb.as_str()),
            )),
        }
    }
}

impl Door for EntryDoor {
    /// In a Bundle the URL carries the id of an update, so a resource without one takes it; a
    /// different one is refused.
    fn resource(&mut self, resource_type: ResourceType, url_id: Option<&str>) -> Result<ValidResource> {
        let mut resource = self.take_resource()?;
        if let Some(id) = url_id {
            match resource.get("id") {
                None => {
                    resource.insert("id".to_owned(), Value::String(id.to_owned()));
                }
                Some(Value::String(body_id)) if body_id == id => {}
                Some(body_id) => {
                    return Err(Error::invalid(format!(
                        "the resource's id {body_id} does not match the id '{id}' in request.url"
                    ))
                    .at(format!("{resource_type}.id")));
                }
            }
        }
        super::body::valid_resource(resource, resource_type)
    }

    fn patch(&mut self) -> Result<Patch> {
        Patch::from_entry_resource(&self.take_resource()?)
    }

    fn body(&mut self) -> Result<Map<String, Value>> {
        self.take_resource()
    }

    /// An entry has no form body: `POST …/_search` in a Bundle searches by its URL's query.
    fn search_form(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    fn if_match(&self) -> Result<Option<VersionId>> {
        Ok(self.if_match)
    }

    fn if_none_exist(&self) -> Result<Option<String>> {
        Ok(self.if_none_exist.clone())
    }

    fn read_conditions(&self) -> Result<ReadConditions> {
        Ok(self.conditions.clone())
    }

    fn strict_handling(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn entry_urls_route_relative_and_absolute() {
        use super::super::request::SearchScope;
        let patient = ResourceType::parse("Patient").unwrap();
        assert_eq!(
            route_entry(Verb::Get, "Patient/1").unwrap(),
            Route::Read(patient, "1".into())
        );
        assert_eq!(
            route_entry(Verb::Get, "http://x/fhir/R4/Patient/1").unwrap(),
            Route::Read(patient, "1".into()),
            "our own base (or another) in front"
        );
        assert!(matches!(
            route_entry(Verb::Get, "?_type=Patient").unwrap(),
            Route::Search { scope: SearchScope::System, query, .. } if query == vec![("_type".to_owned(), "Patient".to_owned())]
        ));
        assert!(route_entry(Verb::Get, "Nope/1").is_err());
        for refused in [(Verb::Post, "/"), (Verb::Post, "Patient/$reindex")] {
            let e = route_entry(refused.0, refused.1).unwrap_err();
            assert_eq!(e.issues[0].code, IssueCode::NotSupported, "{refused:?}");
        }
    }

    #[test]
    fn entry_problems_name_the_entry() {
        let mut b = bundle(json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:2", "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "a"}, "request": {"method": "PUT", "url": "Patient/b"}},
            {"request": {"method": "FETCH", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": "Patient/1"}, "fullUrl": "x"},
            {"resource": {"resourceType": "Patient", "birthDate": "1 May"}, "request": {"method": "POST", "url": "Patient"}}
        ]}));
        let (kind, entries) = parse_bundle(&mut b, 100).unwrap();
        assert_eq!(kind, BundleKind::Batch);
        assert!(entries[0].is_ok());
        let e = entries[1].as_ref().unwrap_err();
        assert!(e.issues[0].diagnostics.starts_with("Bundle.entry[1] (urn:uuid:2): "));
        let e = entries[2].as_ref().unwrap_err();
        assert_eq!(e.issues[0].expression.as_deref(), Some("Bundle.entry[2].resource.id"));
        assert!(entries[3].is_err());
        assert!(entries[4].is_ok());
        let e = entries[5].as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(
            e.issues[0]
                .expression
                .as_deref()
                .unwrap()
                .starts_with("Bundle.entry[5].resource.birthDate")
        );
    }

    #[test]
    fn refuses_what_is_not_a_transaction_or_batch_and_too_many_entries() {
        let mut b = bundle(json!({"resourceType": "Bundle", "type": "collection"}));
        assert_eq!(parse_bundle(&mut b, 10).unwrap_err().kind, ErrorKind::Invalid);
        let mut b = bundle(json!({"resourceType": "Patient"}));
        assert!(parse_bundle(&mut b, 10).is_err());
        let mut b = bundle(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": "Patient"}}, {"request": {"method": "GET", "url": "Patient"}}
        ]}));
        assert_eq!(parse_bundle(&mut b, 1).unwrap_err().kind, ErrorKind::PayloadTooLarge);
    }
}
