//! The page query: the rows of one page with their served JSON and cursors. The page is ordered
//! by its sort keys and then `rid`, and starts after (or before) the cursor row by a keyset
//! condition. A lone selective clause picks the page's rids from its index rows first; a broad
//! search sorted by one index key walks that key's index in order instead of sorting every match.

use super::clause::{Candidates, push_clause_rows, push_filters, push_rid_exclusions, rows_with_exclusions};
use super::sort::{no_value, push_no_rows_of, push_sort_expression};
use crate::error::Result;
use crate::search::params::SortValueKind;
use crate::search::plan::{Form, Plan};
use crate::search::query::{Clause, invalid_request};
use crate::search::request::{Page, SearchRequest, SortBy, SortKey};
use crate::search::sql_parts::{
    close_exists, push_content_column, push_content_join, push_param_ids, push_type_condition,
};
use crate::sql::{Dialect, Sql, SqlValue};
use serde_json::Value;

/// The page query: columns `rid, type, id, version_id, content, cursor`, at most `count + 1` rows (the extra
/// row says whether another page follows). For `Page::Before` the rows come in reverse order.
pub fn page_query(dialect: Dialect, request: &SearchRequest, plan: &Plan) -> Result<Sql> {
    let mut sql = Sql::new(dialect);
    let keys = &request.sort;
    let backwards = matches!(request.page, Page::Before(_));
    let names: Vec<String> = (0..keys.len()).map(|n| format!("k{n}")).collect();

    sql.push("SELECT y.rid, y.type, y.id, y.version_id, ");
    push_content_column(&mut sql, "c");
    sql.push(", y.cursor FROM (SELECT x.rid, x.type, x.id, x.version_id, ");
    match dialect {
        Dialect::Sqlite => sql.push("json_array("),
        Dialect::Postgres => sql.push("json_build_array("),
    };
    for (key, name) in keys.iter().zip(&names) {
        let real = matches!(
            key.by,
            SortBy::Index {
                kind: SortValueKind::Real,
                ..
            }
        );
        if real && dialect == Dialect::Sqlite {
            // SQLite's JSON writes a REAL with 15 significant digits, which can turn two
            // different keys into one and so repeat or skip rows at a page boundary; 17 digits
            // read back as the same double.
            sql.push("json(printf('%!.17g', x.").push(name).push(")), ");
        } else {
            sql.push("x.").push(name).push(", ");
        }
    }
    sql.push("x.rid)");
    if dialect == Dialect::Postgres {
        sql.push("::text");
    }
    sql.push(" AS cursor");
    for name in &names {
        sql.push(", x.").push(name);
    }
    match (plan.walk_sort, keys.as_slice()) {
        (true, [key]) => {
            sql.push(" FROM (");
            push_sort_walk(&mut sql, request, plan, key)?;
            sql.push(") x");
        }
        _ => {
            sql.push(" FROM (SELECT r.rid, r.type, r.id, r.version_id");
            for (key, name) in keys.iter().zip(&names) {
                sql.push(", ");
                push_sort_expression(&mut sql, key);
                sql.push(" AS ").push(name);
            }
            sql.push(" FROM resource r WHERE ");
            match lone_selective_clause(request, plan, dialect) {
                Some((clause, exclusions)) => push_page_of_rows(&mut sql, request, clause, &exclusions, backwards)?,
                None => push_filters(&mut sql, request, plan),
            }
            sql.push(") x");
            if let Page::After(cursor) | Page::Before(cursor) = &request.page {
                sql.push(" WHERE ");
                push_keyset(&mut sql, keys, &names, cursor, backwards)?;
            }
        }
    }
    push_order(&mut sql, "x", keys, &names, backwards);
    sql.push(" LIMIT ").bind(SqlValue::Int(i64::from(request.count) + 1));
    sql.push(") y ");
    push_content_join(&mut sql, "y", "c");
    push_order(&mut sql, "y", keys, &names, backwards);
    Ok(sql)
}

/// The search's only clause, when its page can be picked from its index rows alone: unsorted
/// (by rid), and not broad (a broad clause is walked row by row instead, see `Plan`).
/// Clauses that only leave resources out by their own index rows (what consents withhold) may
/// come with it: each candidate rid is tested against them.
fn lone_selective_clause<'a>(
    request: &'a SearchRequest,
    plan: &Plan,
    dialect: Dialect,
) -> Option<(&'a Clause, Vec<&'a Clause>)> {
    let (n, exclusions) = rows_with_exclusions(&request.clauses)?;
    (request.sort.is_empty() && plan.form(dialect, n) != Form::EachRow).then(|| (&request.clauses[n], exclusions))
}

