//! The owners of versions written before the server recorded them (see migration
//! `history_owner`): a database of an older server has a row in `history_owner_backfill` naming
//! the last such version (`up_to`) and how far the back-fill has come (`done`). A `$reindex` job
//! reads those versions a page at a time (`history_between`), works out whose each one was, and
//! records it (`record`); the SQL here is the same on both backends, each runs it its own way.

use super::rules::Owners;
use crate::model::VersionId;
use crate::sql::{Dialect, Sql, SqlValue};

/// How far the back-fill of owners has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerBackfill {
    /// The last version (`seq`) written before owners were recorded.
    pub up_to: i64,
    /// The versions up to this `seq` have their owners.
    pub done: i64,
}

/// Whose one stored version was.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionOwners {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub owners: Owners,
}

/// `SELECT up_to, done` of the back-fill, no row when there is none to do.
pub(crate) const BACKFILL_STATE: &str = "SELECT up_to, done FROM history_owner_backfill";

/// The columns of `sql::history_page` for the versions after `after` up to `up_to`, oldest
/// first, at most `limit`.
pub(crate) fn history_between(dialect: Dialect, after: i64, up_to: i64, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT h.seq, h.type, h.id, h.version_id, h.last_updated, h.method, ");
    sql.content_column("h.content");
    sql.push(" FROM resource_history h WHERE h.seq > ")
        .bind(SqlValue::Int(after))
        .push(" AND h.seq <= ")
        .bind(SqlValue::Int(up_to))
        .push(" ORDER BY h.seq LIMIT ")
        .bind(SqlValue::Int(i64::from(limit)));
    sql
}

/// The statements that record `versions` (in order: a delete copies the owners of the version
/// before it, which comes earlier) and mark the back-fill done up to `through`; when that reaches
/// `up_to`, they also give their owners to the deletes written since of versions back-filled
/// only now, and end the back-fill. Run together in one transaction; running them twice changes
/// nothing.
pub(crate) fn record(dialect: Dialect, versions: &[VersionOwners], through: i64, up_to: i64) -> Vec<Sql> {
    let mut statements = Vec::new();
    for version in versions {
        match &version.owners {
            Owners::Patients(patients) => {
                for patient in patients {
                    let mut sql = Sql::new(dialect);
                    sql.push("INSERT INTO history_owner (patient, seq) VALUES (")
                        .bind(SqlValue::Text(patient.clone()))
                        .push(", ")
                        .bind(SqlValue::Int(version.seq))
                        .push(") ON CONFLICT DO NOTHING");
                    statements.push(sql);
                }
            }
            Owners::OfDeletedVersion => {
                let mut sql = Sql::new(dialect);
                sql.push("INSERT INTO history_owner (patient, seq) SELECT o.patient, ")
                    .bind(SqlValue::Int(version.seq))
                    .push(" FROM resource_history p JOIN history_owner o ON o.seq = p.seq WHERE p.type = ")
                    .bind(SqlValue::Text(version.resource_type.clone()))
                    .push(" AND p.id = ")
                    .bind(SqlValue::Text(version.id.clone()))
                    .push(" AND p.version_id = ")
                    .bind(SqlValue::Int(version.version_id - 1))
                    .push(" ON CONFLICT DO NOTHING");
                statements.push(sql);
            }
        }
    }
    let mut progress = Sql::new(dialect);
    progress
        .push("UPDATE history_owner_backfill SET done = ")
        .bind(SqlValue::Int(through));
    statements.push(progress);
    if through >= up_to {
        let mut deletes = Sql::new(dialect);
        deletes
            .push(
                "INSERT INTO history_owner (patient, seq) SELECT o.patient, h.seq FROM resource_history h \
                 JOIN resource_history p ON p.type = h.type AND p.id = h.id AND p.version_id = h.version_id - 1 \
                 JOIN history_owner o ON o.seq = p.seq WHERE h.method = 'DELETE' AND h.seq > ",
            )
            .bind(SqlValue::Int(up_to))
            .push(" AND p.seq <= ")
            .bind(SqlValue::Int(up_to))
            .push(" ON CONFLICT DO NOTHING");
        statements.push(deletes);
        let mut end = Sql::new(dialect);
        end.push("DELETE FROM history_owner_backfill");
        statements.push(end);
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_records_owners_and_progress_and_the_last_ends_the_backfill() {
        let versions = [
            VersionOwners {
                seq: 7,
                resource_type: "Observation".into(),
                id: "o".into(),
                version_id: 1,
                owners: Owners::Patients(vec!["p1".into(), "p2".into()]),
            },
            VersionOwners {
                seq: 9,
                resource_type: "Observation".into(),
                id: "o".into(),
                version_id: 2,
                owners: Owners::OfDeletedVersion,
            },
        ];
        let page = record(Dialect::Sqlite, &versions, 9, 20);
        let texts: Vec<&str> = page.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts.len(), 4, "two owners, a copy, the progress: {texts:?}");
        assert!(texts[2].contains("p.version_id = ?4"));
        assert_eq!(
            page[2].binds[3],
            SqlValue::Int(1),
            "a delete copies the version before it"
        );
        assert_eq!(texts[3], "UPDATE history_owner_backfill SET done = ?1");
        let last = record(Dialect::Postgres, &[], 20, 20);
        assert_eq!(last.len(), 3);
        assert!(
            last[1]
                .text
                .contains("h.method = 'DELETE' AND h.seq > $1 AND p.seq <= $2")
        );
        assert_eq!(last[2].text, "DELETE FROM history_owner_backfill");
    }
}
