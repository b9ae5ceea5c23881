//! Sort keys as SQL: a resource's key by one `_sort` parameter (its smallest or largest index value
//! of the parameter, `_id`, `_lastUpdated`), and the key of a resource without a value, which sorts
//! after every real value in either direction so that a page never stops at a missing one.

use crate::search::params::SortValueKind;
use crate::search::request::{SortBy, SortKey};
use crate::search::sql_parts::{push_by_rid, push_param_ids};
use crate::sql::{Dialect, Sql, SqlValue};

/// A sort key of `resource r`, never NULL: a resource without a value sorts last either way.
pub(super) fn push_sort_expression(sql: &mut Sql, key: &SortKey) {
    match &key.by {
        SortBy::Id => {
            sql.push("r.id");
            if sql.dialect == Dialect::Postgres {
                sql.push(" COLLATE \"C\"");
            }
        }
        SortBy::LastUpdated => match sql.dialect {
            Dialect::Sqlite => {
                sql.push("r.last_updated");
            }
            Dialect::Postgres => {
                sql.push("(EXTRACT(EPOCH FROM r.last_updated) * 1000000)::bigint");
            }
        },
        SortBy::Index {
            table,
            column,
            param_ids,
            kind,
        } => {
            let aggregate = if key.descending { "max" } else { "min" };
            sql.push("COALESCE((SELECT ")
                .push(aggregate)
                .push("(i.")
                .push(column)
                .push(") FROM ")
                .push(table)
                .push(" i ");
            push_by_rid(sql, table, Some("r"));
            sql.push("WHERE i.rid = r.rid AND ");
            push_param_ids(sql, "i.param", param_ids);
            sql.push("), ").bind(no_value(*kind, key.descending)).push(")");
        }
    }
}

/// The sort key of a resource without a value: past every real value in either direction.
pub(super) fn no_value(kind: SortValueKind, descending: bool) -> SqlValue {
    match (kind, descending) {
        (SortValueKind::Text, false) => SqlValue::Text(char::MAX.to_string()),
        (SortValueKind::Text, true) => SqlValue::Text(String::new()),
        (SortValueKind::Int, false) => SqlValue::Int(i64::MAX),
        (SortValueKind::Int, true) => SqlValue::Int(i64::MIN),
        (SortValueKind::Real, false) => SqlValue::Real(1e308),
        (SortValueKind::Real, true) => SqlValue::Real(-1e308),
    }
}

/// ` AND NOT EXISTS (SELECT 1 FROM table j WHERE j.rid = alias.rid AND j.param …`, left open for
/// a further condition on `j` and `close_exists`: the sort parameter's rows of one resource.
pub(super) fn push_no_rows_of(sql: &mut Sql, table: &str, param_ids: &[i64], alias: &str) {
    sql.push(" AND NOT EXISTS (SELECT 1 FROM ").push(table).push(" j ");
    push_by_rid(sql, table, Some(alias));
    sql.push("WHERE j.rid = ").push(alias).push(".rid AND ");
    push_param_ids(sql, "j.param", param_ids);
}

#[cfg(test)]
mod tests {
    //! Golden SQL: the exact text each parameter type and shape compiles to, per dialect.

    use super::*;
    use crate::search::compile::tests::request;

    fn key_sql(dialect: Dialect, key: &SortKey) -> Sql {
        let mut sql = Sql::new(dialect);
        push_sort_expression(&mut sql, key);
        sql
    }

    #[test]
    fn an_index_key_is_the_extreme_value_in_the_sort_direction_and_missing_sorts_last() {
        let r = request("Patient", "_sort=-birthdate,name");
        let sql = key_sql(Dialect::Sqlite, &r.sort[0]);
        assert_eq!(
            sql.text,
            "COALESCE((SELECT max(i.high) FROM search_date i INDEXED BY search_date_rid WHERE i.rid = r.rid \
             AND i.param = ?1), ?2)"
        );
        assert_eq!(sql.binds[1], SqlValue::Int(i64::MIN));
        let sql = key_sql(Dialect::Postgres, &r.sort[1]);
        assert_eq!(
            sql.text,
            "COALESCE((SELECT min(i.normalized) FROM search_string i WHERE i.rid = r.rid AND i.param = $1), $2)"
        );
        assert_eq!(sql.binds[1], SqlValue::Text(char::MAX.to_string()));
    }

    #[test]
    fn id_and_last_updated_are_columns_of_the_resource() {
        let r = request("Patient", "_sort=_id,_lastUpdated");
        assert_eq!(key_sql(Dialect::Postgres, &r.sort[0]).text, "r.id COLLATE \"C\"");
        assert_eq!(key_sql(Dialect::Sqlite, &r.sort[0]).text, "r.id");
        assert_eq!(
            key_sql(Dialect::Postgres, &r.sort[1]).text,
            "(EXTRACT(EPOCH FROM r.last_updated) * 1000000)::bigint"
        );
    }
}
