//! One module per search parameter type. Each holds everything about its type together: how
//! FHIRPath results become index values, the index table that keeps them (name, columns with their
//! PostgreSQL types, the column its value index leads with), the column `_sort` orders by, the
//! parsing of search values and their SQL predicate. This file is the one place that dispatches on
//! the parameter type (`ParamType`, `IndexValue`, `ValueMatch`) to those modules, and holds what
//! the types share (prefixes, escaping, range scans).

pub mod composite;
pub mod date;
pub mod number;
pub mod quantity;
pub mod reference;
pub mod string;
pub mod text;
pub mod token;
pub mod uri;

use crate::error::Error;
use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;
use crate::search::registry::ParamType;
use crate::sql::{Sql, SqlValue};
use serde_json::{Map, Value};

/// An index table and its value columns with their PostgreSQL types (after `rid` and `param`).
pub struct IndexTable {
    pub name: &'static str,
    pub columns: &'static [(&'static str, &'static str)],
    /// The position in `columns` of the column the table's value index leads with (after `param`).
    pub leading: usize,
}

/// The SQL type of a sort key, which decides how a cursor value is bound again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortValueKind {
    Text,
    Int,
    Real,
}

/// The index column `_sort` orders a parameter type by: a resource's key is the smallest value of
/// `ascending` (ascending) or the largest of `descending` (descending).
pub struct SortColumn {
    pub ascending: &'static str,
    pub descending: &'static str,
    pub kind: SortValueKind,
}

impl SortColumn {
    /// The column for a sort in this direction.
    pub fn column(&self, descending: bool) -> &'static str {
        if descending { self.descending } else { self.ascending }
    }
}

/// Where a parameter type's values are kept, and how they sort.
pub struct TypeIndex {
    pub table: &'static IndexTable,
    pub sort: &'static SortColumn,
}

/// The index table and sort column of a parameter type; `None` for the types without a table of
/// their own (a composite's components are rows of their own types; special parameters have none).
pub fn type_index(kind: ParamType) -> Option<TypeIndex> {
    let (table, sort) = match kind {
        ParamType::String => (&string::TABLE, &string::SORT),
        ParamType::Token => (&token::TABLE, &token::SORT),
        ParamType::Date => (&date::TABLE, &date::SORT),
        ParamType::Number => (&number::TABLE, &number::SORT),
        ParamType::Quantity => (&quantity::TABLE, &quantity::SORT),
        ParamType::Reference => (&reference::TABLE, &reference::SORT),
        ParamType::Uri => (&uri::TABLE, &uri::SORT),
        ParamType::Composite | ParamType::Special => return None,
    };
    Some(TypeIndex { table, sort })
}

/// Every index table, in the order `table_of` numbers them (and `store` keeps a resource's rows).
pub const INDEX_TABLES: [IndexTable; 7] = [
    string::TABLE,
    token::TABLE,
    date::TABLE,
    number::TABLE,
    quantity::TABLE,
    reference::TABLE,
    uri::TABLE,
];

/// The position in `INDEX_TABLES` of the table that holds `value`.
pub fn table_of(value: &IndexValue) -> usize {
    match value {
        IndexValue::String { .. } => 0,
        IndexValue::Token { .. } => 1,
        IndexValue::Date { .. } => 2,
        IndexValue::Number { .. } => 3,
        IndexValue::Quantity { .. } => 4,
        IndexValue::Reference { .. } => 5,
        IndexValue::Uri { .. } => 6,
    }
}

/// The JSON object of a complex item, with its FHIR type when known.
pub(crate) fn object<'a>(item: &'a Item<'_>) -> Option<(&'a Map<String, Value>, Option<&'a str>)> {
    match item {
        Item::Node(node) => node.object().map(|o| (o, node.type_name)),
        _ => None,
    }
}

