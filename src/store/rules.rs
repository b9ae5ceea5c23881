//! The rules of a write, in one place (R4 http.html#create, #update, #delete): from the write asked
//! for and the resource's current row, what is written — the version number, whether the write
//! brings the resource into existence, and when nothing is written at all. Pure: no database.
//! The SQLite writer, the PostgreSQL statements and the bulk plan of a group (`group::plan`) all
//! decide through `decide`, and answer through `Written`'s constructors, so the three cannot
//! drift apart.
//!
//! - A create is version 1 of a new id; an update of a resource that does not exist creates it
//!   (version 1), and one of a deleted resource revives it (the next version, created again).
//! - A delete writes a tombstone as the next version; deleting what does not exist or is
//!   deleted already writes nothing and is no error.
//! - `If-Match` must name the current version, else `412`, whatever else the write would do.
//! - An update whose content equals the current version's (apart from `meta.versionId` and
//!   `meta.lastUpdated`) writes nothing either (`unchanged`). That rule needs the current content,
//!   which the stores never read or parse on their write paths (SQLite's single writer would pay
//!   for it on behalf of every request), so the interaction applies it to the version it reads
//!   before it asks the store to write.

use super::{Method, StoredVersion, WriteOp, Written};
use crate::error::{Error, Result};
use crate::model::{Id, Instant, ResourceType, VersionId};
use crate::search::compartments;
use bytes::Bytes;
use serde_json::{Map, Value};

/// A resource's current row, as a write finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentRow {
    pub version_id: VersionId,
    pub deleted: bool,
}

/// A version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVersion {
    pub version_id: VersionId,
    /// This version brings the resource into existence: a create, an update of an id never
    /// used, or the revival of a deleted resource.
    pub created: bool,
    pub method: Method,
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write this version.
    Write(NewVersion),
    /// A delete that finds nothing to delete: no version.
    NothingToDelete,
    /// A re-index of the version still current: new index rows, no new version.
    Reindex,
    /// A re-index whose resource has moved on or been deleted: that later write indexed it.
    Stale,
}

/// What `op` does to a resource whose current row is `current` (`None`: never stored).
pub fn decide(op: &WriteOp, current: Option<CurrentRow>) -> Result<Decision> {
    let (resource_type, id) = op.target();
    // The audit trail is append-only: a record, once written, is neither replaced nor deleted.
    if resource_type.as_str() == "AuditEvent" {
        let exists = current.is_some_and(|row| !row.deleted);
        if matches!(op, WriteOp::Delete { .. }) || (matches!(op, WriteOp::Update { .. }) && exists) {
            return Err(Error::new(
                crate::error::ErrorKind::MethodNotAllowed,
                crate::error::IssueCode::NotSupported,
                format!("{resource_type}/{id} is a record of the audit trail: it is never changed or deleted"),
            ));
        }
    }
    match op {
        WriteOp::Create { .. } => match current {
            None => Ok(Decision::Write(NewVersion {
                version_id: 1,
                created: true,
                method: Method::Post,
            })),
            Some(_) => Err(Error::conflict(format!("{resource_type}/{id} already exists"))),
        },
        WriteOp::Update { if_match, .. } => {
            check_if_match(resource_type, id, current, *if_match)?;
            Ok(Decision::Write(match current {
                None => NewVersion {
                    version_id: 1,
                    created: true,
                    method: Method::Put,
                },
                Some(row) => NewVersion {
                    version_id: row.version_id + 1,
                    created: row.deleted,
                    method: Method::Put,
                },
            }))
        }
        WriteOp::Delete { if_match, .. } => {
            check_if_match(resource_type, id, current, *if_match)?;
            Ok(match current {
                None | Some(CurrentRow { deleted: true, .. }) => Decision::NothingToDelete,
                Some(row) => Decision::Write(NewVersion {
                    version_id: row.version_id + 1,
                    created: false,
                    method: Method::Delete,
                }),
            })
        }
        WriteOp::Reindex { version_id, .. } => Ok(match current {
            Some(row) if row.version_id == *version_id && !row.deleted => Decision::Reindex,
            _ => Decision::Stale,
        }),
    }
}

/// Whose a new version is, as the store records it with the version (`history_owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owners {
    /// The patients whose compartments the version's resource is in.
    Patients(Vec<String>),
    /// A delete: the patients of the version it deletes.
    OfDeletedVersion,
}

