//! The history SQL both backends share, built as `crate::sql` values; `store::sqlite` and
//! `store::postgres` run it and never import each other.

use super::{HistoryCursor, HistoryQuery, HistoryReach, HistoryScope};
pub use crate::sql::{Dialect, Sql, SqlValue};

/// The columns `seq, type, id, version_id, last_updated, method, content` of the history page;
/// with `before`, only versions whose `seq` is below it (see "History positions" in
/// `store::postgres`).
pub fn history_page(dialect: Dialect, query: &HistoryQuery, before: Option<i64>) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT h.seq, h.type, h.id, h.version_id, h.last_updated, h.method, ");
    sql.content_column("h.content");
    sql.push(" FROM resource_history h WHERE TRUE");
    history_filters(&mut sql, query);
    if let Some(before) = before {
        sql.push(" AND h.seq < ").bind(SqlValue::Int(before));
    }
    let newest_first = match query.cursor {
        HistoryCursor::Newest => true,
        HistoryCursor::OlderThan(seq) => {
            sql.push(" AND h.seq < ").bind(SqlValue::Int(seq));
            true
        }
        HistoryCursor::NewerThan(seq) => {
            sql.push(" AND h.seq > ").bind(SqlValue::Int(seq));
            false
        }
    };
    sql.push(if newest_first {
        " ORDER BY h.seq DESC LIMIT "
    } else {
        " ORDER BY h.seq ASC LIMIT "
    });
    sql.bind(SqlValue::Int(i64::from(query.count) + 1));
    sql
}

/// `SELECT count(*)` over the same scope and filters as `history_page`, without the cursor.
pub fn history_total(dialect: Dialect, query: &HistoryQuery) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT count(*) FROM resource_history h WHERE TRUE");
    history_filters(&mut sql, query);
    sql
}

fn history_filters(sql: &mut Sql, query: &HistoryQuery) {
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(resource_type) => {
            sql.push(" AND h.type = ")
                .bind(SqlValue::Text(resource_type.as_str().to_owned()));
        }
        HistoryScope::Instance(resource_type, id) => {
            sql.push(" AND h.type = ")
                .bind(SqlValue::Text(resource_type.as_str().to_owned()));
            sql.push(" AND h.id = ").bind(SqlValue::Text(id.as_str().to_owned()));
        }
    }
    if let Some(reach) = &query.reach {
        push_reach(sql, reach);
    }
    if let Some(since) = query.since {
        sql.push(" AND h.last_updated >= ").bind(SqlValue::Time(since));
    }
    if let Some(at) = query.at {
        // A version is current from its own last_updated until the next version's. It overlaps
        // [start, end) when it began before `end` and no later version had replaced it by `start`.
        sql.push(" AND h.last_updated < ").bind(SqlValue::Time(at.end));
        sql.push(
            " AND NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.type = h.type AND n.id = h.id \
             AND n.version_id > h.version_id AND n.last_updated <= ",
        )
        .bind(SqlValue::Time(at.start))
        .push(")");
    }
}

/// ` AND (…)`: only the versions `reach` lets the caller see.
fn push_reach(sql: &mut Sql, reach: &HistoryReach) {
    let push_types = |sql: &mut Sql, types: &[String]| {
        sql.push("h.type IN (");
        for (n, t) in types.iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.bind(SqlValue::Text(t.clone()));
        }
        sql.push(")");
    };
    push_consent_reach(sql, reach);
    if reach.everything {
        return;
    }
    sql.push(" AND (FALSE");
    if !reach.open_types.is_empty() {
        sql.push(" OR ");
        push_types(sql, &reach.open_types);
    }
    for (patient, types) in &reach.patients {
        sql.push(" OR (");
        if !types.is_empty() {
            push_types(sql, types);
            sql.push(" AND ");
        }
        // Its owners record the versions in a patient's compartment but the Patient's own,
        // which are its by type and id.
        sql.push("(h.seq IN (SELECT o.seq FROM history_owner o WHERE o.patient = ")
            .bind(SqlValue::Text(patient.as_str().to_owned()))
            .push(") OR (h.type = 'Patient' AND h.id = ")
            .bind(SqlValue::Text(patient.as_str().to_owned()))
            .push(")))");
    }
    sql.push(")");
}

