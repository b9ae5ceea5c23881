//! Counting queries: the total of a search (whole, or up to a limit so that a broad search stops
//! early), and the probe of whether one clause is broad, which `plan` decides from. A lone clause
//! whose rows are its matches is counted from its index rows alone.

use super::clause::{Candidates, push_clause_rows, push_filters, push_rid_exclusions, rows_with_exclusions};
use crate::search::plan::{Form, Plan};
use crate::search::query::Clause;
use crate::search::request::SearchRequest;
use crate::sql::{Dialect, Sql, SqlValue};

/// `SELECT count(*)` of everything the search matches.
pub fn count_query(dialect: Dialect, request: &SearchRequest, plan: &Plan) -> Sql {
    let mut sql = Sql::new(dialect);
    if let Some((n, exclusions)) = rows_with_exclusions(&request.clauses) {
        // Index rows exist only for current, undeleted versions, and a parameter id belongs to
        // one resource type, so the distinct rids of the clause's rows are the matches: counted
        // from the index alone, without visiting the resource table (each tested against the
        // exclusions consents add, by their own index rows).
        sql.push("SELECT count(*) FROM (SELECT DISTINCT * FROM (");
        push_clause_rows(&mut sql, &request.clauses[n], 0, None, Form::Set);
        sql.push(") m0");
        push_rid_exclusions(&mut sql, &exclusions, "m0", Candidates::Count);
        sql.push(") m");
        return sql;
    }
    sql.push("SELECT count(*) FROM resource r WHERE ");
    push_filters(&mut sql, request, plan);
    sql
}

/// The number of matches, counted only up to `limit`: `SELECT count(*)` over at most `limit`
/// matching rows, so a broad search stops counting early.
pub fn count_query_up_to(dialect: Dialect, request: &SearchRequest, plan: &Plan, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    if let Some((n, exclusions)) = rows_with_exclusions(&request.clauses)
        && plan.form(dialect, n) != Form::EachRow
    {
        // From the index alone, as in `count_query`: a resource row visited per match cost
        // about 3 µs on SQLite at a million resources, 3 ms for a thousand matches. Not for a
        // broad clause, whose duplicates PostgreSQL would gather whole before the limit.
        sql.push("SELECT count(*) FROM (SELECT DISTINCT * FROM (");
        push_clause_rows(&mut sql, &request.clauses[n], 0, None, Form::Set);
        sql.push(") m0");
        push_rid_exclusions(&mut sql, &exclusions, "m0", Candidates::Count);
        sql.push(" LIMIT ").bind(SqlValue::Int(i64::from(limit))).push(") m");
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

#[cfg(test)]
mod tests {
    //! Golden SQL: the exact text each parameter type and shape compiles to, per dialect.

    use super::*;
    use crate::search::compile::tests::request;

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
}
