//! The entries of a transaction or batch Bundle as requests — R4 http.html#transaction and
//! bundle.html: each entry's `request` (method, url, `ifMatch`, `ifNoneExist`, …) parsed and
//! checked, with its resource validated like the body of the same REST interaction. The
//! transaction and batch interactions act on these; neither re-reads the JSON.

use super::conditional::Condition;
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{Instant, ResourceType, VersionId, parse_etag};
use crate::patch::Patch;
use serde_json::{Map, Value};

/// The HTTP verb of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryMethod {
    Delete,
    Post,
    Put,
    Patch,
    Get,
    Head,
}

impl EntryMethod {
    fn parse(text: &str) -> Option<EntryMethod> {
        Some(match text {
            "GET" => EntryMethod::Get,
            "HEAD" => EntryMethod::Head,
            "POST" => EntryMethod::Post,
            "PUT" => EntryMethod::Put,
            "DELETE" => EntryMethod::Delete,
            "PATCH" => EntryMethod::Patch,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryMethod::Get => "GET",
            EntryMethod::Head => "HEAD",
            EntryMethod::Post => "POST",
            EntryMethod::Put => "PUT",
            EntryMethod::Delete => "DELETE",
            EntryMethod::Patch => "PATCH",
        }
    }

    /// The order a transaction processes entries in (http.html#trules): deletes, then creates,
    /// then updates and patches, then reads.
    pub fn processing_rank(self) -> u8 {
        match self {
            EntryMethod::Delete => 0,
            EntryMethod::Post => 1,
            EntryMethod::Put | EntryMethod::Patch => 2,
            EntryMethod::Get | EntryMethod::Head => 3,
        }
    }

    pub fn is_read(self) -> bool {
        matches!(self, EntryMethod::Get | EntryMethod::Head)
    }
}

/// What an entry's `request.url` names, relative to the server base.
#[derive(Debug, Clone)]
pub enum Target {
    /// `Patient` (a create, or a search with an empty query).
    Type(ResourceType),
    /// `Patient?identifier=…`: a search, or the condition of a conditional update or delete.
    Conditional(Condition),
    /// `Patient/123`.
    Instance(ResourceType, String),
    /// `Patient/123/_history/2`.
    Version(ResourceType, String, String),
    /// `?_type=…` or the base itself: a system search.
    System(String),
    /// `_history`, `Patient/_history`, `Patient/123/_history`, with the query.
    History {
        resource_type: Option<ResourceType>,
        id: Option<String>,
        query: String,
    },
    /// `Patient/123/Observation` or `Patient/123/*`: a compartment search, with the query.
    Compartment {
        compartment: ResourceType,
        id: String,
        target: Option<ResourceType>,
        query: String,
    },
}

/// One entry of the Bundle, as a request.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    /// Position in `Bundle.entry`.
    pub index: usize,
    pub full_url: Option<String>,
    pub method: EntryMethod,
    /// `request.url` as given.
    pub url: String,
    pub target: Target,
    /// For POST and PUT: the resource, validated. For PATCH, once a transaction has applied the
    /// patch: the patched resource.
    pub resource: Option<Map<String, Value>>,
    /// For PATCH: the patch (the entry's `Parameters` or `Binary`).
    pub patch: Option<Patch>,
    pub if_match: Option<VersionId>,
    pub if_none_exist: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<Instant>,
}

impl EntryRequest {
    /// The error `e` as this entry's failure.
    pub fn fail(&self, e: Error) -> Error {
        e.in_entry(self.index, self.full_url.as_deref())
    }
}

/// Whether a Bundle is a transaction or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Transaction,
    Batch,
}

