//! Token parameters: `system|code` pairs from Coding, CodeableConcept, Identifier and ContactPoint,
//! and bare codes from code, boolean, string, uri and id values; displays and texts kept for `:text`.

use crate::fhirpath::Item;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;
use serde_json::{Map, Value};

use super::text;

fn coding(coding: &Map<String, Value>, push: &mut impl FnMut(IndexValue)) {
    push(IndexValue::Token {
        system: text(coding, "system"),
        code: text(coding, "code"),
        text: text(coding, "display"),
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
                        text: Some(t),
                    });
                }
            }
            Some("Identifier") => {
                let type_text = object
                    .get("type")
                    .and_then(|t| t.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
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
