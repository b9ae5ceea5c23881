//! How a search's clauses are tested against the resource table, chosen from how many index
//! rows each one matches. Pure: whether a clause is broad comes from `compile::clause_is_broad_query`, run by the
//! search interaction.
//!
//! Why: a clause can be tested as a set (`rid IN (SELECT rid …)`, every matching rid gathered
//! once) or row by row (`EXISTS (… WHERE rid = r.rid)`, an index lookup per candidate resource).
//! A set costs as many rows as the clause matches; row by row costs a lookup per resource looked
//! at, until the page is full. So a selective clause (`name=O'Brien`) wants a set, and a broad one
//! (`subject.gender=female`, half of all Observations) wants row by row: as a set it would gather
//! hundreds of thousands of rids to show twenty. SQLite's planner does not make this choice
//! itself (it always builds the set), so the server checks whether each clause has at least
//! `SET_LIMIT` rows and decides.
//!
//! PostgreSQL's planner turns both forms into the same semi-join and picks the join order from
//! its own statistics, so there a selective clause is written as `EXISTS` (which also makes
//! `NOT` an anti-join rather than a `NOT IN` over a large set) and left to it. Its statistics
//! miss what matters for broad clauses, though: they multiply the selectivities of `param` and
//! `code` (one code belongs to one parameter), and do not see how many resources reference a
//! target, so `subject.gender=female` is estimated at a row or two and every match gathered. So
//! clauses are measured there too, and a broad one is fenced to run row by row
//! (`Form::EachRow`).
//!
//! A sorted search whose clauses are all broad walks the sort parameter's index in order instead
//! of sorting every match (`Plan::walk_sort`).

use super::query::Clause;
use super::request::{SearchRequest, SortBy, SortKey};
use crate::sql::Dialect;

/// Defined in `sql_parts`, beside `close_exists` which writes it, so that leaf needs nothing from
/// the plan.
pub use super::sql_parts::Form;

/// The form of each clause, and whether the default total is worth counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// By clause position: test row by row. Clauses past the end are tested as sets.
    per_row: Vec<bool>,
    /// By clause position: the clause only leaves resources out (`Clause::only_excludes`).
    excludes: Vec<bool>,
    /// Every match is read to sort the page in memory.
    sorts_every_match: bool,
    /// Every clause that could narrow the search down matches at least `SET_LIMIT` resources:
    /// counting the matches would cost far more than the page, and a total is not given unless
    /// the client asks for one.
    pub broad: bool,
    /// The page is sorted by one index key and no clause is selective: walk that key's index in
    /// order, testing each resource row by row, rather than sorting every match (see
    /// `compile::page_query`).
    pub walk_sort: bool,
}

impl Plan {
    /// Every clause as a set (on SQLite): right for small data, and for internal searches whose
    /// clauses are selective by construction.
    pub fn sets() -> Plan {
        Plan::default()
    }

    /// Whether clause `n` is tested row by row in `dialect` (the tests' shorthand for `form`).
    #[cfg(test)]
    fn per_row(&self, dialect: Dialect, n: usize) -> bool {
        self.form(dialect, n) != Form::Set
    }

    /// How clause `n` is written in `dialect`.
    pub fn form(&self, dialect: Dialect, n: usize) -> Form {
        // An exclusion is a lookup per candidate: a page needs few (a count of many matches
        // is written on its own, `compile::count_query`). When every match is read to be
        // sorted, PostgreSQL tests them best as one anti-join hashing the rows excluded.
        if self.excludes.get(n).copied().unwrap_or(false) {
            return match dialect {
                Dialect::Postgres if self.sorts_every_match => Form::Exists,
                _ => Form::EachRow,
            };
        }
        match (dialect, self.per_row.get(n).copied().unwrap_or(false)) {
            (_, true) => Form::EachRow,
            // A join PostgreSQL planned for a clause would read all of it before the walk.
            (Dialect::Postgres, false) if self.walk_sort => Form::EachRow,
            (Dialect::Postgres, false) => Form::Exists,
            (Dialect::Sqlite, false) => Form::Set,
        }
    }

    /// The plan for `request` given, for each clause that `measured_clauses` named, whether it
    /// has at least `set_limit` index rows (`compile::clause_is_broad_query`).
    pub fn choose(request: &SearchRequest, measured: &[(usize, bool)]) -> Plan {
        let is_broad = |n: usize| measured.iter().any(|&(m, broad)| m == n && broad);
        let mut any_selective = false;
        let mut any_broad = false;
        for &(n, _) in measured {
            if narrows(&request.clauses[n]) {
                any_selective |= !is_broad(n);
                any_broad |= is_broad(n);
            }
        }
        // Clauses measured by nothing (text words) may be selective.
        let unmeasured = request
            .clauses
            .iter()
            .enumerate()
            .any(|(n, c)| narrows(c) && !measured.iter().any(|&(m, _)| m == n));
        // Walking a sort index pays off when matches are dense along it; a selective clause
        // gathers its few candidates faster, and they are sorted in memory.
        let walk_sort = matches!(
            request.sort.as_slice(),
            [SortKey {
                by: SortBy::Index { .. },
                ..
            }]
        ) && !any_selective
            && !unmeasured;
        // A page sorted in memory needs every match's sort key, so without a selective clause to
        // gather the candidates, testing row by row would test every resource of the type.
        let rows_are_few = request.sort.is_empty() || any_selective || walk_sort;
        // A clause that only leaves resources out (what consents withhold) is tested per
        // candidate (see `form`), where as a set it would gather every resource it leaves out.
        let per_row = (0..request.clauses.len())
            .map(|n| rows_are_few && is_broad(n))
            .collect();
        let excludes = request
            .clauses
            .iter()
            .map(|c| rows_are_few && c.only_excludes())
            .collect();
        Plan {
            per_row,
            excludes,
            sorts_every_match: !request.sort.is_empty() && !walk_sort,
            broad: any_broad && !any_selective && !unmeasured,
            walk_sort,
        }
    }
}

