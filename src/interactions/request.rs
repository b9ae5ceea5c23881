//! The typed request: every interaction and operation the server carries out, with everything it
//! needs, built once at a front door (`route`) and run by `dispatch::dispatch`. Plain values: an
//! HTTP request and a Bundle entry for the same URL are equal `Request`s.

use super::body::ValidResource;
use super::condition::Condition;
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
    /// `Consent/$evaluate`, with its `Parameters`.
    ConsentEvaluate(Map<String, Value>),
}

/// What is searched.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchScope {
    Type(ResourceType),
    System,
    /// `[compartment]/[id]/[type]`, or every type in the compartment when `target` is `None`.
    Compartment {
        compartment: ResourceType,
        id: String,
        target: Option<ResourceType>,
    },
}

/// Which history was asked for, as it appears in the URL.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryTarget {
    System,
    Type(ResourceType),
    Instance(ResourceType, String),
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

impl Request {
    /// The resource a create or update carries (a Bundle rewrites its references).
    pub fn resource_mut(&mut self) -> Option<&mut ValidResource> {
        match self {
            Request::Create { resource, .. }
            | Request::Update { resource, .. }
            | Request::UpdateConditional { resource, .. } => Some(resource),
            _ => None,
        }
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