/// The page's rows of a lone clause, as filters on `r`: the first rids of its index rows after
/// the cursor, and only then their resource rows. Index rows exist only for current, undeleted
/// versions of the parameter's type (see `count_query`), so these are the page. Without this,
/// PostgreSQL looked up the resource row of every match before keeping twenty: 10 ms for the
/// 1,233 patients named `O'B…` among a million resources, against 0.3 ms for their index rows.
fn push_page_of_rows(
    sql: &mut Sql,
    request: &SearchRequest,
    clause: &Clause,
    exclusions: &[&Clause],
    backwards: bool,
) -> Result<()> {
    push_type_condition(sql, "r", &request.types);
    sql.push(" AND NOT r.deleted AND r.rid IN (SELECT DISTINCT m0.rid FROM (");
    push_clause_rows(sql, clause, 0, None, Form::Set);
    sql.push(") m0");
    let candidates = match clause {
        Clause::Chain { .. } => Candidates::Chain,
        _ => Candidates::Page,
    };
    push_rid_exclusions(sql, exclusions, "m0", candidates);
    if let Page::After(cursor) | Page::Before(cursor) = &request.page {
        // `cursor_values` checked that an unsorted cursor is one rid.
        let rid = cursor_values(&[], cursor)?.swap_remove(0);
        sql.push(match (backwards, exclusions.is_empty()) {
            (true, true) => " WHERE m0.rid < ",
            (false, true) => " WHERE m0.rid > ",
            (true, false) => " AND m0.rid < ",
            (false, false) => " AND m0.rid > ",
        })
        .bind(rid);
    }
    sql.push(if backwards {
        " ORDER BY m0.rid DESC LIMIT "
    } else {
        " ORDER BY m0.rid ASC LIMIT "
    })
    .bind(SqlValue::Int(i64::from(request.count) + 1))
    .push(")");
    Ok(())
}

