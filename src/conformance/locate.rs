//! Values inside a fixture or a response, as asserts and variables name them: a FHIRPath
//! `expression` (the project's engine), or a `path` — XPath over FHIR XML as scripts write it
//! (`fhir:Bundle/fhir:entry/fhir:resource/fhir:Patient/fhir:id/@value`, `count(…)`, `[n]`),
//! walked on the JSON form, or a simple JSONPath (`$.entry[0].resource.id`).

use crate::fhirpath::{Context, Expression, Item};
use serde_json::Value;

/// The values `expression` finds in `resource`, as text (a FHIRPath error is an `Err`).
pub fn expression_values(resource: &Value, expression: &str) -> Result<Vec<String>, String> {
    let parsed = Expression::parse(expression).map_err(|e| e.to_string())?;
    let context = Context::new().with_model(crate::model::structure::fhirpath_model());
    let items = parsed.evaluate(resource, &context).map_err(|e| e.to_string())?;
    Ok(items.iter().map(item_text).collect())
}

/// Whether `expression` is true of `resource` (a single `true`; empty or anything else is not).
pub fn expression_holds(resource: &Value, expression: &str) -> Result<bool, String> {
    let parsed = Expression::parse(expression).map_err(|e| e.to_string())?;
    let context = Context::new().with_model(crate::model::structure::fhirpath_model());
    let items = parsed.evaluate(resource, &context).map_err(|e| e.to_string())?;
    Ok(matches!(items.as_slice(), [Item::Boolean(true)]))
}

fn item_text(item: &Item<'_>) -> String {
    match item {
        Item::Node(node) => match node.value {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => item.to_string(),
        },
        other => other.to_string(),
    }
}

/// The values `path` finds in `resource`, as text.
pub fn path_values(resource: &Value, path: &str) -> Result<Vec<String>, String> {
    let path = path.trim();
    if let Some(json_path) = path.strip_prefix('$') {
        return json_path_values(resource, json_path);
    }
    if let Some(inner) = path.strip_prefix("count(").and_then(|p| p.strip_suffix(')')) {
        return Ok(vec![xpath_nodes(resource, inner)?.len().to_string()]);
    }
    Ok(xpath_nodes(resource, path)?.into_iter().map(value_text).collect())
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The JSON values an XPath over FHIR XML selects. The first step names the resource type; a
/// resource inside an element (`fhir:resource/fhir:Patient`) is named by its type too.
fn xpath_nodes<'a>(resource: &'a Value, path: &str) -> Result<Vec<&'a Value>, String> {
    if path.contains("//") || path.contains('(') {
        return Err(format!(
            "'{path}' is XPath the engine does not support (no // and no functions but count())"
        ));
    }
    let steps: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if steps.iter().any(|s| s.is_empty()) {
        return Err(format!("'{path}' has an empty step"));
    }
    let Some((first, rest)) = steps.split_first() else {
        return Err("an empty path".to_owned());
    };
    let (root_name, root_index) = step_parts(first)?;
    if resource["resourceType"].as_str() != Some(root_name) || root_index.is_some_and(|i| i != 0) {
        return Ok(Vec::new());
    }
    let mut nodes = vec![resource];
    for step in rest {
        if *step == "@value" {
            continue;
        }
        if let Some(attribute) = step.strip_prefix('@') {
            if attribute.is_empty() || !attribute.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("'@{attribute}' is not an attribute the engine can read"));
            }
            nodes = nodes.iter().filter_map(|n| n.get(attribute)).collect();
            continue;
        }
        let (name, index) = step_parts(step)?;
        let mut next = Vec::new();
        for node in &nodes {
            if node.get("resourceType").and_then(Value::as_str) == Some(name) {
                next.push(*node);
                continue;
            }
            match node.get(name) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(Value::Null) | None => {}
                Some(value) => next.push(value),
            }
        }
        nodes = match index {
            Some(i) => next.get(i).into_iter().copied().collect(),
            None => next,
        };
    }
    Ok(nodes)
}

