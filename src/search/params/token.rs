//! Token parameters: `system|code` pairs from Coding, CodeableConcept, Identifier and ContactPoint,
//! and bare codes from code, boolean, string, uri and id values; displays and texts kept for `:text`.

use crate::fhirpath::Item;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;
use serde_json::{Map, Value};

use super::string::normalize;
use super::text;

fn coding(coding: &Map<String, Value>, push: &mut impl FnMut(IndexValue)) {
    push(IndexValue::Token {
        system: text(coding, "system"),
        code: text(coding, "code"),
        text: text(coding, "display").map(|t| normalize(&t)),
    });
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
            Some("Identifier") => {
                let type_text = object
                    .get("type")
                    .and_then(|t| t.get("text"))
                    .and_then(Value::as_str)
                    .map(normalize);
                push(IndexValue::Token {
                    system: text(object, "system"),
                    code: text(object, "value"),
                    text: type_text,
                });
            }
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
/// (any code of the system); `:text` on display and text (starts-with, normalised). `:not` is the
/// negation of the plain match and is applied by the caller around the whole clause.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenMatch {
    Code(String),
    SystemAndCode(String, String),
    NoSystemCode(String),
    System(String),
    Text(String),
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<TokenMatch, super::ParseFailure> {
    match modifier {
        None | Some("not") => {}
        Some("text") => return Ok(TokenMatch::Text(normalize(&super::unescape(value)))),
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

impl TokenMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql) {
        use crate::sql::SqlValue::Text;
        match self {
            TokenMatch::Code(code) => {
                sql.push("i.code = ").bind(Text(code.clone()));
            }
            TokenMatch::SystemAndCode(system, code) => {
                sql.push("i.code = ")
                    .bind(Text(code.clone()))
                    .push(" AND i.system = ")
                    .bind(Text(system.clone()));
            }
            TokenMatch::NoSystemCode(code) => {
                sql.push("i.code = ")
                    .bind(Text(code.clone()))
                    .push(" AND i.system IS NULL");
            }
            TokenMatch::System(system) => {
                sql.push("i.system = ").bind(Text(system.clone()));
            }
            TokenMatch::Text(text) => super::starts_with(sql, "i.text", text),
        }
    }
}