/// The rows of a page sorted by one index key, found by walking that key's index in page order
/// (see `Plan::walk_sort`): columns `rid, type, id, version_id, k0`, at most `count + 1` rows.
///
/// Why: the general form reads the sort key of every match and sorts them all, which for a
/// broad search (`code=…&_sort=-date`, tens of thousands of matches) costs far more than the
/// page. Walking the index in order and testing each row's resource against the clauses stops as
/// soon as the page is full. A resource's key is its largest value (descending) or smallest
/// (ascending), so only the index row holding that extreme counts, and of two rows with the same
/// extreme value the first stored (SQLite's `rowid`, PostgreSQL's `ctid`): each resource appears
/// once, without a `DISTINCT` that would make PostgreSQL sort every row. Resources without a value come after
/// all others (before them, walking backwards), in rid order, and are looked for only when the
/// walk did not fill the page.
fn push_sort_walk(sql: &mut Sql, request: &SearchRequest, plan: &Plan, key: &SortKey) -> Result<()> {
    let SortBy::Index {
        table,
        column,
        param_ids,
        kind,
    } = &key.by
    else {
        return Err(crate::error::Error::internal("an index walk needs an index sort key"));
    };
    let backwards = matches!(request.page, Page::Before(_));
    let cursor = match &request.page {
        Page::After(cursor) | Page::Before(cursor) => Some(cursor_values(std::slice::from_ref(key), cursor)?),
        Page::First => None,
    };
    let limit = SqlValue::Int(i64::from(request.count) + 1);
    let value = format!("i.{column}");
    let descending = key.descending != backwards;
    let rid_order = if backwards { " DESC" } else { " ASC" };
    let no_value = no_value(*kind, key.descending);

    let walk = |sql: &mut Sql| {
        let join = match sql.dialect {
            // SQLite keeps the tables in the written order: the index walk drives.
            Dialect::Sqlite => "CROSS JOIN",
            Dialect::Postgres => "JOIN",
        };
        sql.push("SELECT * FROM (SELECT r.rid, r.type, r.id, r.version_id, ")
            .push(&value)
            .push(" AS k0 FROM ")
            .push(table)
            .push(" i ")
            .push(join)
            .push(" resource r ON r.rid = i.rid WHERE ");
        push_param_ids(sql, "i.param", param_ids);
        push_no_rows_of(sql, table, param_ids, "i");
        let row_id = match sql.dialect {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "ctid",
        };
        let beyond = if key.descending { " > " } else { " < " };
        sql.push(" AND (j.")
            .push(column)
            .push(beyond)
            .push(&value)
            .push(" OR (j.")
            .push(column)
            .push(" = ")
            .push(&value)
            .push(" AND j.")
            .push(row_id)
            .push(" < i.")
            .push(row_id)
            .push("))");
        close_exists(sql, Form::EachRow);
        sql.push(" AND ");
        push_filters(sql, request, plan);
        if let Some(values) = &cursor {
            sql.push(" AND ");
            push_after(
                sql,
                &[(value.clone(), descending), ("r.rid".to_owned(), backwards)],
                values,
            );
        }
        sql.push(" ORDER BY ")
            .push(&value)
            .push(if descending { " DESC" } else { " ASC" })
            .push(", r.rid")
            .push(rid_order)
            .push(" LIMIT ")
            .bind(limit.clone())
            .push(") w0");
    };
    let without_value = |sql: &mut Sql| {
        sql.push("SELECT * FROM (SELECT r.rid, r.type, r.id, r.version_id, ")
            .bind(no_value.clone());
        if *kind == SortValueKind::Text && sql.dialect == Dialect::Postgres {
            // The index columns compare in "C"; a bare parameter would leave the union's
            // column without one collation to sort by.
            sql.push("::text COLLATE \"C\"");
        }
        sql.push(" AS k0 FROM resource r WHERE ");
        push_filters(sql, request, plan);
        push_no_rows_of(sql, table, param_ids, "r");
        close_exists(sql, Form::EachRow);
        if let Some(values) = &cursor {
            // Every resource without a value sorts after every resource with one.
            match (values[0] == no_value, backwards) {
                (true, _) => {
                    sql.push(" AND r.rid")
                        .push(if backwards { " < " } else { " > " })
                        .bind(values[1].clone());
                }
                (false, false) => {}
                (false, true) => {
                    sql.push(" AND 1 = 0");
                }
            }
        }
        sql.push(" ORDER BY r.rid")
            .push(rid_order)
            .push(" LIMIT ")
            .bind(limit.clone())
            .push(") w1");
    };
    // A compound SELECT with a LIMIT stops reading once it has that many rows, so the second
    // part runs only when the first leaves the page short.
    if backwards {
        without_value(sql);
        sql.push(" UNION ALL ");
        walk(sql);
    } else {
        walk(sql);
        sql.push(" UNION ALL ");
        without_value(sql);
    }
    sql.push(" LIMIT ").bind(limit);
    Ok(())
}

/// Rows strictly after the cursor row in the page order (before it when `backwards`).
fn push_keyset(sql: &mut Sql, keys: &[SortKey], names: &[String], cursor: &[Value], backwards: bool) -> Result<()> {
    let values = cursor_values(keys, cursor)?;
    let mut columns: Vec<(String, bool)> = keys
        .iter()
        .zip(names)
        .map(|(k, name)| (format!("x.{name}"), k.descending != backwards))
        .collect();
    columns.push(("x.rid".to_owned(), backwards));
    push_after(sql, &columns, &values);
    Ok(())
}

/// The cursor's sort keys and rid, bound as the SQL types of `keys`.
fn cursor_values(keys: &[SortKey], cursor: &[Value]) -> Result<Vec<SqlValue>> {
    let damaged = || {
        invalid_request(
            "the paging cursor is damaged; start again from the first page",
            "_page_after",
        )
    };
    if cursor.len() != keys.len() + 1 {
        return Err(damaged());
    }
    let mut values = Vec::with_capacity(cursor.len());
    for (n, value) in cursor.iter().enumerate() {
        let kind = keys.get(n).map_or(SortValueKind::Int, SortKey::kind);
        values.push(match kind {
            SortValueKind::Text => SqlValue::Text(value.as_str().ok_or_else(damaged)?.to_owned()),
            SortValueKind::Int => SqlValue::Int(value.as_i64().ok_or_else(damaged)?),
            SortValueKind::Real => SqlValue::Real(value.as_f64().ok_or_else(damaged)?),
        });
    }
    Ok(values)
}

/// `(columns) > (values)` in lexicographic order, each column ascending or (`true`) descending.
fn push_after(sql: &mut Sql, columns: &[(String, bool)], values: &[SqlValue]) {
    sql.push("(");
    for i in 0..columns.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for j in 0..i {
            sql.push(&columns[j].0)
                .push(" = ")
                .bind(values[j].clone())
                .push(" AND ");
        }
        let (column, descending) = &columns[i];
        sql.push(column)
            .push(if *descending { " < " } else { " > " })
            .bind(values[i].clone())
            .push(")");
    }
    sql.push(")");
}

