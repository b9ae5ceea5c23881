//! The FHIR RESTful interactions (R4 http.html), one file each, and the one request path they
//! share: a front door (`http/`, or a Bundle entry in `bundle_request`) routes a URL (`route`)
//! into a typed `request::Request`, `dispatch::dispatch` runs it in a request context
//! (`context::Cx`: the services and the caller) and answers a typed `outcome::Outcome`, which the
//! edge serialises. An interaction never sees axum.

pub mod access;
pub mod audit_index;
pub mod audit_writer;
pub mod audited;
pub mod batch;
pub mod body;
pub mod bundle_references;
pub mod bundle_request;
pub mod bundle_response;
pub mod capabilities;
pub mod condition;
pub mod conditional;
pub mod context;
pub mod create;
pub mod delete;
pub mod dispatch;
pub mod history;
pub mod operation_consent_evaluate;
pub mod operation_reindex;
pub mod operation_validate;
pub mod outcome;
pub mod parallel;
pub mod patch;
pub mod read;
pub mod request;
pub mod route;
pub mod search;
pub mod search_parameters;
pub mod transaction;
pub mod update;
pub mod value_set_lookup;
pub mod vread;

pub use context::Cx;

use crate::error::Result;
use crate::model::{Id, ResourceType};
use crate::store::{Store, StoredVersion};
use outcome::ResourceVersion;
use std::sync::Arc;

/// What every interaction may use: the store and the public base URL for links.
pub struct Services {
    pub store: Arc<dyn Store>,
    /// The public base, e.g. `http://127.0.0.1:8080/fhir/R4`, without a trailing slash.
    pub base_url: Arc<str>,
    /// Search page sizes (`--search-default-count`, `--search-max-count`).
    pub search_limits: crate::search::limits::Limits,
    /// The search parameters in force: built-in plus stored `SearchParameter` resources.
    pub search_parameters: crate::search::custom::SearchParameters,
    /// `$reindex` jobs of this process.
    pub reindex_jobs: operation_reindex::ReindexJobs,
    /// `--update-always-versions`: an update equal to the current version still writes one.
    pub update_always_versions: bool,
    /// `--conditional-delete-multiple`: a conditional delete may remove several matches.
    pub conditional_delete_multiple: bool,
    /// `--bundle-max-entries`: the most entries in a transaction or batch.
    pub bundle_max_entries: usize,
    /// Serialises conditional creates and updates per type (see `conditional::CreateLocks`).
    pub create_locks: conditional::CreateLocks,
    /// The CapabilityStatement, serialised once per set of search parameters.
    pub capability_statement: capabilities::CapabilityCache,
    /// Authorization, when it is on (any `--auth-…` setting); off, every caller is anonymous.
    pub authorization: Option<crate::auth::Authorization>,
    /// Whose compartments recently checked versions are in (`access::owners`).
    pub owners: access::owners::OwnerCache,
    /// How consents decide (`--consent-…`).
    pub consent: crate::consent::Settings,
    /// The purpose of use of a request whose token names none (`--consent-default-purpose`).
    pub consent_default_purpose: String,
    /// `--consent-system-callers`: consents govern callers without a user too.
    pub consent_system_callers: bool,
    /// The consents in force, as last read (`access::consent_store`).
    pub consents: access::consent_store::ConsentCache,
    /// The audit trail's queue (`--audit`, `--audit-required`).
    pub audit: crate::audit::Trail,
    /// What makes the trail's pending records AuditEvents, and when (`audit_index`).
    pub audit_index: Arc<audit_index::AuditIndex>,
}

/// A version the store holds for `resource_type/id`, as an outcome's version.
fn stored(resource_type: ResourceType, id: &str, version: StoredVersion) -> Result<ResourceVersion> {
    Ok(ResourceVersion {
        resource_type,
        id: Id::parse(id)?,
        version_id: version.version_id,
        last_updated: version.last_updated,
        content: version.content,
    })
}