/// Whose the version `op` writes is: for a create or update, the patients its index rows place it
/// with (`compartments::patient_owners`); for a delete, those of the version it deletes. A
/// re-index writes no version, and so records no owners.
pub fn owners(op: &WriteOp) -> Owners {
    match op {
        WriteOp::Create {
            resource_type,
            id,
            index,
            ..
        }
        | WriteOp::Update {
            resource_type,
            id,
            index,
            ..
        } => Owners::Patients(compartments::patient_owners(resource_type.as_str(), id.as_str(), index)),
        WriteOp::Delete { .. } => Owners::OfDeletedVersion,
        WriteOp::Reindex { .. } => Owners::Patients(Vec::new()),
    }
}

/// `If-Match` (or a Bundle entry's `ifMatch`, or the version a conditional write matched) must
/// name the current version.
fn check_if_match(
    resource_type: ResourceType,
    id: &Id,
    current: Option<CurrentRow>,
    if_match: Option<VersionId>,
) -> Result<()> {
    match (if_match, current) {
        (None, _) => Ok(()),
        (Some(expected), None) => Err(Error::precondition_failed(format!(
            "If-Match W/\"{expected}\" cannot hold: {resource_type}/{id} does not exist"
        ))),
        (Some(expected), Some(row)) if row.version_id != expected => Err(Error::precondition_failed(format!(
            "If-Match W/\"{expected}\" does not match the current version W/\"{}\" of {resource_type}/{id}",
            row.version_id
        ))),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// Whether an update of `resource` to the version `current` would change nothing: equal content
/// apart from `meta.versionId` and `meta.lastUpdated` (and a `meta` left with nothing else), and
/// `if_match`, if given, naming that version. A deleted current version is never unchanged.
pub fn unchanged(current: &StoredVersion, resource: &Map<String, Value>, if_match: Option<VersionId>) -> Result<bool> {
    let Some(content) = &current.content else {
        return Ok(false);
    };
    if if_match.is_some_and(|v| v != current.version_id) {
        return Ok(false);
    }
    let stored: Map<String, Value> = serde_json::from_slice(content)
        .map_err(|e| Error::internal(format!("a stored resource is not a JSON object: {e}")))?;
    Ok(without_version_meta(&stored) == without_version_meta(resource))
}

/// `resource` without the two `meta` elements the server sets on every version (and without
/// `meta` when nothing else is in it).
fn without_version_meta(resource: &Map<String, Value>) -> Map<String, Value> {
    let mut resource = resource.clone();
    if let Some(Value::Object(meta)) = resource.get_mut("meta") {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            resource.remove("meta");
        }
    }
    resource
}

impl Written {
    /// The version `decided` of `resource_type/id`, written at `now` with `content` (`None` for a
    /// delete).
    pub fn new(
        resource_type: ResourceType,
        id: Id,
        decided: NewVersion,
        now: Instant,
        content: Option<Bytes>,
    ) -> Written {
        Written {
            resource_type,
            id,
            version_id: decided.version_id,
            last_updated: now,
            created: decided.created,
            content,
        }
    }

    /// A version already stored, answered as the outcome of a write that wrote nothing (a
    /// conditional create that found its match, an update equal to the current version).
    pub fn existing(resource_type: ResourceType, id: Id, version: StoredVersion) -> Written {
        Written {
            resource_type,
            id,
            version_id: version.version_id,
            last_updated: version.last_updated,
            created: false,
            content: version.content,
        }
    }

    /// The current version `version_id`, re-indexed at `now`: no new version, no content.
    pub fn reindexed(resource_type: ResourceType, id: Id, version_id: VersionId, now: Instant) -> Written {
        Written {
            resource_type,
            id,
            version_id,
            last_updated: now,
            created: false,
            content: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn patient() -> (ResourceType, Id) {
        (ResourceType::parse("Patient").unwrap(), Id::parse("p").unwrap())
    }

    fn create() -> WriteOp {
        let (resource_type, id) = patient();
        WriteOp::Create {
            resource_type,
            id,
            resource: Map::new(),
            index: Vec::new(),
        }
    }

    fn update(if_match: Option<VersionId>) -> WriteOp {
        let (resource_type, id) = patient();
        WriteOp::Update {
            resource_type,
            id,
            resource: Map::new(),
            index: Vec::new(),
            if_match,
        }
    }

    fn delete(if_match: Option<VersionId>) -> WriteOp {
        let (resource_type, id) = patient();
        WriteOp::Delete {
            resource_type,
            id,
            if_match,
        }
    }

    fn reindex(version_id: VersionId) -> WriteOp {
        let (resource_type, id) = patient();
        WriteOp::Reindex {
            resource_type,
            id,
            version_id,
            index: Vec::new(),
        }
    }

    fn row(version_id: VersionId, deleted: bool) -> Option<CurrentRow> {
        Some(CurrentRow { version_id, deleted })
    }

    fn write(version_id: VersionId, created: bool, method: Method) -> Decision {
        Decision::Write(NewVersion {
            version_id,
            created,
            method,
        })
    }

    #[test]
    fn creates_are_version_one_of_a_new_id() {
        assert_eq!(decide(&create(), None).unwrap(), write(1, true, Method::Post));
        assert_eq!(decide(&create(), row(1, false)).unwrap_err().kind, ErrorKind::Conflict);
    }

    #[test]
    fn updates_create_revive_or_continue_the_versions() {
        assert_eq!(decide(&update(None), None).unwrap(), write(1, true, Method::Put));
        assert_eq!(
            decide(&update(None), row(3, false)).unwrap(),
            write(4, false, Method::Put)
        );
        assert_eq!(
            decide(&update(None), row(2, true)).unwrap(),
            write(3, true, Method::Put),
            "a revival is created again"
        );
    }

    #[test]
    fn deletes_write_a_tombstone_only_when_there_is_something_to_delete() {
        assert_eq!(
            decide(&delete(None), row(3, false)).unwrap(),
            write(4, false, Method::Delete)
        );
        assert_eq!(decide(&delete(None), None).unwrap(), Decision::NothingToDelete);
        assert_eq!(decide(&delete(None), row(4, true)).unwrap(), Decision::NothingToDelete);
    }

    #[test]
    fn if_match_must_name_the_current_version_whatever_the_write() {
        for op in [update(Some(2)), delete(Some(2))] {
            assert!(decide(&op, row(2, false)).is_ok());
            let stale = decide(&op, row(3, false)).unwrap_err();
            assert_eq!(stale.kind, ErrorKind::PreconditionFailed);
            assert!(stale.issues[0].diagnostics.contains("W/\"3\""), "{stale}");
            assert_eq!(decide(&op, None).unwrap_err().kind, ErrorKind::PreconditionFailed);
        }
        assert_eq!(
            decide(&delete(Some(4)), row(4, true)).unwrap(),
            Decision::NothingToDelete,
            "the delete version itself matches"
        );
    }

    #[test]
    fn a_reindex_applies_to_the_version_still_current() {
        assert_eq!(decide(&reindex(2), row(2, false)).unwrap(), Decision::Reindex);
        assert_eq!(decide(&reindex(2), row(3, false)).unwrap(), Decision::Stale);
        assert_eq!(decide(&reindex(2), row(2, true)).unwrap(), Decision::Stale);
        assert_eq!(decide(&reindex(2), None).unwrap(), Decision::Stale);
    }

    #[test]
    fn an_update_equal_but_for_version_meta_is_unchanged() {
        let stored = StoredVersion {
            version_id: 2,
            last_updated: Instant::from_micros(0),
            content: Some(Bytes::from_static(
                br#"{"resourceType":"Patient","id":"p","meta":{"versionId":"2","lastUpdated":"2020-01-01T00:00:00Z"},"active":true}"#,
            )),
        };
        let same: Map<String, Value> =
            serde_json::from_str(r#"{"active":true,"id":"p","resourceType":"Patient"}"#).unwrap();
        assert!(
            unchanged(&stored, &same, None).unwrap(),
            "element order and version meta aside"
        );
        assert!(unchanged(&stored, &same, Some(2)).unwrap());
        assert!(
            !unchanged(&stored, &same, Some(1)).unwrap(),
            "If-Match names another version"
        );
        let mut other = same.clone();
        other.insert("active".into(), Value::Bool(false));
        assert!(!unchanged(&stored, &other, None).unwrap());
        let mut tagged = same.clone();
        tagged.insert("meta".into(), serde_json::json!({"tag": [{"code": "x"}]}));
        assert!(!unchanged(&stored, &tagged, None).unwrap(), "other meta is content");
        let deleted = StoredVersion {
            content: None,
            ..stored
        };
        assert!(!unchanged(&deleted, &same, None).unwrap());
    }
}
