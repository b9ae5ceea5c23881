//! How large and how deep a patched resource may grow. A patch is small, but what it does need
//! not be: a JSON Patch `copy` doubles what it copies, so forty of them turn a kilobyte into a
//! terabyte, and an `add` may nest a value deeper than any body the server would parse. Every
//! value is measured without recursion, so measuring cannot exhaust the stack either.

use serde_json::Value;

/// The deepest a resource may nest objects and arrays: JSON bodies are refused past this depth
/// when they are read, and a stored resource must be readable again.
pub const MAX_DEPTH: usize = 128;

/// The most a patched resource may weigh (about its size as JSON, in bytes): twice the default
/// limit on request bodies.
pub const MAX_WEIGHT: usize = 64 << 20;

/// About the size of `value` as JSON, in bytes, and its depth (a scalar is 0, `[]` or `{}` 1).
pub fn measure(value: &Value) -> (usize, usize) {
    let mut weight = 0;
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        match value {
            Value::Null | Value::Bool(_) => weight += 5,
            Value::Number(n) => weight += n.to_string().len(),
            Value::String(s) => weight += s.len() + 2,
            Value::Array(items) => {
                deepest = deepest.max(depth + 1);
                weight += 2 + items.len();
                pending.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(members) => {
                deepest = deepest.max(depth + 1);
                weight += 2;
                for (key, member) in members {
                    weight += key.len() + 4;
                    pending.push((member, depth + 1));
                }
            }
        }
    }
    (weight, deepest)
}

/// Why a value placed at `at_depth` (the number of containers around it) would make the resource
/// too deep, if it would.
pub fn too_deep(value: &Value, at_depth: usize) -> Option<String> {
    let (_, depth) = measure(value);
    (at_depth + depth > MAX_DEPTH).then(|| format!("the patched resource would nest deeper than {MAX_DEPTH} levels"))
}

/// Why a patched resource is too large or too deep, if it is.
pub fn check(resource: &Value) -> Option<String> {
    let (weight, depth) = measure(resource);
    if depth > MAX_DEPTH {
        return Some(format!(
            "the patched resource would nest deeper than {MAX_DEPTH} levels"
        ));
    }
    (weight > MAX_WEIGHT).then(|| format!("the patched resource would be larger than {} MiB", MAX_WEIGHT >> 20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn measures_size_and_depth_without_recursion() {
        assert_eq!(measure(&json!("ab")).1, 0);
        assert_eq!(measure(&json!({"a": [1, {"b": true}]})).1, 3);
        let mut deep = json!(1);
        for _ in 0..200_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(measure(&deep).1, 200_000);
        assert!(check(&deep).is_some());
        // Dropping it recursively would be the next problem: take it apart level by level.
        while let Value::Array(mut items) = deep {
            deep = items.pop().unwrap_or(Value::Null);
        }
        let big = json!({"data": "x".repeat(MAX_WEIGHT)});
        assert!(check(&big).unwrap().contains("larger"));
        assert!(check(&json!({"resourceType": "Patient"})).is_none());
    }
}