/// The string at `key` of a JSON object, owned.
pub(crate) fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The index values of one FHIRPath result item for a parameter of type `kind`.
/// `own_base` is the server's base URL: absolute references under it point at resources here.
pub(crate) fn extract_value(kind: ParamType, item: &Item<'_>, own_base: &str, push: &mut impl FnMut(IndexValue)) {
    match kind {
        ParamType::String => string::extract(item, push),
        ParamType::Token => token::extract(item, push),
        ParamType::Date => date::extract(item, push),
        ParamType::Number => number::extract(item, push),
        ParamType::Quantity => quantity::extract(item, push),
        ParamType::Reference => reference::extract(item, own_base, push),
        ParamType::Uri => uri::extract(item, push),
        ParamType::Composite | ParamType::Special => {}
    }
}

/// The text of a primitive item (a string, code, uri, … node or a System string).
pub(crate) fn primitive_text<'a>(item: &'a Item<'_>) -> Option<std::borrow::Cow<'a, str>> {
    match item {
        Item::String(s) => Some(std::borrow::Cow::Borrowed(s.as_ref())),
        Item::Node(node) => match node.value? {
            Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            Value::Bool(b) => Some(std::borrow::Cow::Owned(b.to_string())),
            Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
            _ => None,
        },
        Item::Boolean(b) => Some(std::borrow::Cow::Owned(b.to_string())),
        Item::Integer(i) => Some(std::borrow::Cow::Owned(i.to_string())),
        _ => None,
    }
}

/// A comparison prefix on number, date and quantity values (search.html#prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// Splits a leading prefix off `value` (`eq` when there is none).
    pub fn split(value: &str) -> (Prefix, &str) {
        let prefixes = [
            ("eq", Prefix::Eq),
            ("ne", Prefix::Ne),
            ("gt", Prefix::Gt),
            ("lt", Prefix::Lt),
            ("ge", Prefix::Ge),
            ("le", Prefix::Le),
            ("sa", Prefix::Sa),
            ("eb", Prefix::Eb),
            ("ap", Prefix::Ap),
        ];
        for (text, prefix) in prefixes {
            if let Some(rest) = value.strip_prefix(text) {
                return (prefix, rest);
            }
        }
        (Prefix::Eq, value)
    }
}

/// Splits `value` at every `separator` not escaped with `\`, keeping escapes in the parts (they
/// are removed by `unescape` once a part has no more splitting to do).
pub fn split_unescaped(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(&value[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Removes the escapes `\,` `\|` `\$` `\\` of search.html#escaping.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
            continue;
        }
        out.push(c);
    }
    out
}

/// The smallest string greater than every string starting with `prefix` (in code-point order,
/// which is byte order for UTF-8 and so the order of SQLite's BINARY and PostgreSQL's "C"
/// collation), or `None` when there is none. `prefix <= s < successor` is then an index range scan.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `column >= prefix AND column < successor` (or just `>=` when there is no successor).
pub fn starts_with(sql: &mut Sql, column: &str, prefix: &str) {
    sql.push(column).push(" >= ").bind(SqlValue::Text(prefix.to_owned()));
    if let Some(end) = prefix_successor(prefix) {
        sql.push(" AND ").push(column).push(" < ").bind(SqlValue::Text(end));
    }
}

/// `column LIKE '%text%'` with LIKE's own wildcards in `text` escaped.
pub fn contains(sql: &mut Sql, column: &str, text: &str) {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    sql.push(column)
        .push(" LIKE ")
        .bind(SqlValue::Text(pattern))
        .push(" ESCAPE '\\'");
}

/// A parse error of a search value: always a 400 naming the parameter.
pub fn bad_value(param: &str, value: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("search parameter {param}: '{value}' is not valid: {why}")).at(param.to_owned())
}

/// Why a value of a parameter type was not understood: a modifier the type does not support is
/// not the client's data being wrong, so it is ignored (or refused under `handling=strict`).
#[derive(Debug)]
pub enum ParseFailure {
    UnsupportedModifier,
    /// The value is malformed; the text says what was expected.
    Invalid(String),
}

/// One parameter-type-specific match on an index row, written over the row's table alias.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueMatch {
    String(string::StringMatch),
    Token(token::TokenMatch),
    Date(date::DateMatch),
    Number(number::NumberMatch),
    Quantity(quantity::QuantityMatch),
    Reference(reference::ReferenceMatch),
    Uri(uri::UriMatch),
}

