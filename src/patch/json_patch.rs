//! JSON Patch (RFC 6902): a list of `add`, `remove`, `replace`, `move`, `copy` and `test`
//! operations addressed by JSON Pointers (RFC 6901), applied in order to a resource's JSON.
//! Parsing refuses a malformed document (`400`); applying fails (`422`) when a pointer finds
//! nothing or a `test` does not hold. The caller applies the patch to a copy, so a failure at
//! operation five leaves the resource as operations one to four never happened.

use crate::error::{Error, ErrorKind, IssueCode, Result};
use serde_json::{Map, Value};

/// A parsed JSON Patch document. Two are equal when their documents are (a request body, or a
/// Bundle entry's Binary, carrying the same patch).
#[derive(Debug, Clone)]
pub struct JsonPatch {
    operations: Vec<Operation>,
    source: Value,
}

impl PartialEq for JsonPatch {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(Value),
    Remove,
    Replace(Value),
    Move(Pointer),
    Copy(Pointer),
    Test(Value),
}

#[derive(Debug, Clone)]
struct Operation {
    op: Op,
    path: Pointer,
}

/// A JSON Pointer as its unescaped reference tokens (`/a~1b/0` is `["a/b", "0"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    fn parse(text: &str) -> Option<Pointer> {
        if text.is_empty() {
            return Some(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let rest = text.strip_prefix('/')?;
        let tokens = rest
            .split('/')
            // `~1` first, so that `~01` becomes `~1` and not `/` (RFC 6901 §4).
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Some(Pointer {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The FHIRPath-style location of the pointer in a resource, for OperationOutcome
    /// `expression`: `/name/0/family` in a Patient is `Patient.name[0].family`.
    fn as_expression(&self, resource_type: &str) -> String {
        let mut out = resource_type.to_owned();
        for token in &self.tokens {
            if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!("[{token}]"));
            } else {
                out.push('.');
                out.push_str(token);
            }
        }
        out
    }
}

impl JsonPatch {
    /// Reads a JSON Patch document: an array of operation objects. Members other than `op`,
    /// `path`, `from` and `value` are ignored, as RFC 6902 §4 asks.
    pub fn parse(document: &Value) -> Result<JsonPatch> {
        let Value::Array(items) = document else {
            return Err(malformed(
                "a JSON Patch document must be a JSON array of operations",
                None,
            ));
        };
        let mut operations = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let Value::Object(object) = item else {
                return Err(malformed(
                    format!("operation {index} is not a JSON object"),
                    Some(index),
                ));
            };
            let pointer = |member: &str| -> Result<Pointer> {
                let text = object
                    .get(member)
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(format!("operation {index} has no '{member}' string"), Some(index)))?;
                Pointer::parse(text).ok_or_else(|| {
                    malformed(
                        format!(
                            "operation {index}: '{text}' is not a JSON Pointer (it must be empty or start with '/')"
                        ),
                        Some(index),
                    )
                })
            };
            let value = || -> Result<Value> {
                object
                    .get("value")
                    .cloned()
                    .ok_or_else(|| malformed(format!("operation {index} needs a 'value'"), Some(index)))
            };
            let name = object.get("op").and_then(Value::as_str).unwrap_or_default();
            let op = match name {
                "add" => Op::Add(value()?),
                "remove" => Op::Remove,
                "replace" => Op::Replace(value()?),
                "move" => Op::Move(pointer("from")?),
                "copy" => Op::Copy(pointer("from")?),
                "test" => Op::Test(value()?),
                other => {
                    return Err(malformed(
                        format!(
                            "operation {index}: '{other}' is not a JSON Patch op (add, remove, replace, move, copy, test)"
                        ),
                        Some(index),
                    ));
                }
            };
            operations.push(Operation {
                op,
                path: pointer("path")?,
            });
        }
        Ok(JsonPatch {
            operations,
            source: document.clone(),
        })
    }

    /// Applies every operation in order to `document`. On failure `document` is left part-way;
    /// the caller works on a copy.
    pub fn apply(&self, document: &mut Value) -> Result<()> {
        let resource_type = document
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("Resource")
            .to_owned();
        // What the operations add, counted as they go: copies can double the resource each.
        let mut weight = super::bounds::measure(document).0;
        for (index, operation) in self.operations.iter().enumerate() {
            apply_one(document, operation, &mut weight).map_err(|message| {
                Error::new(
                    ErrorKind::Unprocessable,
                    IssueCode::Processing,
                    format!(
                        "JSON Patch operation {index} ({} {}): {message}",
                        operation.name(),
                        operation.path.text
                    ),
                )
                .at(operation.path.as_expression(&resource_type))
            })?;
        }
        Ok(())
    }
}