impl BundleKind {
    pub fn response_type(self) -> &'static str {
        match self {
            BundleKind::Transaction => "transaction-response",
            BundleKind::Batch => "batch-response",
        }
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

fn parse_entry(index: usize, entry: Value) -> Result<EntryRequest> {
    let Value::Object(mut entry) = entry else {
        return Err(Error::structure("a Bundle entry must be an object").in_entry(index, None));
    };
    let full_url = entry.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
    let fail = |e: Error| e.in_entry(index, full_url.as_deref());
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
    let method = EntryMethod::parse(&method_text).ok_or_else(|| {
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
    let target = parse_target(&url).map_err(fail)?;
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
    let if_none_exist = text("ifNoneExist");
    let if_none_match = text("ifNoneMatch");
    let resource = match (method, entry.remove("resource")) {
        (EntryMethod::Post | EntryMethod::Put | EntryMethod::Patch, Some(Value::Object(resource))) => Some(resource),
        (EntryMethod::Post | EntryMethod::Put | EntryMethod::Patch, Some(_)) => {
            return Err(fail(Error::structure("the entry's resource must be a JSON object")));
        }
        (EntryMethod::Post | EntryMethod::Put | EntryMethod::Patch, None) => {
            return Err(fail(Error::new(
                ErrorKind::Invalid,
                IssueCode::Required,
                format!("a {method_text} entry needs a resource"),
            )));
        }
        (_, other) => other.and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        }),
    };
    let parsed = EntryRequest {
        index,
        full_url,
        method,
        url,
        target,
        resource,
        patch: None,
        if_match,
        if_none_exist,
        if_none_match,
        if_modified_since,
    };
    check_entry(parsed)
}

/// `request.url` relative to the base: `Patient`, `Patient/1`, `Patient?…`, `Patient/1/_history/2`.
/// An absolute URL is taken as relative to its last two or four segments, since a client may
/// write our own base in front.
fn parse_target(url: &str) -> Result<Target> {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let path = strip_base(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let type_of = |name: &str| {
        ResourceType::parse(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                IssueCode::NotSupported,
                format!("request.url '{url}': '{name}' is not a FHIR R4 resource type"),
            )
        })
    };
    let query_text = query.unwrap_or_default().to_owned();
    match (segments.as_slice(), query) {
        ([], query) => Ok(Target::System(query.unwrap_or_default().to_owned())),
        (["_history"], _) => Ok(Target::History {
            resource_type: None,
            id: None,
            query: query_text,
        }),
        ([t, "_history"], _) => Ok(Target::History {
            resource_type: Some(type_of(t)?),
            id: None,
            query: query_text,
        }),
        ([t, id, "_history"], _) => Ok(Target::History {
            resource_type: Some(type_of(t)?),
            id: Some((*id).to_owned()),
            query: query_text,
        }),
        ([t], Some(query)) => Ok(Target::Conditional(Condition::new(type_of(t)?, query))),
        ([t], None) => Ok(Target::Type(type_of(t)?)),
        ([t, id], _) => Ok(Target::Instance(type_of(t)?, (*id).to_owned())),
        ([t, id, "_history", version], _) => Ok(Target::Version(type_of(t)?, (*id).to_owned(), (*version).to_owned())),
        ([t, id, target], _) => Ok(Target::Compartment {
            compartment: type_of(t)?,
            id: (*id).to_owned(),
            target: if *target == "*" { None } else { Some(type_of(target)?) },
            query: query_text,
        }),
        _ => Err(Error::new(
            ErrorKind::Invalid,
            IssueCode::NotSupported,
            format!(
                "request.url '{url}' is not a form this server processes in a Bundle ([type], [type]/[id], [type]?[query], [type]/[id]/_history/[vid], _history, [type]/[id]/[type])"
            ),
        )),
    }
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

/// The checks that need method, target and resource together.
fn check_entry(mut entry: EntryRequest) -> Result<EntryRequest> {
    let fail = |e: Error| e.in_entry(entry.index, entry.full_url.as_deref());
    match (entry.method, &entry.target) {
        (EntryMethod::Post, Target::Type(resource_type))
        | (EntryMethod::Put, Target::Conditional(Condition { resource_type, .. })) => {
            let resource_type = *resource_type;
            let resource = entry.resource.take().unwrap_or_default();
            entry.resource = Some(super::body::valid_resource(resource, resource_type).map_err(fail)?);
        }
        (EntryMethod::Put, Target::Instance(resource_type, id)) => {
            let resource_type = *resource_type;
            let mut resource = entry.resource.take().unwrap_or_default();
            match resource.get("id") {
                None => {
                    resource.insert("id".to_owned(), Value::String(id.clone()));
                }
                Some(Value::String(body_id)) if body_id == id => {}
                Some(body_id) => {
                    return Err(fail(
                        Error::invalid(format!(
                            "the resource's id {body_id} does not match the id '{id}' in request.url"
                        ))
                        .at(format!("{resource_type}.id")),
                    ));
                }
            }
            entry.resource = Some(super::body::valid_resource(resource, resource_type).map_err(fail)?);
        }
        (EntryMethod::Delete, Target::Instance(..) | Target::Conditional(_)) => {}
        (EntryMethod::Get | EntryMethod::Head, _) => {}
        (EntryMethod::Patch, Target::Instance(..) | Target::Conditional(_)) => {
            let document = entry.resource.take().unwrap_or_default();
            entry.patch = Some(Patch::from_entry_resource(&document).map_err(fail)?);
        }
        (method, _) => {
            return Err(fail(Error::new(
                ErrorKind::Invalid,
                IssueCode::NotSupported,
                format!(
                    "{} is not an interaction on request.url '{}'",
                    method.as_str(),
                    entry.url
                ),
            )));
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn parses_targets_relative_and_absolute() {
        assert!(matches!(parse_target("Patient").unwrap(), Target::Type(_)));
        assert!(matches!(parse_target("Patient/1").unwrap(), Target::Instance(_, id) if id == "1"));
        assert!(matches!(parse_target("http://x/fhir/R4/Patient/1").unwrap(), Target::Instance(_, id) if id == "1"));
        assert!(matches!(parse_target("Patient/1/_history/3").unwrap(), Target::Version(_, _, v) if v == "3"));
        assert!(matches!(parse_target("Patient?name=a").unwrap(), Target::Conditional(c) if c.query.len() == 1));
        assert!(matches!(parse_target("?_type=Patient").unwrap(), Target::System(q) if q == "_type=Patient"));
        assert!(parse_target("Nope/1").is_err());
        assert!(parse_target("Patient/1/x/y/z").is_err());
        assert!(
            matches!(parse_target("_history?_count=2").unwrap(), Target::History { resource_type: None, id: None, query } if query == "_count=2")
        );
        assert!(matches!(
            parse_target("Patient/_history").unwrap(),
            Target::History {
                resource_type: Some(_),
                id: None,
                ..
            }
        ));
        assert!(
            matches!(parse_target("Patient/1/_history").unwrap(), Target::History { id: Some(id), .. } if id == "1")
        );
        assert!(
            matches!(parse_target("Patient/1/Observation?code=x").unwrap(), Target::Compartment { target: Some(_), query, .. } if query == "code=x")
        );
        assert!(matches!(
            parse_target("Patient/1/*").unwrap(),
            Target::Compartment { target: None, .. }
        ));
        assert!(parse_target("Patient/1/Nope").is_err());
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
