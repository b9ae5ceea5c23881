//! The typed request: every interaction and operation the server carries out, with everything it
//! needs, built once at a front door and run by `dispatch::dispatch`. An HTTP request (`http/`) and
//! a Bundle entry (`bundle_request`) become the same `Request` for the same URL: both route the URL
//! through `route::route`, and `Request::build` fills in the rest from the door's `Door`, which
//! reads it from headers and a body, or from the entry's `request` and `resource`.

use super::body::ValidResource;
use super::condition::Condition;
use super::history::HistoryTarget;
use super::route::Route;
use super::search::SearchScope;
use crate::error::Result;
use crate::model::{Instant, ResourceType, VersionId, parse_etag};
use crate::patch::Patch;
use serde_json::{Map, Value};

/// One interaction or operation, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Capabilities,
    Read {
        resource_type: ResourceType,
        id: String,
        conditions: ReadConditions,
    },
    Vread {
        resource_type: ResourceType,
        id: String,
        version: String,
    },
    Create {
        resource_type: ResourceType,
        resource: ValidResource,
        /// `If-None-Exist` / `ifNoneExist`: the query of a conditional create.
        if_none_exist: Option<Condition>,
    },
    Update {
        resource_type: ResourceType,
        id: String,
        resource: ValidResource,
        if_match: Option<VersionId>,
    },
    UpdateConditional {
        condition: Condition,
        resource: ValidResource,
        if_match: Option<VersionId>,
    },
    Patch {
        resource_type: ResourceType,
        id: String,
        patch: Patch,
        if_match: Option<VersionId>,
    },
    PatchConditional {
        condition: Condition,
        patch: Patch,
        if_match: Option<VersionId>,
    },
    Delete {
        resource_type: ResourceType,
        id: String,
        if_match: Option<VersionId>,
    },
    DeleteConditional {
        condition: Condition,
    },
    Search {
        scope: SearchScope,
        query: Vec<(String, String)>,
        /// `Prefer: handling=strict`: an unknown or unsupported parameter is a `400`.
        strict: bool,
    },
    History {
        target: HistoryTarget,
        query: Vec<(String, String)>,
    },
    /// A transaction or batch Bundle (only over HTTP: a Bundle entry cannot hold another).
    Bundle(Map<String, Value>),
    /// `$validate`: the body as sent (a resource, or `Parameters` holding one).
    Validate {
        resource_type: ResourceType,
        id: Option<String>,
        body: Map<String, Value>,
    },
    /// `$reindex` of these types, in the background.
    Reindex(Vec<ResourceType>),
    /// The `$reindex` jobs and their progress.
    ReindexStatus,
}

/// The conditions of a conditional read (http.html#cread): answer `304 Not Modified` when the
/// current version is one the client has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadConditions {
    /// `If-None-Match` / `ifNoneMatch`; it decides alone when present (RFC 9110 §13.1.3).
    pub if_none_match: Option<IfNoneMatch>,
    /// `If-Modified-Since` / `ifModifiedSince`.
    pub if_modified_since: Option<Instant>,
}

/// The versions an `If-None-Match` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: any version.
    Any,
    /// `W/"1", W/"2"`; tags that are not version ETags name nothing.
    Versions(Vec<VersionId>),
}

impl IfNoneMatch {
    pub fn parse(text: &str) -> IfNoneMatch {
        let tags: Vec<&str> = text.split(',').map(str::trim).collect();
        if tags.contains(&"*") {
            return IfNoneMatch::Any;
        }
        IfNoneMatch::Versions(tags.into_iter().filter_map(parse_etag).collect())
    }

    fn names(&self, version: VersionId) -> bool {
        match self {
            IfNoneMatch::Any => true,
            IfNoneMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

impl ReadConditions {
    /// Whether the client already has the current version `version`, written at `last_updated`.
    pub fn unchanged(&self, version: VersionId, last_updated: Instant) -> bool {
        match (&self.if_none_match, self.if_modified_since) {
            (Some(tags), _) => tags.names(version),
            (None, Some(since)) => last_updated.whole_seconds() <= since,
            (None, None) => false,
        }
    }
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

impl Request {
    /// The request `route` names, completed from `door`.
    pub fn build(route: Route, door: &mut impl Door) -> Result<Request> {
        Ok(match route {
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
        })
    }

    /// The resource a create or update carries (a Bundle rewrites its references).
    pub fn resource_mut(&mut self) -> Option<&mut ValidResource> {
        match self {
            Request::Create { resource, .. }
            | Request::Update { resource, .. }
            | Request::UpdateConditional { resource, .. } => Some(resource),
            _ => None,
        }
    }

    /// Whether the request changes what is stored.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Update { .. }
                | Request::UpdateConditional { .. }
                | Request::Patch { .. }
                | Request::PatchConditional { .. }
                | Request::Delete { .. }
                | Request::DeleteConditional { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_decides_alone_then_if_modified_since() {
        let at = Instant::from_micros(10_500_000);
        let tags = ReadConditions {
            if_none_match: Some(IfNoneMatch::parse("W/\"1\", W/\"2\"")),
            if_modified_since: Some(Instant::from_micros(99_000_000)),
        };
        assert!(tags.unchanged(2, at));
        assert!(
            !tags.unchanged(3, at),
            "If-None-Match decides, though not modified since"
        );
        assert!(
            ReadConditions {
                if_none_match: Some(IfNoneMatch::parse("*")),
                ..Default::default()
            }
            .unchanged(9, at)
        );
        let since = |micros| ReadConditions {
            if_none_match: None,
            if_modified_since: Some(Instant::from_micros(micros)),
        };
        assert!(since(10_000_000).unchanged(1, at), "compared in whole seconds");
        assert!(!since(9_000_000).unchanged(1, at));
        assert!(!ReadConditions::default().unchanged(1, at));
    }
}