/// The clauses worth measuring: those backed by index rows. Text searches (`All`/`Any` of words)
/// stay sets; `_id` and `_lastUpdated` are conditions on the resource row itself.
pub fn measured_clauses(request: &SearchRequest) -> Vec<usize> {
    request
        .clauses
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c,
                Clause::Index { .. }
                    | Clause::Missing { .. }
                    | Clause::Chain { .. }
                    | Clause::Composite { .. }
                    | Clause::Has { .. }
            )
        })
        .map(|(n, _)| n)
        .collect()
}

/// A clause whose matches are a subset of its index rows, so that few rows mean few matches.
/// A negated clause (`:not`, `:missing=true`) matches what its rows leave out.
fn narrows(clause: &Clause) -> bool {
    match clause {
        Clause::Index { negated, .. } | Clause::Composite { negated, .. } => !negated,
        Clause::Missing { missing, .. } => !missing,
        Clause::Chain { .. } | Clause::Has { .. } => true,
        Clause::All(clauses) => clauses.iter().any(narrows),
        Clause::Any(clauses) => !clauses.is_empty() && clauses.iter().all(narrows),
        Clause::Id(_) | Clause::LastUpdated(_) => true,
        Clause::OfType(_) | Clause::Not(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::limits::Limits;
    use crate::search::registry::Registry;
    use crate::search::request::parse;

    fn request(query: &str) -> SearchRequest {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        parse(
            Registry::r4(),
            Some(&["Observation"]),
            &pairs,
            "http://x/fhir",
            Limits::default(),
            true,
        )
        .unwrap()
    }

    #[test]
    fn broad_clauses_go_row_by_row_and_small_ones_as_sets() {
        let search = request("code=1&subject.gender=female&status:not=final");
        assert_eq!(measured_clauses(&search), vec![0, 1, 2]);
        let plan = Plan::choose(&search, &[(0, false), (1, true), (2, true)]);
        let forms: Vec<bool> = (0..3).map(|n| plan.per_row(Dialect::Sqlite, n)).collect();
        assert_eq!(forms, vec![false, true, true]);
        assert!(
            !plan.broad,
            "the code clause is selective: its matches are cheap to count"
        );
        let forms: Vec<Form> = (0..3).map(|n| plan.form(Dialect::Postgres, n)).collect();
        assert_eq!(forms, vec![Form::Exists, Form::EachRow, Form::EachRow]);
    }

    #[test]
    fn a_sorted_search_walks_its_sort_index_unless_a_clause_is_selective() {
        let search = request("code=1&status=final&_sort=-date");
        let plan = Plan::choose(&search, &[(0, false), (1, true)]);
        assert!(!plan.per_row(Dialect::Sqlite, 0) && plan.per_row(Dialect::Sqlite, 1));
        assert!(!plan.walk_sort, "thirty candidates are sorted in memory");
        // Nothing selective: the sort index is walked, testing every clause row by row.
        let plan = Plan::choose(&search, &[(0, true), (1, true)]);
        assert!(plan.walk_sort && plan.per_row(Dialect::Sqlite, 0) && plan.per_row(Dialect::Sqlite, 1));
        assert!(Plan::choose(&request("_sort=date"), &[]).walk_sort);
        // Several keys, or a key that is not an index value, are sorted in memory.
        let plan = Plan::choose(&request("status=final&_sort=-date,code"), &[(0, true)]);
        assert!(!plan.walk_sort && !plan.per_row(Dialect::Sqlite, 0));
        assert!(!Plan::choose(&request("_sort=_id"), &[]).walk_sort);
        // A text clause is not measured and may be selective.
        assert!(!Plan::choose(&request("_content=x&_sort=date"), &[]).walk_sort);
    }

    #[test]
    fn only_broad_clauses_make_a_broad_search() {
        let search = request("subject.gender=female");
        assert!(Plan::choose(&search, &[(0, true)]).broad);
        assert!(!Plan::choose(&search, &[(0, false)]).broad);
        // A broad negation narrows nothing down; the positive clause decides.
        let search = request("code=1&status:not=final");
        assert!(!Plan::choose(&search, &[(0, false), (1, true)]).broad);
        assert!(Plan::choose(&search, &[(0, true), (1, false)]).broad);
        // A text search is not measured and may be selective.
        let search = request("code=1&_content=pressure");
        assert_eq!(measured_clauses(&search), vec![0]);
        assert!(!Plan::choose(&search, &[(0, true)]).broad);
        // Nothing to narrow by: counting the type up to the limit is cheap.
        assert!(!Plan::choose(&request("_count=5"), &[]).broad);
    }
}
