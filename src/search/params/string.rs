//! String parameters: every part of a name or address, or the string itself, indexed both as
//! written (for `:exact`) and normalised (lower case, accents removed) for the default
//! starts-with match and `:contains`.

use super::{IndexTable, SortColumn, SortValueKind, primitive_text};
use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// String rows: the value normalised (searched by default and by `:contains`) and as written
/// (`:exact`). The value index leads with `normalized`, so a starts-with search is a range scan.
pub const TABLE: IndexTable = IndexTable {
    name: "search_string",
    columns: &[("normalized", "text"), ("exact", "text")],
    leading: 0,
};

/// Sorted by the normalised text, so that case and accents do not split the order.
pub const SORT: SortColumn = SortColumn {
    ascending: "normalized",
    descending: "normalized",
    kind: SortValueKind::Text,
};

/// Lower case with accents removed: `Müller` → `muller`.
pub fn normalize(text: &str) -> String {
    // ASCII has nothing to decompose: lower case is all (and most index text is ASCII).
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    let mut add = |text: &str| {
        if !text.is_empty() {
            push(IndexValue::String {
                normalized: normalize(text),
                exact: text.to_owned(),
            })
        }
    };
    if let Some((object, type_name)) = super::object(item) {
        let parts: &[&str] = match type_name {
            Some("HumanName") => &["text", "family", "given", "prefix", "suffix"],
            Some("Address") => &["text", "line", "city", "district", "state", "postalCode", "country"],
            _ => &[],
        };
        for part in parts {
            match object.get(*part) {
                Some(Value::String(s)) => add(s),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut add),
                _ => {}
            }
        }
        return;
    }
    if let Some(text) = primitive_text(item) {
        add(&text);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalises_case_and_accents() {
        assert_eq!(super::normalize("Müller-ÉCOLE"), "muller-ecole");
        assert_eq!(super::normalize("Zoë"), "zoe");
        assert_eq!(super::normalize("Blood PRESSURE 120/80"), "blood pressure 120/80");
    }
}

/// A string search (search.html#string): by default case- and accent-insensitive starts-with on
/// any part; `:exact` matches the whole value as written; `:contains` anywhere.
#[derive(Debug, Clone, PartialEq)]
pub enum StringMatch {
    StartsWith(String),
    Exact(String),
    Contains(String),
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<StringMatch, super::ParseFailure> {
    let value = super::unescape(value);
    match modifier {
        None => Ok(StringMatch::StartsWith(normalize(&value))),
        Some("exact") => Ok(StringMatch::Exact(value)),
        Some("contains") => Ok(StringMatch::Contains(normalize(&value))),
        Some(_) => Err(super::ParseFailure::UnsupportedModifier),
    }
}

impl StringMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        match self {
            StringMatch::StartsWith(prefix) => super::starts_with(sql, &format!("{alias}.normalized"), prefix),
            StringMatch::Exact(text) => {
                sql.push(alias)
                    .push(".exact = ")
                    .bind(crate::sql::SqlValue::Text(text.clone()));
            }
            StringMatch::Contains(text) => super::contains(sql, &format!("{alias}.normalized"), text),
        }
    }
}