impl Operation {
    fn name(&self) -> &'static str {
        match self.op {
            Op::Add(_) => "add",
            Op::Remove => "remove",
            Op::Replace(_) => "replace",
            Op::Move(_) => "move",
            Op::Copy(_) => "copy",
            Op::Test(_) => "test",
        }
    }
}

fn malformed(message: impl Into<String>, index: Option<usize>) -> Error {
    let e = Error::new(ErrorKind::Invalid, IssueCode::Invalid, message);
    match index {
        Some(i) => e.at(format!("JsonPatch[{i}]")),
        None => e,
    }
}

/// `value` may go to `path` in a document of `weight` (which it adds to): the result stays
/// within `bounds`.
fn admit(value: &Value, path: &Pointer, weight: &mut usize) -> std::result::Result<(), String> {
    if let Some(why) = super::bounds::too_deep(value, path.tokens.len()) {
        return Err(why);
    }
    *weight += super::bounds::measure(value).0;
    if *weight > super::bounds::MAX_WEIGHT {
        return Err(format!(
            "the patched resource would be larger than {} MiB",
            super::bounds::MAX_WEIGHT >> 20
        ));
    }
    Ok(())
}

fn apply_one(document: &mut Value, operation: &Operation, weight: &mut usize) -> std::result::Result<(), String> {
    let path = &operation.path;
    match &operation.op {
        Op::Add(value) => {
            admit(value, path, weight)?;
            add(document, path, value.clone())
        }
        Op::Remove => remove(document, path).map(|_| ()),
        Op::Replace(value) => {
            admit(value, path, weight)?;
            let target = get_mut(document, &path.tokens).ok_or("there is no value at the path")?;
            *target = value.clone();
            Ok(())
        }
        Op::Move(from) => {
            if from == path {
                return Ok(());
            }
            if path.tokens.len() > from.tokens.len() && path.tokens.starts_with(&from.tokens) {
                return Err(format!("cannot move '{}' into one of its own children", from.text));
            }
            let value = remove(document, from).map_err(|e| format!("from '{}': {e}", from.text))?;
            if let Some(why) = super::bounds::too_deep(&value, path.tokens.len()) {
                return Err(why);
            }
            add(document, path, value)
        }
        Op::Copy(from) => {
            let source =
                get_mut(document, &from.tokens).ok_or_else(|| format!("there is no value at from '{}'", from.text))?;
            admit(source, path, weight)?;
            let value = source.clone();
            add(document, path, value)
        }
        Op::Test(expected) => {
            let actual = get_mut(document, &path.tokens).ok_or("there is no value at the path")?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(format!("the test failed: the value is {actual}, not {expected}"))
            }
        }
    }
}

fn get_mut<'a>(document: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    let mut current = document;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(items) => {
                let i = array_index(token, items.len())?;
                items.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// An array index token: decimal digits without a leading zero, below `len`.
fn array_index(token: &str, len: usize) -> Option<usize> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok().filter(|&i| i < len)
}

fn add(document: &mut Value, path: &Pointer, value: Value) -> std::result::Result<(), String> {
    let Some((last, parent_tokens)) = path.tokens.split_last() else {
        *document = value;
        return Ok(());
    };
    let parent = get_mut(document, parent_tokens)
        .ok_or("the parent of the path does not exist (add does not create missing objects)")?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i = array_index(last, items.len() + 1)
                .ok_or_else(|| format!("'{last}' is not an index of the array (0 to {})", items.len()))?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err("the parent of the path is neither an object nor an array".into()),
    }
}