/// `fhir:name[2]` → (`name`, Some(1)): XPath positions count from 1. Anything else XPath can
/// say (`//`, `*`, `text()`, other predicates) is an error, never an empty result an assert could
/// take for "not there".
fn step_parts(step: &str) -> Result<(&str, Option<usize>), String> {
    let unsupported = || {
        format!("the path step '{step}' is XPath the engine does not support (only [fhir:]name, [n] and @attribute)")
    };
    let step = step.strip_prefix("fhir:").unwrap_or(step);
    let name_end = step.find('[').unwrap_or(step.len());
    if name_end == 0
        || !step[..name_end]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(unsupported());
    }
    let Some((name, predicate)) = step.split_once('[') else {
        return Ok((step, None));
    };
    let position: usize = predicate
        .strip_suffix(']')
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p >= 1)
        .ok_or_else(|| format!("the path step '{step}' has a predicate the engine does not support (only [n])"))?;
    Ok((name, Some(position - 1)))
}

/// `.a.b[0].c` after the `$`.
fn json_path_values(resource: &Value, path: &str) -> Result<Vec<String>, String> {
    let mut nodes = vec![resource];
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => {
                let index: usize = rest
                    .strip_suffix(']')
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| format!("'{segment}' is not a JSONPath step the engine supports"))?;
                (name, Some(index))
            }
            None => (segment, None),
        };
        let mut next = Vec::new();
        for node in nodes {
            let child = if name.is_empty() { Some(node) } else { node.get(name) };
            match (child, index) {
                (Some(Value::Array(items)), Some(i)) => next.extend(items.get(i)),
                (Some(Value::Array(items)), None) => next.extend(items.iter()),
                (Some(Value::Null) | None, _) => {}
                (Some(value), _) => next.push(value),
            }
        }
        nodes = next;
    }
    Ok(nodes.into_iter().map(value_text).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": [
            {"resource": {"resourceType": "Patient", "id": "a", "name": [{"family": "Chalmers", "given": ["Peter", "James"]}]}},
            {"resource": {"resourceType": "Patient", "id": "b"}}]})
    }

    #[test]
    fn xpath_as_scripts_write_it_on_json() {
        let b = bundle();
        assert_eq!(path_values(&b, "fhir:Bundle/fhir:total/@value").unwrap(), ["2"]);
        assert_eq!(
            path_values(&b, "/fhir:Bundle/fhir:entry/fhir:resource/fhir:Patient/fhir:id/@value").unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            path_values(
                &b,
                "fhir:Bundle/fhir:entry[2]/fhir:resource/fhir:Patient/fhir:id/@value"
            )
            .unwrap(),
            ["b"]
        );
        assert_eq!(path_values(&b, "count(fhir:Bundle/fhir:entry)").unwrap(), ["2"]);
        let patient = &b["entry"][0]["resource"];
        assert_eq!(path_values(patient, "Patient/id").unwrap(), ["a"]);
        assert_eq!(
            path_values(patient, "fhir:Patient/fhir:name/fhir:given/@value").unwrap(),
            ["Peter", "James"]
        );
        assert!(
            path_values(patient, "fhir:Observation/fhir:id/@value")
                .unwrap()
                .is_empty()
        );
        assert!(path_values(patient, "fhir:Patient/fhir:name[fhir:use='x']").is_err());
        for unsupported in [
            "//fhir:id",
            "fhir:Patient/*",
            "fhir:Patient/fhir:id/text()",
            "count(fhir:Patient/fhir:name) > 0",
        ] {
            assert!(path_values(patient, unsupported).is_err(), "{unsupported}");
        }
        assert_eq!(path_values(&b, "$.entry[1].resource.id").unwrap(), ["b"]);
    }

    #[test]
    fn fhirpath_values_and_truth() {
        let b = bundle();
        assert_eq!(expression_values(&b, "Bundle.entry.resource.id").unwrap(), ["a", "b"]);
        assert_eq!(expression_values(&b, "Bundle.total").unwrap(), ["2"]);
        assert!(expression_holds(&b, "Bundle.entry.count() = 2").unwrap());
        assert!(!expression_holds(&b, "Bundle.entry.count() = 3").unwrap());
        assert!(expression_values(&b, "Bundle.(").is_err());
    }
}
