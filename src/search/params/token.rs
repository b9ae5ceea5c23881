//! Token parameters: `system|code` pairs from Coding, CodeableConcept, Identifier and ContactPoint,
//! and bare codes from code, boolean, string, uri and id values; displays and texts kept for `:text`.

use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;
use serde_json::{Map, Value};

use super::string::normalize;
use super::{IndexTable, SortColumn, SortValueKind, primitive_text, text};

/// Token rows. The value index leads with `code` (then `system`): a search nearly always names
/// a code, often without its system.
pub const TABLE: IndexTable = IndexTable {
    name: "search_token",
    columns: &[("system", "text"), ("code", "text"), ("text", "text")],
    leading: 1,
};

/// Sorted by code.
pub const SORT: SortColumn = SortColumn {
    ascending: "code",
    descending: "code",
    kind: SortValueKind::Text,
};

fn coding(coding: &Map<String, Value>, push: &mut impl FnMut(IndexValue)) {
    push(IndexValue::Token {
        system: text(coding, "system"),
        code: text(coding, "code"),
        text: text(coding, "display").map(|t| normalize(&t)),
    });
}

/// An identifier's `system|value`, plus for `:of-type` one row per coding of its type, whose
/// `system` is `type-system|type-code` and `code` the value: so `:of-type` is an equality match on
/// the same columns (and index) as every other token search. Those rows can only be found by
/// `:of-type` or by a bare-value search, which the identifier's own row answers the same way.
pub(super) fn identifier(object: &Map<String, Value>, push: &mut impl FnMut(IndexValue)) {
    let identifier_type = object.get("type");
    let value = text(object, "value");
    push(IndexValue::Token {
        system: text(object, "system"),
        code: value.clone(),
        text: identifier_type
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str)
            .map(normalize),
    });
    let Some(value) = value else { return };
    for coding in identifier_type
        .and_then(|t| t.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(code) = coding.get("code").and_then(Value::as_str) {
            let system = coding.get("system").and_then(Value::as_str).unwrap_or_default();
            push(IndexValue::Token {
                system: Some(format!("{system}|{code}")),
                code: Some(value.clone()),
                text: None,
            });
        }
    }
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some((object, type_name)) = super::object(item) {
        match type_name {
            Some("Coding") => coding(object, push),
            Some("CodeableConcept") => {
                for c in object
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                {
                    coding(c, push);
                }
                if let Some(t) = text(object, "text") {
                    push(IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some(normalize(&t)),
                    });
                }
            }
            Some("Identifier") => identifier(object, push),
            Some("ContactPoint") => push(IndexValue::Token {
                system: text(object, "system"),
                code: text(object, "value"),
                text: None,
            }),
            _ => {}
        }
        return;
    }
    if let Some(code) = primitive_text(item) {
        push(IndexValue::Token {
            system: None,
            code: Some(code.into_owned()),
            text: None,
        });
    }
}

/// A token search (search.html#token): `code`, `system|code`, `|code` (no system), `system|`
/// (any code of the system); `:text` on display and text (starts-with, normalised);
/// `:of-type` (`type-system|type-code|value` of an identifier); `:in` a value set. `:not` and
/// `:not-in` are the negations of the plain match and `:in`, applied by the caller around the
/// whole clause.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenMatch {
    Code(String),
    SystemAndCode(String, String),
    NoSystemCode(String),
    System(String),
    Text(String),
    OfType {
        type_system: String,
        type_code: String,
        value: String,
    },
    /// The codes of the value set at `url`, filled in by `value_sets::expand_in_request` before
    /// the query is compiled (a code of `None` stands for every code of its system).
    InValueSet {
        url: String,
        codes: Vec<(String, Option<String>)>,
        /// The search parameter as written, for error messages.
        parameter: String,
    },
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<TokenMatch, super::ParseFailure> {
    match modifier {
        None | Some("not") => {}
        Some("text") => return Ok(TokenMatch::Text(normalize(&super::unescape(value)))),
        Some("of-type") => return parse_of_type(value),
        Some("in") | Some("not-in") => {
            return Ok(TokenMatch::InValueSet {
                url: super::unescape(value),
                codes: Vec::new(),
                parameter: String::new(),
            });
        }
        Some(_) => return Err(super::ParseFailure::UnsupportedModifier),
    }
    let parts = super::split_unescaped(value, '|');
    Ok(match parts.as_slice() {
        [code] => TokenMatch::Code(super::unescape(code)),
        ["", code] => TokenMatch::NoSystemCode(super::unescape(code)),
        [system, ""] => TokenMatch::System(super::unescape(system)),
        [system, code] => TokenMatch::SystemAndCode(super::unescape(system), super::unescape(code)),
        _ => {
            return Err(super::ParseFailure::Invalid(
                "a token is code, system|code, |code or system|".into(),
            ));
        }
    })
}

fn parse_of_type(value: &str) -> Result<TokenMatch, super::ParseFailure> {
    match super::split_unescaped(value, '|').as_slice() {
        [type_system, type_code, value] if !type_code.is_empty() && !value.is_empty() => Ok(TokenMatch::OfType {
            type_system: super::unescape(type_system),
            type_code: super::unescape(type_code),
            value: super::unescape(value),
        }),
        _ => Err(super::ParseFailure::Invalid(
            "':of-type' takes type-system|type-code|value, with a type code and a value".into(),
        )),
    }
}

impl TokenMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        use crate::sql::SqlValue::Text;
        match self {
            TokenMatch::Code(code) => {
                sql.push(alias).push(".code = ").bind(Text(code.clone()));
            }
            TokenMatch::SystemAndCode(system, code) => {
                sql.push(alias)
                    .push(".code = ")
                    .bind(Text(code.clone()))
                    .push(" AND ")
                    .push(alias)
                    .push(".system = ")
                    .bind(Text(system.clone()));
            }
            TokenMatch::NoSystemCode(code) => {
                sql.push(alias)
                    .push(".code = ")
                    .bind(Text(code.clone()))
                    .push(" AND ")
                    .push(alias)
                    .push(".system IS NULL");
            }
            TokenMatch::System(system) => {
                sql.push(alias).push(".system = ").bind(Text(system.clone()));
            }
            TokenMatch::Text(text) => super::starts_with(sql, &format!("{alias}.text"), text),
            TokenMatch::OfType {
                type_system,
                type_code,
                value,
            } => {
                sql.push(alias)
                    .push(".code = ")
                    .bind(Text(value.clone()))
                    .push(" AND ")
                    .push(alias)
                    .push(".system = ")
                    .bind(Text(format!("{type_system}|{type_code}")));
            }
            TokenMatch::InValueSet { codes, .. } => {
                if codes.is_empty() {
                    sql.push("1 = 0");
                }
                for (n, (system, code)) in codes.iter().enumerate() {
                    if n > 0 {
                        sql.push(" OR ");
                    }
                    sql.push("(").push(alias).push(".system = ").bind(Text(system.clone()));
                    if let Some(code) = code {
                        sql.push(" AND ").push(alias).push(".code = ").bind(Text(code.clone()));
                    }
                    sql.push(")");
                }
            }
        }
    }
}
