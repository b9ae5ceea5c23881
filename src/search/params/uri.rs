//! Uri parameters: the uri, url or canonical as written.

use super::{IndexTable, SortColumn, SortValueKind, primitive_text};
use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;

/// Uri rows: the uri as written.
pub const TABLE: IndexTable = IndexTable {
    name: "search_uri",
    columns: &[("uri", "text")],
    leading: 0,
};

/// Sorted by the uri.
pub const SORT: SortColumn = SortColumn {
    ascending: "uri",
    descending: "uri",
    kind: SortValueKind::Text,
};

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some(uri) = primitive_text(item) {
        push(IndexValue::Uri { uri: uri.into_owned() });
    }
}

/// A uri search (search.html#uri): the whole uri; `:below` any uri it starts; `:above` any uri
/// that starts it, taken at its `/` boundaries.
#[derive(Debug, Clone, PartialEq)]
pub enum UriMatch {
    Equals(String),
    Below(String),
    Above(Vec<String>),
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<UriMatch, super::ParseFailure> {
    let value = super::unescape(value);
    match modifier {
        None => Ok(UriMatch::Equals(value)),
        Some("below") => Ok(UriMatch::Below(value)),
        Some("above") => {
            let mut prefixes: Vec<String> = value
                .match_indices('/')
                .map(|(i, _)| value[..i].to_owned())
                .filter(|p| !p.is_empty() && !p.ends_with(':') && !p.ends_with('/'))
                .collect();
            prefixes.push(value);
            Ok(UriMatch::Above(prefixes))
        }
        Some(_) => Err(super::ParseFailure::UnsupportedModifier),
    }
}

impl UriMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        use crate::sql::SqlValue;
        match self {
            UriMatch::Equals(uri) => {
                sql.push(alias).push(".uri = ").bind(SqlValue::Text(uri.clone()));
            }
            UriMatch::Below(prefix) => super::starts_with(sql, &format!("{alias}.uri"), prefix),
            UriMatch::Above(prefixes) => {
                sql.push(alias).push(".uri IN (");
                for (n, prefix) in prefixes.iter().enumerate() {
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.bind(SqlValue::Text(prefix.clone()));
                }
                sql.push(")");
            }
        }
    }
}
