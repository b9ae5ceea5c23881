//! Writing a group of writes (a transaction Bundle) in bulk.
//!
//! Written one by one, each resource costs a few statements and round trips, and on SQLite each
//! index-table statement re-reads the resource's whole payload; for a Bundle of thousands of
//! entries that overhead was four fifths of the time. So for a group, a backend reads the current
//! versions of the resources it updates or deletes in one query, `plan` works out every row the
//! group writes, and the backend writes each table's rows with a few multi-row statements. The
//! plan is the same for both backends; only how rows reach the database differs
//! (`sqlite::group`, `postgres::group`).
//!
//! The one-by-one path stays the reference. A group this cannot take (a re-index, a resource
//! written twice) goes there, and so does a group whose bulk write fails in the database (a
//! create whose id was taken meanwhile, say): it is rolled back and written again one by one, so
//! the error names its entry exactly as it always did. A refused `If-Match` is found while
//! planning, before anything is written, and reported directly.

use super::index::{Cell, INDEX_TABLES, IndexTable, fold_cells, table_of};
use super::rules::{self, CurrentRow, Decision, NewVersion, Owners};
use super::{GroupWriteError, Method, WriteOp, Written, stamp_and_serialise};
use crate::model::{Id, Instant, ResourceType, VersionId};
use crate::search::IndexRow;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};

/// Why a bulk write stopped: a FHIR rule refused an op (that is the answer), or the database
/// failed (the backend rolls back and writes the group one by one, which names the failing op).
pub(crate) enum BulkFailure {
    Refused(GroupWriteError),
    Database(crate::error::Error),
    /// PostgreSQL: the group's transaction is older than one whose versions it replaces; it must
    /// run again in a new one (see "History positions" in `store::postgres`).
    Restart,
}

impl From<sqlx::Error> for BulkFailure {
    fn from(e: sqlx::Error) -> Self {
        BulkFailure::Database(e.into())
    }
}

/// A resource's current row, as the bulk write reads it before planning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current {
    pub rid: i64,
    pub version_id: VersionId,
    pub deleted: bool,
}

impl Current {
    fn row(self) -> CurrentRow {
        CurrentRow {
            version_id: self.version_id,
            deleted: self.deleted,
        }
    }
}

/// The current rows of the resources a group updates or deletes, by type and id.
pub(crate) type CurrentVersions = HashMap<(ResourceType, String), Current>;

/// Records a current row as a backend read it (`type`, `id`, `rid`, `version_id`, `deleted`).
pub(crate) fn record_current(current: &mut CurrentVersions, type_name: &str, id: String, row: Current) {
    // Every stored type is one this server knows; a row of another cannot be in the group.
    if let Some(resource_type) = ResourceType::parse(type_name) {
        current.insert((resource_type, id), row);
    }
}

/// One new version: a row of `resource` (inserted when `rid` is new, else replaced) and a row of
/// `resource_history` at `seq`.
pub(crate) struct VersionRow<'a> {
    pub rid: i64,
    pub seq: i64,
    pub resource_type: ResourceType,
    pub id: &'a Id,
    pub version_id: VersionId,
    pub method: Method,
    /// The stored JSON; `None` for a delete.
    pub content: Option<Bytes>,
}

