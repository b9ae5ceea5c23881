//! Clauses as SQL. A clause is written as a condition on a resource alias (`push_clause`) in the
//! form the plan chose for it — a set (`rid IN (…)`), an `EXISTS`, or an `EXISTS` fenced to run
//! per row — over the index rows behind it (`push_clause_rows`): the rids of its matching rows,
//! a chain's references to targets that meet the inner clause, `_has` the other way, a
//! composite's components joined on their element. Every other part of `compile` filters with
//! these.

use crate::search::params::ValueMatch;
use crate::search::params::composite;
use crate::search::params::date::write_point_condition;
use crate::search::params::token::TokenMatch;
use crate::search::plan::{Form, Plan};
use crate::search::query::Clause;
use crate::search::request::SearchRequest;
use crate::search::sql_parts::{close_exists, push_by_rid, push_correlation, push_param_ids, push_type_condition};
use crate::sql::{Dialect, Sql, SqlValue};

/// The conditions on `resource r`: its type, not deleted, and every clause in the form `plan`
/// chose for it.
pub(super) fn push_filters(sql: &mut Sql, request: &SearchRequest, plan: &Plan) {
    push_type_condition(sql, "r", &request.types);
    sql.push(" AND NOT r.deleted");
    for (n, clause) in request.clauses.iter().enumerate() {
        sql.push(" AND ");
        push_clause(sql, clause, "r", 0, plan.form(sql.dialect, n));
    }
}

