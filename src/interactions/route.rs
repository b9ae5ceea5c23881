//! The FHIR URL space (R4 http.html): which interaction a method and a URL relative to the base
//! name. Both front doors route through here — `http/` for requests under `/fhir/R4`, and the
//! Bundle code for each entry's `request.method` and `request.url` — so the same URL always means
//! the same interaction, whichever way it arrives. What the route needs besides the URL comes from
//! the door's `Door` (headers and a body, or the entry's `request` elements and `resource`), and
//! `Route::into_request` makes the typed `Request` of both.

use super::body::ValidResource;
use super::condition::Condition;
use super::request::{HistoryTarget, ReadConditions, Request, SearchScope};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{ResourceType, VersionId};
use crate::patch::Patch;
use serde_json::{Map, Value};

/// An HTTP method, as an HTTP request or a Bundle entry's `request.method` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
}

impl Verb {
    pub fn parse(text: &str) -> Option<Verb> {
        Some(match text {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "DELETE" => Verb::Delete,
            "PATCH" => Verb::Patch,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
            Verb::Patch => "PATCH",
        }
    }

    /// GET and HEAD: a HEAD is answered as its GET, without the body.
    pub fn is_read(self) -> bool {
        matches!(self, Verb::Get | Verb::Head)
    }
}

/// What a method and URL name, before the request's body and headers are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `GET metadata`
    Capabilities,
    /// `GET [type]/[id]`
    Read(ResourceType, String),
    /// `GET [type]/[id]/_history/[vid]`
    Vread(ResourceType, String, String),
    /// `POST [type]`
    Create(ResourceType),
    /// `PUT [type]/[id]`
    Update(ResourceType, String),
    /// `PUT [type]?[search]`
    UpdateConditional(Condition),
    /// `PATCH [type]/[id]`
    Patch(ResourceType, String),
    /// `PATCH [type]?[search]`
    PatchConditional(Condition),
    /// `DELETE [type]/[id]`
    Delete(ResourceType, String),
    /// `DELETE [type]?[search]`
    DeleteConditional(Condition),
    /// `GET [type]?…`, `GET [base]?…`, `GET [compartment]/[id]/[type]?…`, and `POST …/_search`
    /// (`form`: more parameters come in the body).
    Search {
        scope: SearchScope,
        query: Vec<(String, String)>,
        form: bool,
    },
    /// `GET [base]/_history`, `[type]/_history`, `[type]/[id]/_history`
    History {
        target: HistoryTarget,
        query: Vec<(String, String)>,
    },
    /// `POST [base]` with a transaction or batch Bundle.
    Bundle,
    /// `POST [type]/$validate`, `POST [type]/[id]/$validate`
    Validate(ResourceType, Option<String>),
    /// `POST [base]/$reindex` (every type) and `POST [type]/$reindex`
    Reindex(Vec<ResourceType>),
    /// `GET [base]/$reindex`
    ReindexStatus,
    /// `POST [base]/Consent/$evaluate`
    ConsentEvaluate,
}

/// What a front door supplies beyond the URL: the body and the headers (HTTP), or the entry's
/// `resource` and `request` elements (a Bundle entry). Each method is asked only by the routes
/// that need it, so a door reads a body only where one belongs.
pub trait Door {
    /// The resource of a create (`url_id: None`) or an update of `url_id`, checked as a write of
    /// `resource_type` must be.
    fn resource(&mut self, resource_type: ResourceType, url_id: Option<&str>) -> Result<ValidResource>;
    /// The patch of a PATCH.
    fn patch(&mut self) -> Result<Patch>;
    /// The body as a JSON object: a Bundle, or what `$validate` checks.
    fn body(&mut self) -> Result<Map<String, Value>>;
    /// The parameters of `POST …/_search` that come in the body.
    fn search_form(&mut self) -> Result<Vec<(String, String)>>;
    fn if_match(&self) -> Result<Option<VersionId>>;
    /// The query of a conditional create.
    fn if_none_exist(&self) -> Result<Option<String>>;
    fn read_conditions(&self) -> Result<ReadConditions>;
    /// `Prefer: handling=strict`.
    fn strict_handling(&self) -> bool;
}