/// ` AND …`: the versions consents leave the caller (see `HistoryReach`).
fn push_consent_reach(sql: &mut Sql, reach: &HistoryReach) {
    let push_in = |sql: &mut Sql, expression: &str, patients: &[String]| {
        sql.in_list(expression, patients.iter().map(String::as_str));
    };
    if !reach.hidden_patients.is_empty() {
        sql.push(" AND NOT EXISTS (SELECT 1 FROM history_owner o WHERE o.seq = h.seq AND ");
        push_in(sql, "o.patient", &reach.hidden_patients);
        sql.push(") AND NOT (h.type = 'Patient' AND ");
        push_in(sql, "h.id", &reach.hidden_patients);
        sql.push(")");
    }
    if let Some(only) = &reach.only_patients {
        // The audit trail is not a patient's data, though it names patients.
        sql.push(" AND (h.type = 'AuditEvent' OR (NOT EXISTS (SELECT 1 FROM history_owner o WHERE o.seq = h.seq");
        if !only.is_empty() {
            sql.push(" AND NOT ");
            push_in(sql, "o.patient", only);
        }
        sql.push(") AND (h.type <> 'Patient'");
        if !only.is_empty() {
            sql.push(" OR ");
            push_in(sql, "h.id", only);
        }
        sql.push(")))");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Id, InstantRange, ResourceType};

    fn query(scope: HistoryScope, cursor: HistoryCursor) -> HistoryQuery {
        HistoryQuery {
            scope,
            since: None,
            at: None,
            cursor,
            count: 10,
            reach: None,
        }
    }

    #[test]
    fn instance_history_on_sqlite_uses_numbered_placeholders() {
        let patient = ResourceType::parse("Patient").unwrap();
        let q = query(
            HistoryScope::Instance(patient, Id::parse("p1").unwrap()),
            HistoryCursor::OlderThan(42),
        );
        let sql = history_page(Dialect::Sqlite, &q, None);
        assert_eq!(
            sql.text,
            "SELECT h.seq, h.type, h.id, h.version_id, h.last_updated, h.method, h.content FROM resource_history h \
             WHERE TRUE AND h.type = ?1 AND h.id = ?2 AND h.seq < ?3 ORDER BY h.seq DESC LIMIT ?4"
        );
        assert_eq!(sql.binds.last(), Some(&SqlValue::Int(11)));
    }

    #[test]
    fn previous_page_on_postgres_walks_forward_and_reads_json_as_text() {
        let q = query(HistoryScope::System, HistoryCursor::NewerThan(7));
        let sql = history_page(Dialect::Postgres, &q, None);
        assert!(sql.text.contains("h.content::text"));
        assert!(
            sql.text.ends_with("AND h.seq > $1 ORDER BY h.seq ASC LIMIT $2"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn a_patients_history_is_the_versions_it_owned_and_a_bound_cuts_the_page() {
        let mut q = query(
            HistoryScope::Type(ResourceType::parse("Observation").unwrap()),
            HistoryCursor::Newest,
        );
        q.reach = Some(HistoryReach::patient(Id::parse("p1").unwrap()));
        let sql = history_page(Dialect::Postgres, &q, Some(1 << 40));
        assert_eq!(
            sql.text,
            "SELECT h.seq, h.type, h.id, h.version_id, h.last_updated, h.method, h.content::text \
             FROM resource_history h WHERE TRUE AND h.type = $1 \
             AND (FALSE OR ((h.seq IN (SELECT o.seq FROM history_owner o WHERE o.patient = $2) \
             OR (h.type = 'Patient' AND h.id = $3)))) AND h.seq < $4 ORDER BY h.seq DESC LIMIT $5"
        );
        assert_eq!(sql.binds[3], SqlValue::Int(1 << 40));
    }

    #[test]
    fn at_filter_binds_range_end_then_start() {
        let mut q = query(HistoryScope::System, HistoryCursor::Newest);
        let range = InstantRange::parse("2020").unwrap();
        q.at = Some(range);
        let sql = history_total(Dialect::Postgres, &q);
        assert_eq!(sql.binds, vec![SqlValue::Time(range.end), SqlValue::Time(range.start)]);
        assert!(sql.text.contains("n.last_updated <= $2"));
    }
}