/// One clause on the resource aliased `alias`; `depth` keeps the aliases of nested chains apart.
/// `form` chooses how clauses backed by index rows are written (see `Form`).
pub(super) fn push_clause(sql: &mut Sql, clause: &Clause, alias: &str, depth: usize, form: Form) {
    match clause {
        Clause::Id(ids) => {
            sql.in_list(&format!("{alias}.id"), ids.iter().map(String::as_str));
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
        Clause::OfType(types) if types.is_empty() => {
            sql.push("FALSE");
        }
        Clause::OfType(types) => push_type_condition(sql, alias, types),
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
        Clause::Not(inner) => {
            sql.push("NOT (");
            // Of the searched resources only: the exclusions inside a chain (tested on each
            // target) kept their plan better with the estimate (`Observation?subject.name=…`
            // 12.8 against 22 ms on PostgreSQL).
            if depth == 0 {
                sql.while_excluding(|sql| push_clause(sql, inner, alias, depth, form));
            } else {
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

/// A clause whose rows' rids are exactly the resources it matches (see `count_query`); a chain
/// checks that its target is live, `_has` does not give rids.
pub(super) fn counts_from_its_rows(clause: &Clause) -> bool {
    match clause {
        Clause::Index { negated, .. } | Clause::Composite { negated, .. } => !negated,
        Clause::Missing { missing, .. } => !missing,
        Clause::Chain { .. } => true,
        _ => false,
    }
}

/// The type and ids of `matches` when they are several local references, all with the same
/// target type.
fn local_references_of_one_type(matches: &[ValueMatch]) -> Option<(&str, Vec<&str>)> {
    use crate::search::params::reference::ReferenceMatch;
    if matches.len() < 2 {
        return None;
    }
    let mut kind = None;
    let mut ids = Vec::with_capacity(matches.len());
    for m in matches {
        let ValueMatch::Reference(ReferenceMatch::Local {
            target_type: Some(t),
            id,
        }) = m
        else {
            return None;
        };
        if kind.is_some_and(|k| k != t.as_str()) {
            return None;
        }
        kind = Some(t.as_str());
        ids.push(id.as_str());
    }
    Some((kind?, ids))
}

/// A search's clauses as one clause whose rows are its matches and the clauses that only leave
/// resources out by their own index rows (what consents withhold, `Not` of an index clause), when
/// they are that: the page and the count can then be picked from the one clause's index rows,
/// each tested against the exclusions (`push_rid_exclusions`), without the resource table.
pub(super) fn rows_with_exclusions(clauses: &[Clause]) -> Option<(usize, Vec<&Clause>)> {
    fn exclusions_of<'c>(clause: &'c Clause, into: &mut Vec<&'c Clause>) -> bool {
        match clause {
            Clause::Not(inner) if matches!(**inner, Clause::Index { negated: false, .. }) => {
                into.push(inner);
                true
            }
            Clause::All(parts) if !parts.is_empty() => parts.iter().all(|p| exclusions_of(p, into)),
            _ => false,
        }
    }
    let mut rows = None;
    let mut exclusions = Vec::new();
    for (n, clause) in clauses.iter().enumerate() {
        if exclusions_of(clause, &mut exclusions) {
            continue;
        }
        if rows.is_some() || !counts_from_its_rows(clause) {
            return None;
        }
        rows = Some(n);
    }
    Some((rows?, exclusions))
}

/// The candidates tested against a search's exclusions (`push_rid_exclusions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Candidates {
    /// Until a page is filled: a few, each looked up.
    Page,
    /// Every match, for a count: PostgreSQL tests them best as one anti-join hashing the rows
    /// excluded.
    Count,
    /// Every match of a chain, all found before a page is kept (`DISTINCT`): PostgreSQL
    /// estimates a chain's matches badly (one row for the 2,005 observations of patients named
    /// O'Brien) and tested each one (8 ms); `NOT IN` reads the excluded rows once into a hash.
    Chain,
}

/// ` WHERE NOT EXISTS (…) AND …` per clause of `exclusions`, each tested on the rid of `alias`
/// in the form that suits the `candidates`.
pub(super) fn push_rid_exclusions(sql: &mut Sql, exclusions: &[&Clause], alias: &str, candidates: Candidates) {
    for (n, clause) in exclusions.iter().enumerate() {
        sql.push(if n == 0 { " WHERE " } else { " AND " });
        let form = match (sql.dialect, candidates) {
            (Dialect::Postgres, Candidates::Count) => Form::Exists,
            (Dialect::Postgres, Candidates::Chain) => Form::Set,
            _ => Form::EachRow,
        };
        sql.while_excluding(|sql| push_membership(sql, clause, alias, 1, true, form));
    }
}

/// A chain's inner clause as one clause whose rows are its matches and the exclusions consents
/// added to it (`Not`, tested on each target), when it is that.
fn rows_and_exclusions(inner: &Clause) -> Option<(&Clause, Vec<&Clause>)> {
    if counts_from_its_rows(inner) {
        return Some((inner, Vec::new()));
    }
    let Clause::All(parts) = inner else {
        return None;
    };
    let mut rows = None;
    let mut exclusions = Vec::new();
    for part in parts {
        if part.only_excludes() {
            exclusions.push(part);
        } else if rows.is_none() && counts_from_its_rows(part) {
            rows = Some(part);
        } else {
            return None;
        }
    }
    Some((rows?, exclusions))
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
pub(super) fn push_clause_rows(sql: &mut Sql, clause: &Clause, depth: usize, correlate: Option<&str>, form: Form) {
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
            if let Some((target_type, ids)) = local_references_of_one_type(matches) {
                // Many targets of one type (the patients a consent narrowing names): one list
                // rather than a condition per target.
                sql.push("i.target_type = ")
                    .bind(SqlValue::Text(target_type.to_owned()))
                    .push(" AND ")
                    .in_list("i.target_id", ids);
            } else {
                for (n, m) in matches.iter().enumerate() {
                    if n > 0 {
                        sql.push(" OR ");
                    }
                    sql.push("(");
                    m.write(sql, "i");
                    sql.push(")");
                }
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
        } if correlate.is_none() && rows_and_exclusions(inner).is_some() => {
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
            let (rows, exclusions) = rows_and_exclusions(inner).expect("checked by the guard");
            push_clause_rows(sql, rows, depth + 1, None, form);
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
            // What consents withhold of the targets, tested on each target found.
            for exclusion in exclusions {
                sql.push(" AND ");
                push_clause(sql, exclusion, &target, depth + 1, Form::EachRow);
            }
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
        } => composite::write_rids(sql, components, alternatives, correlate),
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
        Clause::Id(_)
        | Clause::LastUpdated(_)
        | Clause::OfType(_)
        | Clause::All(_)
        | Clause::Any(_)
        | Clause::Not(_) => {
            sql.push("SELECT NULL WHERE 1 = 0");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Golden SQL: the exact text each parameter type and shape compiles to, per dialect.

    use super::*;
    use crate::search::compile::page_query;
    use crate::search::compile::tests::request;
    use crate::search::registry::param_id;

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
}
