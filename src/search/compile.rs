//! The last stage of a search: a resolved `SearchRequest` as SQL for one dialect.
//!
//! Shape: every clause is `rid IN (SELECT rid FROM <index table> …)` (AND across parameters, OR
//! across values inside), chains nest the same through `search_reference` joined to the target
//! resource, `_has` runs the other way. The page is ordered by its sort keys and then `rid`, and
//! starts after (or before) the cursor row by a keyset condition, so pages neither repeat nor skip
//! rows while writes happen. Content is joined last, for the page's rows only. Every page row
//! carries its cursor (sort keys and rid as a JSON array) for the next and previous links.

use super::params::date::write_point_condition;
use super::params::token::TokenMatch;
use super::params::{SortValueKind, ValueMatch};
use super::plan::{Form, Plan};
use super::query::Clause;
use super::request::{Include, Page, SearchRequest, SortBy, SortKey};
use super::sql_parts::{
    close_exists, push_by_rid, push_content_column, push_content_join, push_correlation, push_ints, push_param_ids,
    push_type_condition,
};
use crate::error::Result;
use crate::sql::{Dialect, Sql, SqlValue};
use serde_json::Value;

/// The page query: columns `rid, type, id, content, cursor`, at most `count + 1` rows (the extra
/// row says whether another page follows). For `Page::Before` the rows come in reverse order.
pub fn page_query(dialect: Dialect, request: &SearchRequest, plan: &Plan) -> Result<Sql> {
    let mut sql = Sql::new(dialect);
    let keys = &request.sort;
    let backwards = matches!(request.page, Page::Before(_));
    let names: Vec<String> = (0..keys.len()).map(|n| format!("k{n}")).collect();

    sql.push("SELECT y.rid, y.type, y.id, ");
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
                Some(clause) => push_page_of_rows(&mut sql, request, clause, backwards)?,
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
fn lone_selective_clause<'a>(request: &'a SearchRequest, plan: &Plan, dialect: Dialect) -> Option<&'a Clause> {
    match request.clauses.as_slice() {
        [clause]
            if request.sort.is_empty() && counts_from_its_rows(clause) && plan.form(dialect, 0) != Form::EachRow =>
        {
            Some(clause)
        }
        _ => None,
    }
}

