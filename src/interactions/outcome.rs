//! What an interaction answers, as data: which resources and versions it discloses or wrote.
//! Bytes are made at the edge — `http/` for a response, `bundle_response` for a Bundle entry —
//! so that what a response discloses can be filtered and audited without parsing it.

use super::condition::Condition;
use super::request::BundleKind;
use crate::bundle::{HistoryPage, Searchset};
use crate::model::{Id, Instant, ResourceType, VersionId};
use crate::store::Written;
use bytes::Bytes;
use serde_json::Value;

/// One version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub resource_type: ResourceType,
    pub id: Id,
    pub version_id: VersionId,
    pub last_updated: Instant,
    /// The stored JSON, exactly as served; `None` for a delete.
    pub content: Option<Bytes>,
}

impl ResourceVersion {
    /// `Type/id`
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

/// What was deleted: the resource named, or the resources a condition matched.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteTarget {
    Instance(ResourceType, String),
    Condition(Condition),
}

/// The outcome of one request.
#[derive(Debug)]
pub enum Outcome {
    /// The CapabilityStatement, as served.
    Capabilities(Bytes),
    /// A read or vread: the version asked for.
    Version(ResourceVersion),
    /// A conditional read whose current version the client already has.
    NotModified {
        version_id: VersionId,
        last_updated: Instant,
    },
    /// A create, update or patch: the version written, or the one that stands when nothing was
    /// written (a conditional create that found its match, an update equal to the current
    /// version). `created` when this version brought the resource into existence.
    Saved {
        version: ResourceVersion,
        created: bool,
    },
    /// A delete: the tombstones written, none when there was nothing to delete.
    Deleted {
        target: DeleteTarget,
        tombstones: Vec<ResourceVersion>,
    },
    Searchset(Searchset),
    History(HistoryPage),
    /// A transaction or batch: one outcome per entry.
    Bundle(BundleOutcome),
    /// An OperationOutcome that is the answer itself (`$validate`).
    OperationOutcome(Value),
    /// A `$reindex` job just started: its status (`Parameters`).
    ReindexStarted(Value),
    /// Every `$reindex` job of this process and its progress (`Parameters`).
    ReindexJobs(Value),
    /// The `Parameters` an operation answers with (`Consent/$evaluate`).
    Parameters(Value),
}

impl Outcome {
    /// The outcome of a write the store carried out (or found already done).
    pub fn saved(written: Written) -> Outcome {
        let created = written.created;
        Outcome::Saved {
            version: version_of(written),
            created,
        }
    }
}

/// A written version as an outcome's version.
pub fn version_of(written: Written) -> ResourceVersion {
    ResourceVersion {
        resource_type: written.resource_type,
        id: written.id,
        version_id: written.version_id,
        last_updated: written.last_updated,
        content: written.content,
    }
}

/// A transaction's or batch's outcome: one per entry, in request order.
#[derive(Debug)]
pub struct BundleOutcome {
    pub kind: BundleKind,
    pub entries: Vec<EntryOutcome>,
}

/// How one entry turned out.
#[derive(Debug)]
pub struct EntryOutcome {
    /// A HEAD entry: answered as its GET, without the body.
    pub head: bool,
    /// The entry's outcome, or why it failed (in a batch; a failed transaction answers with one
    /// OperationOutcome, but a read entry that fails after the commit carries its error).
    pub outcome: crate::error::Result<Outcome>,
}