/// Every row a group writes, worked out before any is written.
pub(crate) struct GroupPlan<'a> {
    /// The time of every version in the group: a transaction happens at one instant.
    pub now: Instant,
    pub versions: Vec<VersionRow<'a>>,
    /// Resources that existed before the group: their old index rows go.
    pub replaced: Vec<i64>,
    /// The new index rows, per table of `INDEX_TABLES`, each with the rid it indexes.
    pub index: [Vec<(i64, &'a IndexRow)>; 7],
    /// The owners of the new versions (`rules::Owners`): a patient and a version's `seq`.
    pub owners: Vec<(String, i64)>,
    /// The deletes, whose owners are those of the version they delete: the delete's `seq`, and
    /// the type, id and version of the version deleted.
    pub inherited_owners: Vec<(i64, ResourceType, &'a Id, VersionId)>,
    /// What `Store::write_all` answers, in the order of the ops.
    pub outcomes: Vec<Option<Written>>,
}

/// True when `ops` can be written in bulk: creates, updates and deletes, each resource once (a
/// later write of the same resource would have to see the earlier one).
pub(crate) fn can_write_in_bulk(ops: &[WriteOp]) -> bool {
    let mut seen = HashSet::with_capacity(ops.len());
    ops.iter().all(|op| match op {
        WriteOp::Reindex { .. } => false,
        _ => seen.insert(op.target()),
    })
}

/// The resources whose current rows `plan` needs: those the group updates or deletes. (A create
/// has a new server-assigned id; should it exist after all, its insert fails.)
pub(crate) fn to_read(ops: &[WriteOp]) -> impl Iterator<Item = (ResourceType, &Id)> {
    ops.iter()
        .filter(|op| matches!(op, WriteOp::Update { .. } | WriteOp::Delete { .. }))
        .map(WriteOp::target)
}

/// How many new rids `plan` will take: one per create and per update of a resource never stored.
pub(crate) fn new_resource_count(ops: &[WriteOp], current: &CurrentVersions) -> usize {
    ops.iter()
        .filter(|op| match op {
            WriteOp::Create { .. } => true,
            WriteOp::Update { resource_type, id, .. } => lookup(current, *resource_type, id).is_none(),
            WriteOp::Delete { .. } | WriteOp::Reindex { .. } => false,
        })
        .count()
}

/// Plans the rows of `ops` (which `can_write_in_bulk`) given the `current` rows of the resources
/// it updates or deletes. New resources take their rids from `new_rids`, new versions their
/// history `seq`s from `seqs`, in order. Fails, naming the op, when an `If-Match` does not hold.
pub(crate) fn plan<'a>(
    ops: &'a [WriteOp],
    current: &CurrentVersions,
    new_rids: &mut impl Iterator<Item = i64>,
    seqs: &mut impl Iterator<Item = i64>,
    now: Instant,
) -> Result<GroupPlan<'a>, GroupWriteError> {
    let mut plan = GroupPlan {
        now,
        versions: Vec::with_capacity(ops.len()),
        replaced: Vec::new(),
        index: std::array::from_fn(|_| Vec::new()),
        owners: Vec::new(),
        inherited_owners: Vec::new(),
        outcomes: Vec::with_capacity(ops.len()),
    };
    for (position, op) in ops.iter().enumerate() {
        let (resource_type, id) = op.target();
        // A create has a new server-assigned id: it is absent (should it exist after all, its
        // insert fails and the group is written one by one).
        let found = match op {
            WriteOp::Create { .. } => None,
            _ => lookup(current, resource_type, id),
        };
        let decision = rules::decide(op, found.map(|c| c.row())).map_err(|error| GroupWriteError {
            index: Some(position),
            error,
        })?;
        let outcome = match decision {
            Decision::Write(version) => {
                let rid = match found {
                    None => next_rid(new_rids),
                    Some(c) => {
                        plan.replaced.push(c.rid);
                        c.rid
                    }
                };
                let (resource, index) = match op {
                    WriteOp::Create { resource, index, .. } | WriteOp::Update { resource, index, .. } => {
                        (Some(resource), index.as_slice())
                    }
                    WriteOp::Delete { .. } | WriteOp::Reindex { .. } => (None, [].as_slice()),
                };
                let content = resource.map(|r| stamp_and_serialise(r.clone(), id, version.version_id, now));
                let seq = seqs.next().expect("the backend gives a seq to every version");
                plan.add_index(rid, index);
                match rules::owners(op) {
                    Owners::Patients(patients) => plan.owners.extend(patients.into_iter().map(|p| (p, seq))),
                    Owners::OfDeletedVersion => {
                        plan.inherited_owners
                            .push((seq, resource_type, id, version.version_id - 1));
                    }
                }
                Some(plan.add_version(rid, seq, resource_type, id, version, content))
            }
            // Nothing to delete: no version, like the one-by-one path.
            Decision::NothingToDelete => None,
            Decision::Reindex | Decision::Stale => {
                unreachable!("re-indexing is not written in bulk (can_write_in_bulk)")
            }
        };
        plan.outcomes.push(outcome);
    }
    for (rows, table) in plan.index.iter_mut().zip(&INDEX_TABLES) {
        rows.sort_unstable_by(|(_, a), (_, b)| index_order(table, a, b));
    }
    Ok(plan)
}