/// The page's rows of a lone clause, as filters on `r`: the first rids of its index rows after
/// the cursor, and only then their resource rows. Index rows exist only for current, undeleted
/// versions of the parameter's type (see `count_query`), so these are the page. Without this,
/// PostgreSQL looked up the resource row of every match before keeping twenty: 10 ms for the
/// 1,233 patients named `O'B…` among a million resources, against 0.3 ms for their index rows.
fn push_page_of_rows(sql: &mut Sql, request: &SearchRequest, clause: &Clause, backwards: bool) -> Result<()> {
    push_type_condition(sql, "r", &request.types);
    sql.push(" AND NOT r.deleted AND r.rid IN (SELECT DISTINCT m0.rid FROM (");
    push_clause_rows(sql, clause, 0, None, Form::Set);
    sql.push(") m0");
    if let Page::After(cursor) | Page::Before(cursor) = &request.page {
        // `cursor_values` checked that an unsorted cursor is one rid.
        let rid = cursor_values(&[], cursor)?.swap_remove(0);
        sql.push(if backwards {
            " WHERE m0.rid < "
        } else {
            " WHERE m0.rid > "
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

/// `SELECT count(*)` of everything the search matches.
pub fn count_query(dialect: Dialect, request: &SearchRequest, plan: &Plan) -> Sql {
    let mut sql = Sql::new(dialect);
    if let [clause] = request.clauses.as_slice()
        && counts_from_its_rows(clause)
    {
        // Index rows exist only for current, undeleted versions, and a parameter id belongs to
        // one resource type, so the distinct rids of the clause's rows are the matches: counted
        // from the index alone, without visiting the resource table.
        sql.push("SELECT count(*) FROM (SELECT DISTINCT * FROM (");
        push_clause_rows(&mut sql, clause, 0, None, Form::Set);
        sql.push(") m0) m");
        return sql;
    }
    sql.push("SELECT count(*) FROM resource r WHERE ");
    push_filters(&mut sql, request, plan);
    sql
}

/// A clause whose rows' rids are exactly the resources it matches (see `count_query`); a chain
/// checks that its target is live, `_has` does not give rids.
fn counts_from_its_rows(clause: &Clause) -> bool {
    match clause {
        Clause::Index { negated, .. } | Clause::Composite { negated, .. } => !negated,
        Clause::Missing { missing, .. } => !missing,
        Clause::Chain { .. } => true,
        _ => false,
    }
}

/// The number of matches, counted only up to `limit`: `SELECT count(*)` over at most `limit`
/// matching rows, so a broad search stops counting early.
pub fn count_query_up_to(dialect: Dialect, request: &SearchRequest, plan: &Plan, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    if let [clause] = request.clauses.as_slice()
        && counts_from_its_rows(clause)
        && plan.form(dialect, 0) != Form::EachRow
    {
        // From the index alone, as in `count_query`: a resource row visited per match cost
        // about 3 µs on SQLite at a million resources, 3 ms for a thousand matches. Not for a
        // broad clause, whose duplicates PostgreSQL would gather whole before the limit.
        sql.push("SELECT count(*) FROM (SELECT DISTINCT * FROM (");
        push_clause_rows(&mut sql, clause, 0, None, Form::Set);
        sql.push(") m0 LIMIT ")
            .bind(SqlValue::Int(i64::from(limit)))
            .push(") m");
        return sql;
    }
    sql.push("SELECT count(*) FROM (SELECT 1 FROM resource r WHERE ");
    push_filters(&mut sql, request, plan);
    sql.push(" LIMIT ").bind(SqlValue::Int(i64::from(limit))).push(") m");
    sql
}

/// `SELECT 1` when `clause` has at least `limit` index rows, `0` otherwise (see `Plan`); for a
/// negated clause, the rows of the resources it excludes. The rows are skipped by `OFFSET`, not
/// counted, and duplicates are not removed: removing them (a temporary B-tree on SQLite, every
/// row gathered first on PostgreSQL) cost four times the scan itself, and counting each row
/// through a subquery twice the skipping (together 2 ms of a 3 ms search at a million
/// resources). A resource with several matching rows then counts more than once, which only
/// makes a clause look broad a little sooner.
pub fn clause_is_broad_query(dialect: Dialect, clause: &Clause, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT count(*) FROM (SELECT 1 FROM (");
    push_clause_rows(&mut sql, clause, 0, None, Form::Set);
    sql.push(") m0 LIMIT 1 OFFSET ")
        .bind(SqlValue::Int(i64::from(limit.max(1)) - 1))
        .push(") m");
    sql
}

/// The resources that the page rows `rids` reference through `include`: columns `rid, type, id,
/// content`; at most `limit` of them.
pub fn include_query(dialect: Dialect, include: &Include, rids: &[i64], limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT t.rid, t.type, t.id, ");
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
    sql.push(") ORDER BY t.rid LIMIT ")
        .bind(SqlValue::Int(i64::from(limit)));
    sql
}

/// The `include.source_type` resources that reference any of `targets` (type, id) through
/// `include`: columns `rid, type, id, content`; at most `limit` of them.
pub fn revinclude_query(dialect: Dialect, include: &Include, targets: &[(String, String)], limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT s.rid, s.type, s.id, ");
    push_content_column(&mut sql, "c");
    sql.push(" FROM resource s ");
    push_content_join(&mut sql, "s", "c");
    sql.push(" WHERE s.type = ")
        .bind(SqlValue::Text(include.source_type.clone()))
        .push(" AND s.rid IN (SELECT i.rid FROM search_reference i WHERE ");
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
    sql.push(")) ORDER BY s.rid LIMIT ")
        .bind(SqlValue::Int(i64::from(limit)));
    sql
}

/// The conditions on `resource r`: its type, not deleted, and every clause in the form `plan`
/// chose for it.
fn push_filters(sql: &mut Sql, request: &SearchRequest, plan: &Plan) {
    push_type_condition(sql, "r", &request.types);
    sql.push(" AND NOT r.deleted");
    for (n, clause) in request.clauses.iter().enumerate() {
        sql.push(" AND ");
        push_clause(sql, clause, "r", 0, plan.form(sql.dialect, n));
    }
}

/// One clause on the resource aliased `alias`; `depth` keeps the aliases of nested chains apart.
/// `form` chooses how clauses backed by index rows are written (see `Form`).
fn push_clause(sql: &mut Sql, clause: &Clause, alias: &str, depth: usize, form: Form) {
    match clause {
        Clause::Id(ids) => {
            sql.push(alias).push(".id IN (");
            for (n, id) in ids.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.bind(SqlValue::Text(id.clone()));
            }
            sql.push(")");
        }
        Clause::LastUpdated(ranges) => {
            let column = format!("{alias}.last_updated");
            sql.push("(");
            for (n, range) in ranges.iter().enumerate() {
                if n > 0 {
                    sql.push(" OR ");
                }
                write_point_condition(sql, &column, range);
            }
            sql.push(")");
        }
        Clause::All(clauses) | Clause::Any(clauses) => {
            let joiner = if matches!(clause, Clause::All(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push("(");
            for (n, inner) in clauses.iter().enumerate() {
                if n > 0 {
                    sql.push(joiner);
                }
                push_clause(sql, inner, alias, depth, form);
            }
            sql.push(")");
        }
        Clause::Has { .. } => {
            // Matched on the referenced (type, id) rather than a rid.
            if form == Form::Set {
                sql.push("(").push(alias).push(".type, ").push(alias).push(".id) IN (");
                push_clause_rows(sql, clause, depth, None, form);
                sql.push(")");
            } else {
                sql.push("EXISTS (");
                push_clause_rows(sql, clause, depth, Some(alias), form);
                close_exists(sql, form);
            }
        }
        Clause::Index { negated, .. }
        | Clause::Missing { missing: negated, .. }
        | Clause::Composite { negated, .. } => {
            push_membership(sql, clause, alias, depth, *negated, form);
        }
        Clause::Chain { .. } => push_membership(sql, clause, alias, depth, false, form),
    }
}

/// A token clause of one parameter and one `system|code`: every column of the value index but
/// the rid is fixed, so testing a resource is a single index lookup.
fn is_exact_token(table: &str, param_ids: &[i64], matches: &[ValueMatch]) -> bool {
    table == "search_token"
        && param_ids.len() == 1
        && matches!(matches, [ValueMatch::Token(TokenMatch::SystemAndCode(..))])
}

/// `[NOT] EXISTS (rows of alias)` per row, or `alias.rid [NOT] IN (rows)` as a set.
fn push_membership(sql: &mut Sql, clause: &Clause, alias: &str, depth: usize, negated: bool, form: Form) {
    if form == Form::Set {
        sql.push(alias)
            .push(if negated { ".rid NOT IN (" } else { ".rid IN (" });
        push_clause_rows(sql, clause, depth, None, form);
        sql.push(")");
    } else {
        sql.push(if negated { "NOT EXISTS (" } else { "EXISTS (" });
        push_clause_rows(sql, clause, depth, Some(alias), form);
        close_exists(sql, form);
    }
}

/// The index rows behind a clause, as a `SELECT` of the matching resources' rids (for `_has`,
/// of the referenced `type, id`); a negated clause gives the rows it excludes. With `correlate`,
/// only the rows of that resource alias, for an `EXISTS`. Clauses not backed by index rows give
/// no rows.
fn push_clause_rows(sql: &mut Sql, clause: &Clause, depth: usize, correlate: Option<&str>, form: Form) {
    match clause {
        Clause::Index {
            table,
            param_ids,
            matches,
            ..
        } => {
            match correlate {
                Some(alias) if form == Form::EachRow && is_exact_token(table, param_ids, matches) => {
                    // Parameter, system and code fixed: each resource tested is one descent of
                    // the value index to (param, code, system, rid), where the rid index would
                    // find the resource's rows of the parameter and then read each row.
                    sql.push("SELECT i.rid FROM search_token i ");
                    if sql.dialect == Dialect::Sqlite {
                        sql.push("INDEXED BY search_token_code ");
                    }
                    sql.push("WHERE i.rid = ").push(alias).push(".rid AND ");
                    push_param_ids(sql, "i.param", param_ids);
                    sql.push(" AND (");
                }
                Some(alias) if form == Form::EachRow && sql.dialect == Dialect::Postgres => {
                    // The resource's rows of the parameter first, fenced, then their values:
                    // otherwise PostgreSQL, estimating a value range as a row or two, scans the
                    // value index for each resource tested (thousands of entries for a common
                    // name prefix) instead of reaching its few rows through `(rid, param)`.
                    sql.push("SELECT i.rid FROM (SELECT * FROM ")
                        .push(table)
                        .push(" WHERE rid = ")
                        .push(alias)
                        .push(".rid AND ");
                    push_param_ids(sql, "param", param_ids);
                    sql.push(" OFFSET 0) i WHERE (");
                }
                _ => {
                    sql.push("SELECT i.rid FROM ").push(table).push(" i ");
                    push_by_rid(sql, table, correlate);
                    sql.push("WHERE ");
                    push_correlation(sql, "i.rid", correlate);
                    push_param_ids(sql, "i.param", param_ids);
                    sql.push(" AND (");
                }
            }
            for (n, m) in matches.iter().enumerate() {
                if n > 0 {
                    sql.push(" OR ");
                }
                sql.push("(");
                m.write(sql, "i");
                sql.push(")");
            }
            sql.push(")");
        }
        Clause::Missing { table, param_ids, .. } => {
            sql.push("SELECT i.rid FROM ").push(table).push(" i ");
            push_by_rid(sql, table, correlate);
            sql.push("WHERE ");
            push_correlation(sql, "i.rid", correlate);
            push_param_ids(sql, "i.param", param_ids);
        }
        Clause::Chain {
            param_ids,
            target_types,
            inner,
        } if correlate.is_none() && counts_from_its_rows(inner) => {
            // As a set, from the inner clause outwards: its rows name the targets, each target's
            // references follow from the value index. Every step streams, so a check that stops
            // after a few thousand rows (`clause_is_broad_query`) reads only the targets it needed; written the
            // other way round (`t0.rid IN (inner rows)`), SQLite gathers every inner match
            // before the first row (all 12,000 female patients of a million resources).
            // `CROSS JOIN` is SQLite's way of keeping that join order.
            let target = format!("t{depth}");
            let source = format!("s{depth}");
            let join = match sql.dialect {
                Dialect::Sqlite => " CROSS JOIN ",
                Dialect::Postgres => " JOIN ",
            };
            sql.push("SELECT ref.rid FROM (");
            push_clause_rows(sql, inner, depth + 1, None, form);
            sql.push(") ")
                .push(&source)
                .push(join)
                .push("resource ")
                .push(&target)
                .push(" ON ")
                .push(&target)
                .push(".rid = ")
                .push(&source)
                .push(".rid")
                .push(join)
                .push("search_reference ref ON ref.target_type = ")
                .push(&target)
                .push(".type AND ref.target_id = ")
                .push(&target)
                .push(".id WHERE ");
            push_param_ids(sql, "ref.param", param_ids);
            sql.push(" AND ");
            push_type_condition(sql, &target, target_types);
            sql.push(" AND NOT ").push(&target).push(".deleted");
        }
        Clause::Chain {
            param_ids,
            target_types,
            inner,
        } => {
            let target = format!("t{depth}");
            sql.push("SELECT ref.rid FROM search_reference ref ");
            push_by_rid(sql, "search_reference", correlate);
            sql.push("JOIN resource ")
                .push(&target)
                .push(" ON ")
                .push(&target)
                .push(".type = ref.target_type AND ")
                .push(&target)
                .push(".id = ref.target_id WHERE ");
            push_correlation(sql, "ref.rid", correlate);
            push_param_ids(sql, "ref.param", param_ids);
            sql.push(" AND ");
            push_type_condition(sql, &target, target_types);
            sql.push(" AND NOT ").push(&target).push(".deleted AND ");
            push_clause(sql, inner, &target, depth + 1, form);
        }
        Clause::Composite {
            components,
            alternatives,
            ..
        } => super::params::composite::write_rids(sql, components, alternatives, correlate),
        Clause::Has {
            source_type,
            param_id,
            inner,
        } => {
            // Index rows exist only for current, undeleted versions, so every source row found
            // here is live.
            let source = format!("s{depth}");
            sql.push("SELECT ref.target_type, ref.target_id FROM search_reference ref JOIN resource ")
                .push(&source)
                .push(" ON ")
                .push(&source)
                .push(".rid = ref.rid WHERE ");
            sql.push("ref.param = ").bind(SqlValue::Int(*param_id));
            if let Some(alias) = correlate {
                sql.push(" AND ref.target_id = ")
                    .push(alias)
                    .push(".id AND ref.target_type = ")
                    .push(alias)
                    .push(".type");
            }
            sql.push(" AND ")
                .push(&source)
                .push(".type = ")
                .bind(SqlValue::Text(source_type.clone()))
                .push(" AND ");
            push_clause(sql, inner, &source, depth + 1, form);
        }
        Clause::Id(_) | Clause::LastUpdated(_) | Clause::All(_) | Clause::Any(_) => {
            sql.push("SELECT NULL WHERE 1 = 0");
        }
    }
}

/// A sort key of `resource r`, never NULL: a resource without a value sorts last either way.
fn push_sort_expression(sql: &mut Sql, key: &SortKey) {
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
fn no_value(kind: SortValueKind, descending: bool) -> SqlValue {
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
fn push_no_rows_of(sql: &mut Sql, table: &str, param_ids: &[i64], alias: &str) {
    sql.push(" AND NOT EXISTS (SELECT 1 FROM ").push(table).push(" j ");
    push_by_rid(sql, table, Some(alias));
    sql.push("WHERE j.rid = ").push(alias).push(".rid AND ");
    push_param_ids(sql, "j.param", param_ids);
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
        super::query::invalid_request(
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
    use crate::search::registry::{Registry, param_id};
    use crate::search::request::{Limits, parse};

    fn request(resource_type: &str, query: &str) -> SearchRequest {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        parse(
            Registry::r4(),
            Some(&[resource_type]),
            &pairs,
            "http://x/fhir",
            Limits::default(),
            true,
        )
        .unwrap()
    }

    /// The WHERE conditions on `resource r`, which every search shares.
    fn filters(dialect: Dialect, resource_type: &str, query: &str) -> (String, Vec<SqlValue>) {
        let mut sql = Sql::new(dialect);
        push_filters(&mut sql, &request(resource_type, query), &Plan::sets());
        (sql.text, sql.binds)
    }

    #[test]
    fn string_default_is_an_index_range_scan() {
        let (text, binds) = filters(Dialect::Sqlite, "Patient", "name=Zoë");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND r.rid IN (SELECT i.rid FROM search_string i WHERE i.param = ?2 \
             AND ((i.normalized >= ?3 AND i.normalized < ?4)))"
        );
        assert_eq!(binds[1], SqlValue::Int(param_id("Patient", "name")));
        assert_eq!(binds[2], SqlValue::Text("zoe".into()));
        assert_eq!(binds[3], SqlValue::Text("zof".into()));
        let (text, _) = filters(Dialect::Postgres, "Patient", "name:contains=a_b");
        assert!(text.ends_with("AND ((i.normalized LIKE $3 ESCAPE '\\')))"), "{text}");
    }

    #[test]
    fn composite_components_join_on_their_element() {
        let (text, binds) = filters(
            Dialect::Sqlite,
            "Observation",
            "component-code-value-quantity=http://loinc.org|8480-6$gt100",
        );
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND r.rid IN (SELECT c0.rid FROM search_token c0 WHERE c0.param IN (?2) \
             AND ((c0.code = ?3 AND c0.system = ?4 AND EXISTS (SELECT 1 FROM search_quantity c1 WHERE c1.rid = c0.rid \
             AND c1.grp = c0.grp AND c1.param IN (?5) AND (c1.value > ?6)))))"
        );
        let (text, _) = filters(
            Dialect::Postgres,
            "Observation",
            "component-code-value-quantity=http://loinc.org|8480-6$gt100",
        );
        assert!(
            text.contains("AND EXISTS (SELECT c0.rid FROM search_token c0 WHERE c0.rid = r.rid AND c0.param IN ($2)"),
            "{text}"
        );
        assert_eq!(
            binds[4],
            SqlValue::Int(crate::search::registry::component_param_id(
                "Observation",
                "component-code-value-quantity",
                1
            ))
        );
        let (text, _) = filters(Dialect::Sqlite, "Observation", "code-value-quantity:missing=true");
        assert!(text.contains("r.rid NOT IN (SELECT c0.rid"), "{text}");
        assert!(text.ends_with("AND c1.param IN (?3)))))"), "{text}");
    }

    #[test]
    fn text_search_asks_for_every_word() {
        let (text, binds) = filters(Dialect::Sqlite, "Patient", "_content=blood pres");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND ((r.rid IN (SELECT i.rid FROM search_string i WHERE i.param = ?2 \
             AND ((i.normalized >= ?3 AND i.normalized < ?4))) AND r.rid IN (SELECT i.rid FROM search_string i \
             WHERE i.param = ?5 AND ((i.normalized >= ?6 AND i.normalized < ?7)))))"
        );
        assert_eq!(binds[5], SqlValue::Text("pres".into()));
    }

    #[test]
    fn token_forms_and_not() {
        let (text, _) = filters(Dialect::Sqlite, "Observation", "code=http://loinc.org|1,|2,3");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND r.rid IN (SELECT i.rid FROM search_token i WHERE i.param = ?2 \
             AND ((i.code = ?3 AND i.system = ?4) OR (i.code = ?5 AND i.system IS NULL) OR (i.code = ?6)))"
        );
        let (text, _) = filters(Dialect::Sqlite, "Patient", "gender:not=male");
        assert!(
            text.contains("r.rid NOT IN (SELECT i.rid FROM search_token i"),
            "{text}"
        );
        // PostgreSQL plans both forms as joins; NOT EXISTS is an anti-join, NOT IN is not.
        let (text, _) = filters(Dialect::Postgres, "Patient", "gender:not=male");
        assert_eq!(
            text,
            "r.type = $1 AND NOT r.deleted AND NOT EXISTS (SELECT i.rid FROM search_token i WHERE i.rid = r.rid \
             AND i.param = $2 AND ((i.code = $3)))"
        );
    }

    #[test]
    fn date_prefixes_compare_ranges() {
        let (text, binds) = filters(Dialect::Sqlite, "Patient", "birthdate=ge2020");
        assert!(
            text.ends_with("AND (((i.high > ?3 OR (i.low >= ?4 AND i.high <= ?5)))))"),
            "{text}"
        );
        let year = crate::model::InstantRange::parse("2020").unwrap();
        assert_eq!(binds[2], SqlValue::Int(year.end.timestamp_micros()));
        assert_eq!(binds[3], SqlValue::Int(year.start.timestamp_micros()));
        let (text, _) = filters(Dialect::Postgres, "Patient", "_lastUpdated=lt2020");
        assert_eq!(text, "r.type = $1 AND NOT r.deleted AND (r.last_updated < $2)");
    }

    #[test]
    fn number_and_quantity_use_the_precision_range_or_the_exact_value() {
        let (text, binds) = filters(Dialect::Sqlite, "RiskAssessment", "probability=0.5");
        assert!(text.ends_with("AND (((i.value >= ?3 AND i.value < ?4))))"), "{text}");
        assert_eq!(
            (binds[2].clone(), binds[3].clone()),
            (SqlValue::Real(0.45), SqlValue::Real(0.55))
        );
        let (text, _) = filters(
            Dialect::Postgres,
            "Observation",
            "value-quantity=gt5.4|http://unitsofmeasure.org|mg",
        );
        assert!(
            text.ends_with("AND ((i.value > $3 AND i.system = $4 AND i.code = $5)))"),
            "{text}"
        );
        let (text, _) = filters(Dialect::Postgres, "Observation", "value-quantity=5.4||mg");
        assert!(text.contains("AND (i.code = $5 OR i.unit = $6)"), "{text}");
    }

    #[test]
    fn references_uris_and_missing() {
        // A bare id takes the parameter's only target type.
        let (text, binds) = filters(Dialect::Sqlite, "Patient", "organization=123");
        assert!(
            text.ends_with("AND ((i.target_id = ?3 AND i.target_type = ?4)))"),
            "{text}"
        );
        assert_eq!(binds[3], SqlValue::Text("Organization".into()));
        let (text, _) = filters(Dialect::Sqlite, "Observation", "subject=http://elsewhere.org/Patient/1");
        assert!(
            text.contains("search_reference") && text.ends_with("AND ((i.url = ?3)))"),
            "{text}"
        );
        let (text, binds) = filters(Dialect::Sqlite, "ValueSet", "url:above=http://a.org/fhir/ValueSet/x");
        assert!(text.ends_with("AND ((i.uri IN (?3, ?4, ?5, ?6))))"), "{text}");
        assert_eq!(binds[2], SqlValue::Text("http://a.org".into()));
        let (text, _) = filters(Dialect::Postgres, "Patient", "organization:missing=true");
        assert!(
            text.ends_with("NOT EXISTS (SELECT i.rid FROM search_reference i WHERE i.rid = r.rid AND i.param = $2)"),
            "{text}"
        );
    }

    #[test]
    fn chains_nest_through_the_target_and_has_runs_backwards() {
        let (text, _) = filters(Dialect::Sqlite, "Observation", "subject:Patient.name=x");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND r.rid IN (SELECT ref.rid FROM (SELECT i.rid FROM search_string i \
             WHERE i.param = ?2 AND ((i.normalized >= ?3 AND i.normalized < ?4))) s0 CROSS JOIN resource t0 \
             ON t0.rid = s0.rid CROSS JOIN search_reference ref ON ref.target_type = t0.type \
             AND ref.target_id = t0.id WHERE ref.param = ?5 AND t0.type = ?6 AND NOT t0.deleted)"
        );
        // Chains of chains stream the same way, innermost first.
        let (text, _) = filters(Dialect::Sqlite, "Observation", "subject:Patient.organization.name=x");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND r.rid IN (SELECT ref.rid FROM (SELECT ref.rid FROM (SELECT i.rid \
             FROM search_string i WHERE i.param = ?2 AND ((i.normalized >= ?3 AND i.normalized < ?4))) s1 \
             CROSS JOIN resource t1 ON t1.rid = s1.rid CROSS JOIN search_reference ref ON ref.target_type = t1.type \
             AND ref.target_id = t1.id WHERE ref.param = ?5 AND t1.type = ?6 AND NOT t1.deleted) s0 \
             CROSS JOIN resource t0 ON t0.rid = s0.rid CROSS JOIN search_reference ref ON ref.target_type = t0.type \
             AND ref.target_id = t0.id WHERE ref.param = ?7 AND t0.type = ?8 AND NOT t0.deleted)"
        );
        // An inner clause that gives no rids of its own is tested on the target instead.
        let (text, _) = filters(Dialect::Sqlite, "Observation", "subject:Patient._id=x");
        assert!(
            text.contains("JOIN resource t0 ON t0.type = ref.target_type AND t0.id = ref.target_id")
                && text.ends_with("AND t0.id IN (?4))"),
            "{text}"
        );
        let (text, _) = filters(Dialect::Postgres, "Observation", "subject:Patient.name=x");
        assert_eq!(
            text,
            "r.type = $1 AND NOT r.deleted AND EXISTS (SELECT ref.rid FROM search_reference ref JOIN resource t0 \
             ON t0.type = ref.target_type AND t0.id = ref.target_id WHERE ref.rid = r.rid AND ref.param = $2 \
             AND t0.type = $3 AND NOT t0.deleted AND EXISTS (SELECT i.rid FROM search_string i WHERE i.rid = t0.rid \
             AND i.param = $4 AND ((i.normalized >= $5 AND i.normalized < $6))))"
        );
        let (text, _) = filters(Dialect::Postgres, "Patient", "_has:Observation:patient:code=1");
        assert!(
            text.contains(
                "EXISTS (SELECT ref.target_type, ref.target_id FROM search_reference ref JOIN resource s0 \
                 ON s0.rid = ref.rid WHERE ref.param = $2 AND ref.target_id = r.id AND ref.target_type = r.type"
            ),
            "{text}"
        );
        let (text, _) = filters(Dialect::Sqlite, "Patient", "_has:Observation:patient:code=1");
        assert_eq!(
            text,
            "r.type = ?1 AND NOT r.deleted AND (r.type, r.id) IN (SELECT ref.target_type, ref.target_id \
             FROM search_reference ref JOIN resource s0 ON s0.rid = ref.rid WHERE ref.param = ?2 AND s0.type = ?3 \
             AND s0.rid IN (SELECT i.rid FROM search_token i WHERE i.param = ?4 AND ((i.code = ?5))))"
        );
    }

    #[test]
    fn sqlite_tests_a_broad_clause_row_by_row_and_measures_clauses_up_to_a_limit() {
        let r = request("Observation", "subject.gender=female&code=1");
        let plan = Plan::choose(&r, &[(0, true), (1, false)]);
        let sql = count_query(Dialect::Sqlite, &r, &plan);
        assert_eq!(
            sql.text,
            "SELECT count(*) FROM resource r WHERE r.type = ?1 AND NOT r.deleted AND EXISTS (SELECT ref.rid \
             FROM search_reference ref INDEXED BY search_reference_rid JOIN resource t0 ON t0.type = ref.target_type \
             AND t0.id = ref.target_id WHERE ref.rid = r.rid AND ref.param = ?2 AND t0.type = ?3 AND NOT t0.deleted \
             AND EXISTS (SELECT i.rid FROM search_token i INDEXED BY search_token_rid WHERE i.rid = t0.rid AND i.param = ?4 AND ((i.code = ?5)))) AND r.rid IN \
             (SELECT i.rid FROM search_token i WHERE i.param = ?6 AND ((i.code = ?7)))"
        );
        let broad = clause_is_broad_query(Dialect::Sqlite, &r.clauses[1], 5_000);
        assert_eq!(
            broad.text,
            "SELECT count(*) FROM (SELECT 1 FROM (SELECT i.rid FROM search_token i WHERE i.param = ?1 \
             AND ((i.code = ?2))) m0 LIMIT 1 OFFSET ?3) m"
        );
        assert_eq!(broad.binds[2], SqlValue::Int(4_999), "the 5,000th row");
    }

    #[test]
    fn a_count_of_one_clause_reads_only_its_index_rows() {
        let sql = count_query(Dialect::Sqlite, &request("Observation", "code=1"), &Plan::sets());
        assert_eq!(
            sql.text,
            "SELECT count(*) FROM (SELECT DISTINCT * FROM (SELECT i.rid FROM search_token i WHERE i.param = ?1 \
             AND ((i.code = ?2))) m0) m"
        );
        for query in [
            "code:not=1",
            "code=1&status=final",
            "_has:Observation:patient:code=1",
            "_id=a",
        ] {
            let resource_type = if query.starts_with("_has") {
                "Patient"
            } else {
                "Observation"
            };
            let sql = count_query(Dialect::Sqlite, &request(resource_type, query), &Plan::sets());
            assert!(
                sql.text.starts_with("SELECT count(*) FROM resource r WHERE "),
                "{query}: {}",
                sql.text
            );
            let sql = count_query_up_to(Dialect::Sqlite, &request(resource_type, query), &Plan::sets(), 1_001);
            assert!(
                sql.text
                    .starts_with("SELECT count(*) FROM (SELECT 1 FROM resource r WHERE "),
                "{query}: {}",
                sql.text
            );
        }
        // A broad clause is counted up to the limit along the resources, row by row.
        let broad_name = request("Patient", "name=o");
        let broad = Plan::choose(&broad_name, &[(0, true)]);
        let sql = count_query_up_to(Dialect::Postgres, &broad_name, &broad, 1_001);
        assert!(
            sql.text
                .starts_with("SELECT count(*) FROM (SELECT 1 FROM resource r WHERE "),
            "{}",
            sql.text
        );
        // The default total of a selective clause, counted up to a limit, from its index rows too.
        let sql = count_query_up_to(Dialect::Postgres, &request("Patient", "name=o"), &Plan::sets(), 1_001);
        assert_eq!(
            sql.text,
            "SELECT count(*) FROM (SELECT DISTINCT * FROM (SELECT i.rid FROM search_string i WHERE i.param = $1 \
             AND ((i.normalized >= $2 AND i.normalized < $3))) m0 LIMIT $4) m"
        );
    }

    #[test]
    fn a_broad_system_and_code_is_tested_by_one_lookup_of_the_value_index() {
        let r = request("Condition", "code=http://snomed.info/sct|44054006");
        let broad = Plan::choose(&r, &[(0, true)]);
        let (sqlite, postgres) = (
            page_query(Dialect::Sqlite, &r, &broad).unwrap(),
            page_query(Dialect::Postgres, &r, &broad).unwrap(),
        );
        assert!(
            sqlite.text.contains(
                "EXISTS (SELECT i.rid FROM search_token i INDEXED BY search_token_code WHERE i.rid = r.rid \
                 AND i.param = ?2 AND ((i.code = ?3 AND i.system = ?4)))"
            ),
            "{}",
            sqlite.text
        );
        assert!(
            postgres.text.contains(
                "EXISTS (SELECT i.rid FROM search_token i WHERE i.rid = r.rid AND i.param = $2 \
                 AND ((i.code = $3 AND i.system = $4)) OFFSET 0)"
            ),
            "{}",
            postgres.text
        );
        // A code alone, or several, leave columns of the value index open: the rid index then.
        for query in [
            "code=44054006",
            "code=http://snomed.info/sct|1,http://snomed.info/sct|2",
        ] {
            let r = request("Condition", query);
            let sql = page_query(Dialect::Sqlite, &r, &Plan::choose(&r, &[(0, true)])).unwrap();
            assert!(
                sql.text.contains("INDEXED BY search_token_rid"),
                "{query}: {}",
                sql.text
            );
        }
    }

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
            "SELECT y.rid, y.type, y.id, c.content, y.cursor FROM (SELECT x.rid, x.type, x.id, x.version_id, \
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

    #[test]
    fn includes_follow_references_of_the_page() {
        let r = request(
            "Observation",
            "_include=Observation:subject:Patient&_revinclude=Provenance:target",
        );
        let sql = include_query(Dialect::Sqlite, &r.includes[0], &[3, 4], 10);
        assert_eq!(
            sql.text,
            "SELECT t.rid, t.type, t.id, c.content FROM resource t JOIN resource c ON c.rid = t.rid WHERE t.rid IN \
             (SELECT t2.rid FROM search_reference i JOIN resource t2 ON t2.type = i.target_type AND t2.id = i.target_id \
             WHERE i.rid IN (?1, ?2) AND i.param = ?3 AND NOT t2.deleted AND t2.type = ?4) ORDER BY t.rid LIMIT ?5"
        );
        let sql = revinclude_query(
            Dialect::Postgres,
            &r.revincludes[0],
            &[("Observation".into(), "a".into()), ("Observation".into(), "b".into())],
            10,
        );
        assert!(
            sql.text
                .contains("AND ((i.target_type = $3 AND i.target_id IN ($4, $5)))) ORDER BY s.rid LIMIT $6"),
            "{}",
            sql.text
        );
    }
}
