//! `_include` and `_revinclude` as SQL: the live resources that a page's rows reference through
//! the named parameters, and the resources that reference the page's rows, each with its served
//! JSON and at most a limit of them.

use super::clause::push_clause;
use crate::search::plan::Plan;
use crate::search::query::Clause;
use crate::search::request::{ANY_TYPE, Include};
use crate::search::sql_parts::{push_content_column, push_content_join, push_ints, push_param_ids};
use crate::sql::{Dialect, Sql, SqlValue};

/// The resources that the page rows `rids` reference through `include`: columns `rid, type, id,
/// version_id, content`; at most `limit` of them.
/// With `filter`, only the resources that meet it (what the caller may read).
pub fn include_query(dialect: Dialect, include: &Include, rids: &[i64], limit: u32, filter: Option<&Clause>) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT t.rid, t.type, t.id, t.version_id, ");
    push_content_column(&mut sql, "c");
    sql.push(" FROM resource t ");
    push_content_join(&mut sql, "t", "c");
    sql.push(
        " WHERE t.rid IN (SELECT t2.rid FROM search_reference i JOIN resource t2 \
         ON t2.type = i.target_type AND t2.id = i.target_id WHERE i.rid IN (",
    );
    push_ints(&mut sql, rids);
    sql.push(") AND ");
    push_param_ids(&mut sql, "i.param", &include.param_ids);
    sql.push(" AND NOT t2.deleted");
    if let Some(target) = &include.target_type {
        sql.push(" AND t2.type = ").bind(SqlValue::Text(target.clone()));
    }
    sql.push(")");
    push_filter(&mut sql, filter, "t");
    sql.push(" ORDER BY t.rid LIMIT ").bind(SqlValue::Int(i64::from(limit)));
    sql
}

/// The `include.source_type` resources that reference any of `targets` (type, id) through
/// `include`: columns `rid, type, id, version_id, content`; at most `limit` of them; with `filter`,
/// only those that meet it.
pub fn revinclude_query(
    dialect: Dialect,
    include: &Include,
    targets: &[(String, String)],
    limit: u32,
    filter: Option<&Clause>,
) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT s.rid, s.type, s.id, s.version_id, ");
    push_content_column(&mut sql, "c");
    sql.push(" FROM resource s ");
    push_content_join(&mut sql, "s", "c");
    sql.push(" WHERE ");
    // From any type, the parameter ids (one per type and parameter) say which.
    if include.source_type != ANY_TYPE {
        sql.push("s.type = ")
            .bind(SqlValue::Text(include.source_type.clone()))
            .push(" AND ");
    }
    sql.push("s.rid IN (SELECT i.rid FROM search_reference i WHERE ");
    push_param_ids(&mut sql, "i.param", &include.param_ids);
    sql.push(" AND (");
    let mut by_type: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (t, id) in targets {
        if include.target_type.as_deref().is_none_or(|wanted| wanted == t) {
            by_type.entry(t).or_default().push(id);
        }
    }
    if by_type.is_empty() {
        sql.push("FALSE");
    }
    for (n, (t, ids)) in by_type.iter().enumerate() {
        if n > 0 {
            sql.push(" OR ");
        }
        sql.push("(i.target_type = ")
            .bind(SqlValue::Text((*t).to_owned()))
            .push(" AND i.target_id IN (");
        for (m, id) in ids.iter().enumerate() {
            if m > 0 {
                sql.push(", ");
            }
            sql.bind(SqlValue::Text((*id).to_owned()));
        }
        sql.push("))");
    }
    sql.push("))");
    push_filter(&mut sql, filter, "s");
    sql.push(" ORDER BY s.rid LIMIT ").bind(SqlValue::Int(i64::from(limit)));
    sql
}

/// ` AND` the `filter` clause on the resource `alias`, in the plain form of the dialect.
fn push_filter(sql: &mut Sql, filter: Option<&Clause>, alias: &str) {
    if let Some(filter) = filter {
        sql.push(" AND ");
        let form = Plan::sets().form(sql.dialect, 0);
        push_clause(sql, filter, alias, 0, form);
    }
}

#[cfg(test)]
mod tests {
    //! Golden SQL: the exact text each parameter type and shape compiles to, per dialect.

    use super::*;
    use crate::search::compile::tests::request;

    #[test]
    fn includes_follow_references_of_the_page() {
        let r = request(
            "Observation",
            "_include=Observation:subject:Patient&_revinclude=Provenance:target",
        );
        let sql = include_query(Dialect::Sqlite, &r.includes[0], &[3, 4], 10, None);
        assert_eq!(
            sql.text,
            "SELECT t.rid, t.type, t.id, t.version_id, c.content FROM resource t JOIN resource c ON c.rid = t.rid WHERE t.rid IN \
             (SELECT t2.rid FROM search_reference i JOIN resource t2 ON t2.type = i.target_type AND t2.id = i.target_id \
             WHERE i.rid IN (?1, ?2) AND i.param = ?3 AND NOT t2.deleted AND t2.type = ?4) ORDER BY t.rid LIMIT ?5"
        );
        let sql = revinclude_query(
            Dialect::Postgres,
            &r.revincludes[0],
            &[("Observation".into(), "a".into()), ("Observation".into(), "b".into())],
            10,
            None,
        );
        assert!(
            sql.text
                .contains("AND ((i.target_type = $3 AND i.target_id IN ($4, $5)))) ORDER BY s.rid LIMIT $6"),
            "{}",
            sql.text
        );
    }
}