/// The order of a table's value index: parameter, then the leading value. Rows inserted in that
/// order fill neighbouring index pages one after another instead of pages all over the index,
/// which made a Bundle's index inserts a fifth faster (references: twice as fast).
fn index_order(table: &IndexTable, a: &IndexRow, b: &IndexRow) -> std::cmp::Ordering {
    let leading = |value| {
        let (_, cell) = fold_cells(value, (0, None), |(i, found), cell| {
            (i + 1, if i == table.leading { Some(cell) } else { found })
        });
        cell.expect("every index value has its table's columns")
    };
    a.param_id
        .cmp(&b.param_id)
        .then_with(|| match (leading(&a.value), leading(&b.value)) {
            (Cell::Text(x), Cell::Text(y)) => x.cmp(&y),
            (Cell::Int(x), Cell::Int(y)) => x.cmp(&y),
            (Cell::Real(x), Cell::Real(y)) => x.total_cmp(&y),
            _ => std::cmp::Ordering::Equal,
        })
}

impl<'a> GroupPlan<'a> {
    fn add_version(
        &mut self,
        rid: i64,
        seq: i64,
        resource_type: ResourceType,
        id: &'a Id,
        version: NewVersion,
        content: Option<Bytes>,
    ) -> Written {
        self.versions.push(VersionRow {
            rid,
            seq,
            resource_type,
            id,
            version_id: version.version_id,
            method: version.method,
            content: content.clone(),
        });
        Written::new(resource_type, id.clone(), version, self.now, content)
    }

    fn add_index(&mut self, rid: i64, rows: &'a [IndexRow]) {
        for row in rows {
            self.index[table_of(&row.value)].push((rid, row));
        }
    }
}

fn lookup(current: &CurrentVersions, resource_type: ResourceType, id: &Id) -> Option<Current> {
    current.get(&(resource_type, id.as_str().to_owned())).copied()
}

