//! The last stage of a search: a resolved `SearchRequest` as SQL for one dialect.
//!
//! Shape: every clause is `rid IN (SELECT rid FROM <index table> …)` (AND across parameters, OR
//! across values inside), chains nest the same through `search_reference` joined to the target
//! resource, `_has` runs the other way. The page is ordered by its sort keys and then `rid`, and
//! starts after (or before) the cursor row by a keyset condition, so pages neither repeat nor skip
//! rows while writes happen. Content is joined last, for the page's rows only. Every page row
//! carries its cursor (sort keys and rid as a JSON array) for the next and previous links.
//!
//! Parts, each with its golden SQL tests: `clause` (clauses and the index rows behind them),
//! `sort` (sort keys), `page` (the page query, its keyset and order, the sort walk), `count`
//! (totals and the broad-clause probe) and `include` (`_include`, `_revinclude`). Shared SQL
//! pieces are in `search::sql_parts`.

mod clause;
mod count;
mod include;
mod page;
mod sort;

pub use count::{clause_is_broad_query, count_query, count_query_up_to};
pub use include::{include_query, revinclude_query};
pub use page::page_query;

#[cfg(test)]
mod tests {
    //! What the golden SQL tests of every part share.

    use crate::search::limits::Limits;
    use crate::search::registry::Registry;
    use crate::search::request::{SearchRequest, parse};

    /// A strictly parsed search of `resource_type` by `query`, as the tests compile it.
    pub(super) fn request(resource_type: &str, query: &str) -> SearchRequest {
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
}