impl Route {
    /// The request this route names, completed from `door`.
    pub fn into_request(self, door: &mut impl Door) -> Result<Request> {
        Ok(match self {
            Route::Capabilities => Request::Capabilities,
            Route::Read(resource_type, id) => Request::Read {
                resource_type,
                id,
                conditions: door.read_conditions()?,
            },
            Route::Vread(resource_type, id, version) => Request::Vread {
                resource_type,
                id,
                version,
            },
            Route::Create(resource_type) => {
                let if_none_exist = door.if_none_exist()?;
                Request::Create {
                    resource_type,
                    resource: door.resource(resource_type, None)?,
                    if_none_exist: if_none_exist.map(|query| Condition::new(resource_type, &query)),
                }
            }
            Route::Update(resource_type, id) => {
                let if_match = door.if_match()?;
                Request::Update {
                    resource_type,
                    resource: door.resource(resource_type, Some(&id))?,
                    id,
                    if_match,
                }
            }
            Route::UpdateConditional(condition) => {
                let if_match = door.if_match()?;
                Request::UpdateConditional {
                    resource: door.resource(condition.resource_type, None)?,
                    condition,
                    if_match,
                }
            }
            Route::Patch(resource_type, id) => {
                let if_match = door.if_match()?;
                Request::Patch {
                    resource_type,
                    id,
                    patch: door.patch()?,
                    if_match,
                }
            }
            Route::PatchConditional(condition) => {
                let if_match = door.if_match()?;
                Request::PatchConditional {
                    condition,
                    patch: door.patch()?,
                    if_match,
                }
            }
            Route::Delete(resource_type, id) => Request::Delete {
                resource_type,
                id,
                if_match: door.if_match()?,
            },
            Route::DeleteConditional(condition) => Request::DeleteConditional { condition },
            Route::Search { scope, mut query, form } => {
                if form {
                    query.extend(door.search_form()?);
                }
                Request::Search {
                    scope,
                    query,
                    strict: door.strict_handling(),
                }
            }
            Route::History { target, query } => Request::History { target, query },
            Route::Bundle => Request::Bundle(door.body()?),
            Route::Validate(resource_type, id) => Request::Validate {
                resource_type,
                id,
                body: door.body()?,
            },
            Route::Reindex(types) => Request::Reindex(types),
            Route::ReindexStatus => Request::ReindexStatus,
            Route::ConsentEvaluate => Request::ConsentEvaluate(door.body()?),
        })
    }
}

/// Routes `verb` on `path` (relative to the FHIR base, its segments still percent-encoded) with
/// the query string `query` (without `?`). A path the server has no interaction at is a `404`; a
/// method not supported on a path that exists, a `405`.
pub fn route(verb: Verb, path: &str, query: &str) -> Result<Route> {
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Result<_>>()?;
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let pairs = || query_pairs(query);
    let not_allowed = || {
        Error::new(
            ErrorKind::MethodNotAllowed,
            IssueCode::NotSupported,
            format!("{} is not supported on {}", verb.as_str(), shown(path)),
        )
    };
    let get = verb.is_read();
    // The audit trail is written once: no client patches or removes a record of it (an update
    // of one is refused by the write rules, `store::rules`, which know whether it exists).
    if matches!(segments.as_slice(), ["AuditEvent", ..]) && matches!(verb, Verb::Patch | Verb::Delete) {
        return Err(not_allowed());
    }
    Ok(match segments.as_slice() {
        [] if get => Route::Search {
            scope: SearchScope::System,
            query: pairs(),
            form: false,
        },
        [] if verb == Verb::Post => Route::Bundle,
        ["metadata"] if get => Route::Capabilities,
        ["_search"] if verb == Verb::Post => Route::Search {
            scope: SearchScope::System,
            query: pairs(),
            form: true,
        },
        ["_history"] if get => Route::History {
            target: HistoryTarget::System,
            query: pairs(),
        },
        ["$reindex"] if verb == Verb::Post => Route::Reindex(ResourceType::all().collect()),
        ["$reindex"] if get => Route::ReindexStatus,
        [] | ["metadata" | "_search" | "_history" | "$reindex"] => return Err(not_allowed()),
        [t] => {
            let t = resource_type(t)?;
            match verb {
                Verb::Get | Verb::Head => Route::Search {
                    scope: SearchScope::Type(t),
                    query: pairs(),
                    form: false,
                },
                Verb::Post => Route::Create(t),
                Verb::Put => Route::UpdateConditional(Condition::new(t, query)),
                Verb::Delete => Route::DeleteConditional(Condition::new(t, query)),
                Verb::Patch => Route::PatchConditional(Condition::new(t, query)),
            }
        }
        [t, "_search"] if verb == Verb::Post => Route::Search {
            scope: SearchScope::Type(resource_type(t)?),
            query: pairs(),
            form: true,
        },
        [t, "_history"] if get => Route::History {
            target: HistoryTarget::Type(resource_type(t)?),
            query: pairs(),
        },
        [t, "$reindex"] if verb == Verb::Post => Route::Reindex(vec![resource_type(t)?]),
        [t, "$validate"] if verb == Verb::Post => Route::Validate(resource_type(t)?, None),
        ["Consent", "$evaluate"] if verb == Verb::Post => Route::ConsentEvaluate,
        [t, "_search" | "_history" | "$reindex" | "$validate"] | [t @ "Consent", "$evaluate"] => {
            resource_type(t)?;
            return Err(not_allowed());
        }
        [t, id] => {
            let t = resource_type(t)?;
            let id = (*id).to_owned();
            match verb {
                Verb::Get | Verb::Head => Route::Read(t, id),
                Verb::Put => Route::Update(t, id),
                Verb::Delete => Route::Delete(t, id),
                Verb::Patch => Route::Patch(t, id),
                Verb::Post => return Err(not_allowed()),
            }
        }
        [t, id, "_history"] if get => Route::History {
            target: HistoryTarget::Instance(resource_type(t)?, (*id).to_owned()),
            query: pairs(),
        },
        [t, id, "$validate"] if verb == Verb::Post => Route::Validate(resource_type(t)?, Some((*id).to_owned())),
        [t, id, target] if get => Route::Search {
            scope: SearchScope::Compartment {
                compartment: resource_type(t)?,
                id: (*id).to_owned(),
                target: if *target == "*" {
                    None
                } else {
                    Some(resource_type(target)?)
                },
            },
            query: pairs(),
            form: false,
        },
        [t, id, "_history", version] if get => Route::Vread(resource_type(t)?, (*id).to_owned(), (*version).to_owned()),
        [t, _, _] | [t, _, "_history", _] => {
            resource_type(t)?;
            return Err(not_allowed());
        }
        _ => {
            return Err(Error::new(
                ErrorKind::NotFound,
                IssueCode::NotSupported,
                format!("no FHIR interaction at {} {}", verb.as_str(), shown(path)),
            ));
        }
    })
}

