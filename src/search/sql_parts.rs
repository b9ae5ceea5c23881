//! The small pieces of search SQL that more than one query shape writes: which rows of an index
//! table belong to a parameter or a resource, how an `EXISTS` is closed, the type condition, and
//! how the served JSON of a row is joined. A leaf: it knows `sql` and nothing of search but the
//! `Form` a clause is written in, so the composite parameter and every part of `compile` can share
//! it without importing each other.

use crate::sql::{Dialect, Sql, SqlValue};

/// How a clause backed by index rows is written; `plan` chooses one per clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `rid IN (SELECT rid …)`: every matching rid gathered once.
    Set,
    /// `EXISTS (… WHERE rid = r.rid)`, which PostgreSQL's planner turns into whichever join it
    /// estimates cheapest.
    Exists,
    /// `EXISTS (…)` tested once per candidate row: on PostgreSQL fenced (`OFFSET 0`) so the
    /// planner keeps it that way; on SQLite the plain form already runs so.
    EachRow,
}

/// Ends an `EXISTS (` subquery. For `Form::EachRow` on PostgreSQL, an `OFFSET 0` keeps the
/// planner from turning the subquery into a join, so it runs once per candidate row.
pub(super) fn close_exists(sql: &mut Sql, form: Form) {
    if form == Form::EachRow && sql.dialect == Dialect::Postgres {
        sql.push(" OFFSET 0");
    }
    sql.push(")");
}

/// On SQLite, a row-by-row test (`correlate`) reads the index table through its `(rid, param)`
/// index. Left to itself, the planner may instead scan the value index for every row it tests,
/// when its sampled statistics make the value look rare (see `store::sqlite`).
pub(super) fn push_by_rid(sql: &mut Sql, table: &str, correlate: Option<&str>) {
    if correlate.is_some() && sql.dialect == Dialect::Sqlite {
        sql.push("INDEXED BY ").push(table).push("_rid ");
    }
}

/// `column = alias.rid AND ` when the rows are tested for one resource (`correlate`), else nothing.
pub(super) fn push_correlation(sql: &mut Sql, column: &str, correlate: Option<&str>) {
    if let Some(alias) = correlate {
        sql.push(column).push(" = ").push(alias).push(".rid AND ");
    }
}

/// `column = id`, or `column IN (ids…)` for several: the rows of the parameter (on every searched type).
pub(super) fn push_param_ids(sql: &mut Sql, column: &str, ids: &[i64]) {
    if let [only] = ids {
        sql.push(column).push(" = ").bind(SqlValue::Int(*only));
        return;
    }
    sql.push(column).push(" IN (");
    push_ints(sql, ids);
    sql.push(")");
}

/// `values` as a comma-separated list of binds; `NULL` for none, so `IN (NULL)` matches nothing.
pub(super) fn push_ints(sql: &mut Sql, values: &[i64]) {
    if values.is_empty() {
        sql.push("NULL");
    }
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(SqlValue::Int(*v));
    }
}

/// `alias.type = t`, or `alias.type IN (types…)`: the searched resource types.
pub(super) fn push_type_condition(sql: &mut Sql, alias: &str, types: &[String]) {
    if let [only] = types {
        sql.push(alias).push(".type = ").bind(SqlValue::Text(only.clone()));
        return;
    }
    sql.push(alias).push(".type IN (");
    for (n, t) in types.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(SqlValue::Text(t.clone()));
    }
    sql.push(")");
}

/// The served JSON text of the row joined as `content`.
pub(super) fn push_content_column(sql: &mut Sql, content: &str) {
    match sql.dialect {
        Dialect::Sqlite => sql.push(content).push(".content"),
        Dialect::Postgres => sql.push(content).push(".content::text"),
    };
}

/// Joins the row holding the exact served text of `alias`'s current version as `content`: the
/// resource row itself on SQLite, its history row on PostgreSQL (jsonb does not keep the text).
pub(super) fn push_content_join(sql: &mut Sql, alias: &str, content: &str) {
    match sql.dialect {
        Dialect::Sqlite => {
            sql.push("JOIN resource ")
                .push(content)
                .push(" ON ")
                .push(content)
                .push(".rid = ")
                .push(alias)
                .push(".rid");
        }
        Dialect::Postgres => {
            sql.push("JOIN resource_history ")
                .push(content)
                .push(" ON ")
                .push(content)
                .push(".type = ")
                .push(alias)
                .push(".type AND ")
                .push(content)
                .push(".id = ")
                .push(alias)
                .push(".id AND ")
                .push(content)
                .push(".version_id = ")
                .push(alias)
                .push(".version_id");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parameter_id_is_an_equality_and_none_matches_nothing() {
        let mut sql = Sql::new(Dialect::Sqlite);
        push_param_ids(&mut sql, "i.param", &[7]);
        sql.push(" ");
        push_param_ids(&mut sql, "i.param", &[7, 8]);
        sql.push(" ");
        push_param_ids(&mut sql, "i.param", &[]);
        assert_eq!(sql.text, "i.param = ?1 i.param IN (?2, ?3) i.param IN (NULL)");
    }

    #[test]
    fn only_a_fenced_postgres_exists_gets_offset_zero() {
        for (dialect, form, end) in [
            (Dialect::Postgres, Form::EachRow, " OFFSET 0)"),
            (Dialect::Postgres, Form::Exists, ")"),
            (Dialect::Sqlite, Form::EachRow, ")"),
        ] {
            let mut sql = Sql::new(dialect);
            close_exists(&mut sql, form);
            assert_eq!(sql.text, end, "{dialect:?} {form:?}");
        }
    }
}