fn next_rid(new_rids: &mut impl Iterator<Item = i64>) -> i64 {
    new_rids
        .next()
        .expect("the backend reserves new_resource_count rids before planning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::search::IndexValue;
    use serde_json::{Map, Value, json};
    use std::sync::Arc;

    fn patient(id: &str) -> (ResourceType, Id, Map<String, Value>) {
        let resource = json!({"resourceType": "Patient", "id": id})
            .as_object()
            .unwrap()
            .clone();
        (
            ResourceType::parse("Patient").unwrap(),
            Id::parse(id).unwrap(),
            resource,
        )
    }

    fn token(code: &str) -> IndexRow {
        IndexRow {
            param: Arc::from("gender"),
            param_id: 1,
            group: None,
            value: IndexValue::Token {
                system: None,
                code: Some(code.into()),
                text: None,
            },
        }
    }

    fn create(id: &str) -> WriteOp {
        let (resource_type, id, resource) = patient(id);
        WriteOp::Create {
            resource_type,
            id,
            resource,
            index: vec![token("female")],
        }
    }

    fn update(id: &str, if_match: Option<VersionId>) -> WriteOp {
        let (resource_type, id, resource) = patient(id);
        WriteOp::Update {
            resource_type,
            id,
            resource,
            index: vec![token("male"), token("other")],
            if_match,
        }
    }

    fn delete(id: &str) -> WriteOp {
        let (resource_type, id, _) = patient(id);
        WriteOp::Delete {
            resource_type,
            id,
            if_match: None,
        }
    }

    fn current(entries: &[(&str, i64, VersionId, bool)]) -> CurrentVersions {
        entries
            .iter()
            .map(|&(id, rid, version_id, deleted)| {
                (
                    (ResourceType::parse("Patient").unwrap(), id.to_owned()),
                    Current {
                        rid,
                        version_id,
                        deleted,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn plans_versions_rids_and_index_rows() {
        let ops = vec![
            create("a"),
            update("b", None),    // exists: version 3 on rid 7
            update("c", None),    // never stored: a new rid, version 1
            update("d", Some(2)), // deleted at version 2: revived as version 3
            delete("e"),          // exists: a tombstone
            delete("f"),          // absent: nothing
        ];
        let current = current(&[("b", 7, 3, false), ("d", 8, 2, true), ("e", 9, 1, false)]);
        assert_eq!(new_resource_count(&ops, &current), 2);
        let now = Instant::from_micros(1_000_000);
        let plan = plan(&ops, &current, &mut (100..), &mut (1000..), now).unwrap();

        let rows: Vec<_> = plan
            .versions
            .iter()
            .map(|v| (v.rid, v.id.as_str(), v.version_id, v.method, v.content.is_some()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (100, "a", 1, Method::Post, true),
                (7, "b", 4, Method::Put, true),
                (101, "c", 1, Method::Put, true),
                (8, "d", 3, Method::Put, true),
                (9, "e", 2, Method::Delete, false),
            ]
        );
        assert_eq!(plan.replaced, vec![7, 8, 9]);
        assert_eq!(
            plan.versions.iter().map(|v| v.seq).collect::<Vec<_>>(),
            [1000, 1001, 1002, 1003, 1004],
            "seqs in the order of the group"
        );
        // A Patient's own compartment goes unrecorded; a delete inherits the owners of the
        // version it deletes.
        assert!(plan.owners.is_empty());
        let inherited: Vec<(i64, &str, VersionId)> = plan
            .inherited_owners
            .iter()
            .map(|(seq, _, id, v)| (*seq, id.as_str(), *v))
            .collect();
        assert_eq!(inherited, [(1004, "e", 1)]);
        // Token rows in the order of the token index: by code.
        let tokens: Vec<(i64, &str)> = plan.index[1]
            .iter()
            .map(|(rid, row)| match &row.value {
                IndexValue::Token { code, .. } => (*rid, code.as_deref().unwrap()),
                _ => unreachable!(),
            })
            .collect();
        let rids_of = |code| tokens.iter().filter(|t| t.1 == code).map(|t| t.0).collect::<Vec<_>>();
        assert_eq!(
            tokens.iter().map(|t| t.1).collect::<Vec<_>>(),
            ["female", "male", "male", "male", "other", "other", "other"]
        );
        assert_eq!(rids_of("male").len(), 3);
        let mut other = rids_of("other");
        other.sort();
        assert_eq!(other, vec![7, 8, 101]);
        assert!(plan.index.iter().enumerate().all(|(t, rows)| t == 1 || rows.is_empty()));

        let created: Vec<Option<bool>> = plan.outcomes.iter().map(|w| w.as_ref().map(|w| w.created)).collect();
        assert_eq!(
            created,
            vec![Some(true), Some(false), Some(true), Some(true), Some(false), None]
        );
        let stored: Value = serde_json::from_slice(plan.versions[1].content.as_ref().unwrap()).unwrap();
        assert_eq!(stored["meta"]["versionId"], "4");
        assert!(plan.outcomes.iter().flatten().all(|w| w.last_updated == now));
    }

    #[test]
    fn each_version_is_recorded_under_the_patients_it_references() {
        let observation = WriteOp::Create {
            resource_type: ResourceType::parse("Observation").unwrap(),
            id: Id::parse("o").unwrap(),
            resource: json!({"resourceType": "Observation", "id": "o"})
                .as_object()
                .unwrap()
                .clone(),
            index: vec![IndexRow {
                param: Arc::from("subject"),
                param_id: crate::search::registry::param_id("Observation", "subject"),
                group: None,
                value: IndexValue::Reference {
                    target_type: Some("Patient".into()),
                    target_id: Some("p9".into()),
                    url: "Patient/p9".into(),
                },
            }],
        };
        let plan = plan(
            std::slice::from_ref(&observation),
            &current(&[]),
            &mut (1..),
            &mut (50..),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(plan.owners, [("p9".to_owned(), 50)]);
    }

    #[test]
    fn a_stale_if_match_names_its_op() {
        let ops = vec![create("a"), update("b", Some(1))];
        let current = current(&[("b", 7, 2, false)]);
        let error = plan(&ops, &current, &mut (1..), &mut (1..), Instant::now())
            .err()
            .unwrap();
        assert_eq!(error.index, Some(1));
        assert_eq!(error.error.kind, ErrorKind::PreconditionFailed);
    }

    #[test]
    fn bulk_takes_each_resource_once_and_no_reindex() {
        assert!(can_write_in_bulk(&[create("a"), update("b", None), delete("c")]));
        assert!(!can_write_in_bulk(&[create("a"), delete("a")]));
        let (resource_type, id, _) = patient("a");
        let reindex = WriteOp::Reindex {
            resource_type,
            id,
            version_id: 1,
            index: Vec::new(),
        };
        assert!(!can_write_in_bulk(&[reindex]));
        let ops = [create("a"), update("b", None), delete("c")];
        let read: Vec<&str> = to_read(&ops).map(|(_, id)| id.as_str()).collect();
        assert_eq!(read, vec!["b", "c"]);
    }
}
