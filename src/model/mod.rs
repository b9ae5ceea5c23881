//! FHIR values the rest of the server passes around, each valid by construction: resource types,
//! ids, version ids, instants, and the OperationOutcome builder. Knows nothing of HTTP or SQL.

pub mod id;
mod instant;
pub mod meta;
pub mod outcome;
mod resource_type;
pub mod structure;

pub use id::Id;
pub use instant::{Instant, InstantRange};
pub use resource_type::ResourceType;

/// A resource's version number: 1, 2, 3 … with no gaps (`meta.versionId`, the ETag `W/"n"`).
pub type VersionId = i64;

/// Parses one entity tag, weak or strong (`W/"3"` or `"3"`), into a version number.
pub fn parse_etag(tag: &str) -> Option<VersionId> {
    let tag = tag.trim();
    let quoted = tag.strip_prefix("W/").unwrap_or(tag);
    quoted.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}