fn push_order(sql: &mut Sql, alias: &str, keys: &[SortKey], names: &[String], backwards: bool) {
    sql.push(" ORDER BY ");
    for (key, name) in keys.iter().zip(names) {
        let descending = key.descending != backwards;
        sql.push(alias)
            .push(".")
            .push(name)
            .push(if descending { " DESC, " } else { " ASC, " });
    }
    sql.push(alias).push(if backwards { ".rid DESC" } else { ".rid ASC" });
}

#[cfg(test)]
mod tests {
    //! Golden SQL: the exact text each parameter type and shape compiles to, per dialect.

    use super::*;
    use crate::search::compile::tests::request;

    #[test]
    fn a_lone_selective_clause_picks_its_page_from_index_rows_before_resource_rows() {
        let mut r = request("Patient", "name=o&_count=10");
        r.page = Page::Before(vec![serde_json::json!(7)]);
        let sql = page_query(Dialect::Postgres, &r, &Plan::sets()).unwrap();
        assert!(
            sql.text.contains(
                "FROM resource r WHERE r.type = $1 AND NOT r.deleted AND r.rid IN (SELECT DISTINCT m0.rid FROM \
                 (SELECT i.rid FROM search_string i WHERE i.param = $2 AND ((i.normalized >= $3 \
                 AND i.normalized < $4))) m0 WHERE m0.rid < $5 ORDER BY m0.rid DESC LIMIT $6)) x WHERE ((x.rid < $7))"
            ),
            "{}",
            sql.text
        );
        assert_eq!(sql.binds[4], SqlValue::Int(7));
        assert_eq!(sql.binds[5], SqlValue::Int(11));
        // A broad clause is walked row by row; two clauses, or a sort, go the general way.
        let broad = Plan::choose(&r, &[(0, true)]);
        for (query, plan) in [
            ("name=o", broad),
            ("name=o&gender=male", Plan::sets()),
            ("name=o&_sort=birthdate", Plan::sets()),
        ] {
            let mut r = request("Patient", query);
            r.count = 10;
            let sql = page_query(Dialect::Postgres, &r, &plan).unwrap();
            assert!(!sql.text.contains("DISTINCT m0.rid"), "{query}: {}", sql.text);
        }
    }

    #[test]
    fn a_sorted_page_orders_by_key_then_rid_and_resumes_after_the_cursor() {
        let mut r = request("Patient", "_sort=-birthdate&_count=10");
        r.page = Page::After(vec![serde_json::json!(5), serde_json::json!(7)]);
        let sql = page_query(Dialect::Sqlite, &r, &Plan::sets()).unwrap();
        assert_eq!(
            sql.text,
            "SELECT y.rid, y.type, y.id, y.version_id, c.content, y.cursor FROM (SELECT x.rid, x.type, x.id, x.version_id, \
             json_array(x.k0, x.rid) AS cursor, x.k0 FROM (SELECT r.rid, r.type, r.id, r.version_id, \
             COALESCE((SELECT max(i.high) FROM search_date i INDEXED BY search_date_rid WHERE i.rid = r.rid AND i.param = ?1), ?2) AS k0 \
             FROM resource r WHERE r.type = ?3 AND NOT r.deleted) x WHERE ((x.k0 < ?4) OR (x.k0 = ?5 AND x.rid > ?6)) \
             ORDER BY x.k0 DESC, x.rid ASC LIMIT ?7) y JOIN resource c ON c.rid = y.rid ORDER BY y.k0 DESC, y.rid ASC"
        );
        assert_eq!(sql.binds[1], SqlValue::Int(i64::MIN), "no birthdate sorts last");
        assert_eq!(sql.binds[6], SqlValue::Int(11), "one row more than the page");
        let pg = page_query(Dialect::Postgres, &r, &Plan::sets()).unwrap();
        assert!(pg.text.contains("json_build_array(x.k0, x.rid)::text AS cursor"));
        assert!(
            pg.text
                .contains("JOIN resource_history c ON c.type = y.type AND c.id = y.id AND c.version_id = y.version_id")
        );
    }