impl ValueMatch {
    /// Parses one (comma-free) value of a parameter of type `kind`; `targets` are a reference
    /// parameter's target types, `base_url` the server's base (both for references only).
    pub fn parse(
        kind: ParamType,
        value: &str,
        modifier: Option<&str>,
        targets: &[String],
        base_url: &str,
    ) -> Result<ValueMatch, ParseFailure> {
        Ok(match kind {
            ParamType::String => ValueMatch::String(string::parse(value, modifier)?),
            ParamType::Token => ValueMatch::Token(token::parse(value, modifier)?),
            ParamType::Date => ValueMatch::Date(date::parse(value, modifier)?),
            ParamType::Number => ValueMatch::Number(number::parse(value, modifier)?),
            ParamType::Quantity => ValueMatch::Quantity(quantity::parse(value, modifier)?),
            ParamType::Reference => ValueMatch::Reference(reference::parse(value, modifier, targets, base_url)?),
            ParamType::Uri => ValueMatch::Uri(uri::parse(value, modifier)?),
            ParamType::Composite | ParamType::Special => {
                return Err(ParseFailure::Invalid(
                    "this parameter type has no value of its own".into(),
                ));
            }
        })
    }

    /// Appends the condition on an index row aliased `alias`.
    pub fn write(&self, sql: &mut Sql, alias: &str) {
        match self {
            ValueMatch::String(m) => m.write(sql, alias),
            ValueMatch::Token(m) => m.write(sql, alias),
            ValueMatch::Date(m) => m.write(sql, alias),
            ValueMatch::Number(m) => m.write(sql, alias),
            ValueMatch::Quantity(m) => m.write(sql, alias),
            ValueMatch::Reference(m) => m.write(sql, alias),
            ValueMatch::Uri(m) => m.write(sql, alias),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_goes_to_the_table_of_its_type() {
        let values = [
            (
                ParamType::String,
                IndexValue::String {
                    normalized: String::new(),
                    exact: String::new(),
                },
            ),
            (
                ParamType::Token,
                IndexValue::Token {
                    system: None,
                    code: None,
                    text: None,
                },
            ),
            (ParamType::Date, IndexValue::Date { low: 0, high: 0 }),
            (ParamType::Number, IndexValue::Number { value: 0.0 }),
            (
                ParamType::Quantity,
                IndexValue::Quantity {
                    value: 0.0,
                    system: None,
                    code: None,
                    unit: None,
                },
            ),
            (
                ParamType::Reference,
                IndexValue::Reference {
                    target_type: None,
                    target_id: None,
                    url: String::new(),
                },
            ),
            (ParamType::Uri, IndexValue::Uri { uri: String::new() }),
        ];
        for (kind, value) in values {
            let index = type_index(kind).unwrap();
            assert_eq!(INDEX_TABLES[table_of(&value)].name, index.table.name, "{kind:?}");
            assert!(index.table.leading < index.table.columns.len());
            for direction in [false, true] {
                let column = index.sort.column(direction);
                assert!(
                    index.table.columns.iter().any(|(c, _)| *c == column),
                    "{kind:?} sorts by {column}"
                );
            }
        }
        assert!(type_index(ParamType::Composite).is_none() && type_index(ParamType::Special).is_none());
    }

    #[test]
    fn escaped_separators_stay_in_their_part() {
        assert_eq!(split_unescaped(r"a\,b,c", ','), vec![r"a\,b", "c"]);
        assert_eq!(unescape(r"a\,b\|c\\d"), r"a,b|c\d");
        assert_eq!(split_unescaped("http://x|123", '|'), vec!["http://x", "123"]);
        assert_eq!(split_unescaped("", ','), vec![""]);
    }

    #[test]
    fn prefixes_split_off() {
        assert_eq!(Prefix::split("ge2020"), (Prefix::Ge, "2020"));
        assert_eq!(Prefix::split("2020"), (Prefix::Eq, "2020"));
    }

    #[test]
    fn successor_bounds_a_prefix() {
        assert_eq!(prefix_successor("smi").as_deref(), Some("smj"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor(""), None);
        // U+D7FF is followed by U+E000: surrogates are not characters.
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