/// A resource type named in a URL; an unknown one is a `404`, as a path that does not exist.
fn resource_type(name: &str) -> Result<ResourceType> {
    ResourceType::parse(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            IssueCode::NotSupported,
            format!("'{name}' is not a FHIR R4 resource type this server supports"),
        )
    })
}

/// The query pairs of a query string, percent-decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// A path as an error message shows it: relative to the base.
fn shown(path: &str) -> String {
    format!("[base]/{}", path.trim_start_matches('/'))
}

/// A path segment with its `%XX` escapes decoded; one that does not decode to UTF-8 is a `400`.
fn percent_decode(segment: &str) -> Result<String> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied(), bytes.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::invalid(format!("the URL segment '{segment}' is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> ResourceType {
        ResourceType::parse("Patient").unwrap()
    }

    #[test]
    fn instance_type_and_system_urls() {
        assert_eq!(
            route(Verb::Get, "Patient/1", "").unwrap(),
            Route::Read(patient(), "1".into())
        );
        assert_eq!(
            route(Verb::Head, "Patient/1", "").unwrap(),
            Route::Read(patient(), "1".into())
        );
        assert_eq!(
            route(Verb::Get, "Patient/1/_history/2", "").unwrap(),
            Route::Vread(patient(), "1".into(), "2".into())
        );
        assert_eq!(route(Verb::Post, "Patient", "").unwrap(), Route::Create(patient()));
        assert!(matches!(
            route(Verb::Put, "Patient", "identifier=a%7Cb").unwrap(),
            Route::UpdateConditional(c) if c.query == vec![("identifier".to_owned(), "a|b".to_owned())]
        ));
        assert_eq!(route(Verb::Post, "", "").unwrap(), Route::Bundle);
        assert_eq!(route(Verb::Get, "metadata", "").unwrap(), Route::Capabilities);
        assert!(matches!(
            route(Verb::Get, "Patient/1/Observation", "code=x").unwrap(),
            Route::Search { scope: SearchScope::Compartment { target: Some(_), .. }, query, form: false } if query.len() == 1
        ));
        assert!(matches!(
            route(Verb::Get, "Patient/1/*", "").unwrap(),
            Route::Search {
                scope: SearchScope::Compartment { target: None, .. },
                ..
            }
        ));
        assert_eq!(
            route(Verb::Post, "Patient/1/$validate", "").unwrap(),
            Route::Validate(patient(), Some("1".into()))
        );
        assert_eq!(route(Verb::Get, "$reindex", "").unwrap(), Route::ReindexStatus);
    }

    #[test]
    fn unknown_paths_types_and_methods() {
        let e = route(Verb::Get, "Nope/1", "").unwrap_err();
        assert_eq!(
            (e.kind, e.issues[0].code),
            (ErrorKind::NotFound, IssueCode::NotSupported)
        );
        assert_eq!(
            route(Verb::Get, "Patient/1/x/y/z", "").unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            route(Verb::Post, "Patient/1", "").unwrap_err().kind,
            ErrorKind::MethodNotAllowed
        );
        assert_eq!(
            route(Verb::Delete, "metadata", "").unwrap_err().kind,
            ErrorKind::MethodNotAllowed
        );
        assert_eq!(
            route(Verb::Get, "Nope/_history", "").unwrap_err().kind,
            ErrorKind::NotFound,
            "an unknown type is a 404 before the method is looked at"
        );
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            route(Verb::Get, "Patient/a%2Db", "").unwrap(),
            Route::Read(patient(), "a-b".into())
        );
        assert_eq!(
            route(Verb::Get, "Patient/%FF", "").unwrap_err().kind,
            ErrorKind::Invalid
        );
    }
}