    #[test]
    fn a_broad_sorted_search_walks_the_sort_index_then_adds_resources_without_a_value() {
        let mut r = request("Observation", "code=1&_sort=-date&_count=20");
        let plan = Plan::choose(&r, &[(0, true)]);
        assert!(plan.walk_sort);
        r.page = Page::After(vec![serde_json::json!(5), serde_json::json!(7)]);
        let sql = page_query(Dialect::Sqlite, &r, &plan).unwrap();
        let inner = sql.text.split(" FROM (SELECT * FROM ").nth(1).unwrap_or_default();
        assert_eq!(
            format!("SELECT * FROM {}", inner.split(") x ORDER BY").next().unwrap()),
            "SELECT * FROM (SELECT r.rid, r.type, r.id, r.version_id, i.high AS k0 FROM search_date i \
             CROSS JOIN resource r ON r.rid = i.rid WHERE i.param = ?1 AND NOT EXISTS (SELECT 1 FROM search_date j \
             INDEXED BY search_date_rid WHERE j.rid = i.rid AND j.param = ?2 AND (j.high > i.high OR \
             (j.high = i.high AND j.rowid < i.rowid))) AND r.type = ?3 \
             AND NOT r.deleted AND EXISTS (SELECT i.rid FROM search_token i INDEXED BY search_token_rid WHERE \
             i.rid = r.rid AND i.param = ?4 AND ((i.code = ?5))) AND ((i.high < ?6) OR (i.high = ?7 AND r.rid > ?8)) \
             ORDER BY i.high DESC, r.rid ASC LIMIT ?9) w0 UNION ALL SELECT * FROM (SELECT r.rid, r.type, r.id, \
             r.version_id, ?10 AS k0 FROM resource r WHERE r.type = ?11 AND NOT r.deleted AND EXISTS (SELECT i.rid \
             FROM search_token i INDEXED BY search_token_rid WHERE i.rid = r.rid AND i.param = ?12 AND \
             ((i.code = ?13))) AND NOT EXISTS (SELECT 1 FROM search_date j INDEXED BY search_date_rid WHERE \
             j.rid = r.rid AND j.param = ?14) ORDER BY r.rid ASC LIMIT ?15) w1 LIMIT ?16"
        );
        assert_eq!(sql.binds[9], SqlValue::Int(i64::MIN), "no date sorts last");
        // A cursor among the resources without a value: the walk finds nothing more.
        r.page = Page::After(vec![serde_json::json!(i64::MIN), serde_json::json!(7)]);
        let sql = page_query(Dialect::Sqlite, &r, &plan).unwrap();
        assert!(
            sql.text.contains("j.param = ?14) AND r.rid > ?15 ORDER BY r.rid ASC"),
            "{}",
            sql.text
        );
        // Backwards: resources without a value first (none before a cursor with a value).
        r.page = Page::Before(vec![serde_json::json!(5), serde_json::json!(7)]);
        let sql = page_query(Dialect::Sqlite, &r, &plan).unwrap();
        assert!(
            sql.text.contains("j.param = ?5) AND 1 = 0 ORDER BY r.rid DESC"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("ORDER BY i.high ASC, r.rid DESC"), "{}", sql.text);
        let pg = page_query(Dialect::Postgres, &r, &plan).unwrap();
        assert!(
            pg.text.contains("FROM search_date i JOIN resource r ON r.rid = i.rid"),
            "{}",
            pg.text
        );
        assert!(
            pg.text
                .contains("AND j.ctid < i.ctid)) OFFSET 0) AND r.type = $9 AND NOT r.deleted AND EXISTS (SELECT"),
            "PostgreSQL tests each row's extremeness and clauses once per row: {}",
            pg.text
        );
        assert!(
            pg.text.contains(
                "EXISTS (SELECT i.rid FROM (SELECT * FROM search_token WHERE rid = r.rid AND param = $10 OFFSET 0) i \
                 WHERE ((i.code = $11)) OFFSET 0)"
            ),
            "a clause tested per row reaches the resource's rows by (rid, param): {}",
            pg.text
        );
        // A selective clause gathers its candidates instead.
        assert!(!Plan::choose(&r, &[(0, false)]).walk_sort);
    }

    #[test]
    fn a_previous_page_runs_the_order_backwards() {
        let mut r = request("Patient", "_count=2");
        r.page = Page::Before(vec![serde_json::json!(9)]);
        let sql = page_query(Dialect::Sqlite, &r, &Plan::sets()).unwrap();
        assert!(
            sql.text.contains("WHERE ((x.rid < ?2)) ORDER BY x.rid DESC LIMIT ?3"),
            "{}",
            sql.text
        );
    }
}