fn remove(document: &mut Value, path: &Pointer) -> std::result::Result<Value, String> {
    let Some((last, parent_tokens)) = path.tokens.split_last() else {
        return Err("cannot remove the whole resource".into());
    };
    let parent = get_mut(document, parent_tokens).ok_or("there is no value at the path")?;
    match parent {
        Value::Object(map) => map
            .shift_remove(last)
            .ok_or_else(|| "there is no value at the path".into()),
        Value::Array(items) => {
            let i = array_index(last, items.len()).ok_or("there is no value at the path")?;
            Ok(items.remove(i))
        }
        _ => Err("there is no value at the path".into()),
    }
}

/// JSON equality as RFC 6902 §4.6 defines it for `test`: numbers by value, objects regardless of
/// member order, arrays element by element.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_that_would_grow_the_resource_without_bound_are_refused() {
        let mut patient = serde_json::json!({"resourceType": "Patient", "extension": [{"url": "http://x", "valueString": "y".repeat(1_000_000)}]});
        let doubling: Vec<Value> = (0..40)
            .map(|_| serde_json::json!({"op": "copy", "from": "/extension", "path": "/extension/-"}))
            .collect();
        let patch = JsonPatch::parse(&Value::Array(doubling)).unwrap();
        let refused = patch.apply(&mut patient).unwrap_err();
        assert!(refused.to_string().contains("larger than"), "{refused}");
        // Nesting a value deeper than a body may be is refused too, by add and by copy alike.
        let mut deep = serde_json::json!("leaf");
        for _ in 0..120 {
            deep = serde_json::json!({"a": deep});
        }
        let mut patient = serde_json::json!({"resourceType": "Patient"});
        let add = serde_json::json!([{"op": "add", "path": "/a", "value": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": deep}}}}}}}}}]);
        let refused = JsonPatch::parse(&add).unwrap().apply(&mut patient).unwrap_err();
        assert!(refused.to_string().contains("deeper than"), "{refused}");
        let mut nested = serde_json::json!({"resourceType": "Patient", "a": {"b": 1}});
        let copies: Vec<Value> = (0..200)
            .map(|_| serde_json::json!({"op": "copy", "from": "/a", "path": "/a/b"}))
            .collect();
        let refused = JsonPatch::parse(&Value::Array(copies))
            .unwrap()
            .apply(&mut nested)
            .unwrap_err();
        assert!(refused.to_string().contains("deeper than"), "{refused}");
    }
    use serde_json::json;

    fn patched(doc: Value, patch: Value) -> Result<Value> {
        let mut doc = doc;
        JsonPatch::parse(&patch)?.apply(&mut doc)?;
        Ok(doc)
    }

    #[test]
    fn the_six_operations() {
        let doc = json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}], "gender": "male"});
        let out = patched(
            doc,
            json!([
                {"op": "add", "path": "/name/0/given/-", "value": "c"},
                {"op": "remove", "path": "/name/0/given/0"},
                {"op": "replace", "path": "/gender", "value": "female"},
                {"op": "copy", "from": "/name/0", "path": "/name/1"},
                {"op": "move", "from": "/name/1/given/1", "path": "/name/1/given/0"},
                {"op": "test", "path": "/name/1/given", "value": ["c", "b"]}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"resourceType": "Patient", "name": [{"given": ["b", "c"]}, {"given": ["c", "b"]}], "gender": "female"})
        );
    }

    #[test]
    fn failures_name_the_operation_and_the_element() {
        let doc = json!({"resourceType": "Patient", "name": [{"family": "A"}]});
        let e = patched(
            doc.clone(),
            json!([{"op": "test", "path": "/name/0/family", "value": "B"}]),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unprocessable);
        assert_eq!(e.issues[0].expression.as_deref(), Some("Patient.name[0].family"));
        assert!(e.issues[0].diagnostics.contains("operation 0 (test /name/0/family)"));
        let e = patched(doc.clone(), json!([{"op": "remove", "path": "/name/01"}])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unprocessable, "a leading zero is not an index");
        let e = patched(doc.clone(), json!([{"op": "delete", "path": "/name"}])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = patched(doc, json!({"op": "remove", "path": "/name"})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "the document must be an array");
    }

    #[test]
    fn test_compares_numbers_by_value() {
        let doc = json!({"a": 1});
        assert!(patched(doc.clone(), json!([{"op": "test", "path": "/a", "value": 1.0}])).is_ok());
        assert!(patched(doc, json!([{"op": "test", "path": "/a", "value": "1"}])).is_err());
    }
}
