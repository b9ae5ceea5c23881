//! `fhir-schemas/fhir.schema.json`: a JSON Schema (2020-12) with one definition per R4 type, made
//! from the type model (`model.rs`) and the package's value sets. It carries what a schema can:
//! element names (nothing else allowed), JSON types, cardinality (`required`, arrays with at least
//! one item, single values), primitives' regexes (anchored: JSON Schema patterns are not), the
//! `_element` form of primitives (which also satisfies `required`), at most one variant of a
//! choice, no empty objects, and the codes of required bindings on `code` elements.
//! Nested resources (`contained`, Bundle entries, Parameters) are only required to be objects with
//! a `resourceType` here: the validator checks each against its own type, because errors under a
//! `oneOf` of 146 resource types tell a client nothing.

use super::GeneratedFile;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The identity under which the validator registers this document.
pub const SCHEMA_ID: &str = "urn:fhir-server:r4:schema";

pub(super) fn schema_file(model: &Value, value_sets: &[Value], code_systems: &[Value]) -> GeneratedFile {
    let codes = RequiredCodes::new(value_sets, code_systems);
    let types = model["types"].as_object().expect("model.json has types");
    let mut defs = Map::new();
    for (name, def) in types {
        defs.insert(name.clone(), type_schema(name, def, types, &codes));
    }
    let document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "$defs": defs,
    });
    // One definition per line: large, but diffable.
    let mut text = String::from("{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n");
    text.push_str(&format!("  \"$id\": {},\n  \"$defs\": {{\n", json!(SCHEMA_ID)));
    let lines: Vec<String> = document["$defs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("    {}: {v}", json!(k)))
        .collect();
    text.push_str(&lines.join(",\n"));
    text.push_str("\n  }\n}\n");
    GeneratedFile {
        path: "fhir-schemas/fhir.schema.json",
        content: text,
    }
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn def_ref(type_name: &str) -> Value {
    json!({"$ref": format!("#/$defs/{type_name}")})
}

fn is_primitive(types: &Map<String, Value>, name: &str) -> bool {
    types.get(name).is_some_and(|t| t["kind"] == "primitive-type")
}

fn is_resource(types: &Map<String, Value>, name: &str) -> bool {
    let mut current = Some(name.to_owned());
    while let Some(n) = current {
        if n == "Resource" {
            return true;
        }
        current = types.get(&n).and_then(|t| t["base"].as_str()).map(str::to_owned);
    }
    false
}

/// The JSON value of a primitive type: JSON type plus its regex.
fn primitive_schema(name: &str, def: &Value) -> Value {
    let mut schema = match name {
        "boolean" => json!({"type": "boolean"}),
        "integer" => json!({"type": "integer"}),
        "positiveInt" => json!({"type": "integer", "minimum": 1}),
        "unsignedInt" => json!({"type": "integer", "minimum": 0}),
        "decimal" => json!({"type": "number"}),
        // Every FHIR string is non-empty (R4 json.html), whatever its regex allows.
        _ => json!({"type": "string", "minLength": 1}),
    };
    if let Some(pattern) = def["pattern"].as_str()
        && schema["type"] == "string"
    {
        schema["pattern"] = json!(format!("^(?:{})$", xml_schema_classes(pattern)));
    }
    schema
}

/// FHIR's regexes come from XML Schema, where `\s` is only space, tab, CR and LF (so a no-break
/// space is `\S`). Regex engines read `\s` as Unicode white space; spell the XML meaning out.
fn xml_schema_classes(pattern: &str) -> String {
    const ANY: &str = "\u{0}ANY\u{0}";
    pattern
        .replace("[ \\r\\n\\t\\S]", ANY) // string: any character at all
        .replace("[^\\s]", "[^ \\t\\n\\r]")
        .replace("\\s", "[ \\t\\n\\r]")
        .replace("\\S", "[^ \\t\\n\\r]")
        .replace(ANY, "[\\s\\S]")
}

fn type_schema(name: &str, def: &Value, types: &Map<String, Value>, codes: &RequiredCodes) -> Value {
    if def["kind"] == "primitive-type" {
        return primitive_schema(name, def);
    }
    let elements = def["elements"].as_object().expect("elements");
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut any_of_required = Vec::new();
    let mut exclusive = Map::new();
    if def["kind"] == "resource" {
        properties.insert("resourceType".into(), json!({"const": name}));
        required.push(json!("resourceType"));
    }
    for (element, info) in elements {
        let element_types: Vec<&str> = info["types"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let array = info["array"].as_bool().unwrap_or(false);
        let min = info["min"].as_u64().unwrap_or(0);
        let choice = info["choice"].as_bool().unwrap_or(false);
        let binding_codes = info["requiredBinding"].as_str().and_then(|vs| codes.codes(vs));
        let mut variants = Vec::new();
        for element_type in &element_types {
            let key = if choice {
                format!("{element}{}", capitalised(element_type))
            } else {
                element.clone()
            };
            let mut value_schema = if element_type.starts_with("System.") {
                // The `value` of a primitive type's own definition; never a JSON property.
                continue;
            } else if is_resource(types, element_type) {
                json!({"type": "object", "required": ["resourceType"]})
            } else {
                def_ref(element_type)
            };
            if *element_type == "code"
                && let Some(codes) = &binding_codes
            {
                value_schema = json!({"allOf": [value_schema, {"enum": codes}]});
            }
            let primitive = is_primitive(types, element_type);
            properties.insert(key.clone(), many(value_schema, array, false));
            if primitive {
                properties.insert(format!("_{key}"), many(def_ref("Element"), array, true));
            }
            variants.push((key, primitive));
        }
        if variants.is_empty() {
            continue;
        }
        if min >= 1 {
            let options: Vec<Value> = variants
                .iter()
                .flat_map(|(key, primitive)| {
                    let mut o = vec![json!({"required": [key]})];
                    if *primitive {
                        o.push(json!({"required": [format!("_{key}")]}));
                    }
                    o
                })
                .collect();
            if options.len() == 1 {
                required.push(options[0]["required"][0].clone());
            } else {
                any_of_required.push(json!({"anyOf": options}));
            }
        }
        if choice && variants.len() > 1 {
            for (key, _) in &variants {
                let others: Vec<Value> = variants
                    .iter()
                    .filter(|(k, _)| k != key)
                    .map(|(k, _)| json!({"required": [k]}))
                    .collect();
                exclusive.insert(key.clone(), json!({"not": {"anyOf": others}}));
            }
        }
    }
    let mut schema = json!({
        "type": "object",
        "minProperties": 1,
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if !any_of_required.is_empty() {
        schema["allOf"] = json!(any_of_required);
    }
    if !exclusive.is_empty() {
        schema["dependentSchemas"] = Value::Object(exclusive);
    }
    schema
}

/// A single value, or (for repeating elements) a non-empty array of them. The `_element` arrays of
/// repeating primitives hold `null` where an item has no id or extensions.
fn many(item: Value, array: bool, nullable_items: bool) -> Value {
    if !array {
        return item;
    }
    let items = if nullable_items {
        json!({"anyOf": [{"type": "null"}, item]})
    } else {
        item
    };
    json!({"type": "array", "minItems": 1, "items": items})
}

/// Codes of the package's value sets, expanded where the package alone can: listed concepts, whole
/// code systems the package holds completely, and value sets included by reference. Value sets
/// that need filters or outside code systems get no list (their codes are not checked).
struct RequiredCodes {
    value_sets: BTreeMap<String, Value>,
    code_systems: BTreeMap<String, Value>,
}

impl RequiredCodes {
    fn new(value_sets: &[Value], code_systems: &[Value]) -> RequiredCodes {
        let by_url = |list: &[Value]| {
            list.iter()
                .filter_map(|r| r["url"].as_str().map(|u| (u.to_owned(), r.clone())))
                .collect()
        };
        RequiredCodes {
            value_sets: by_url(value_sets),
            code_systems: by_url(code_systems),
        }
    }

    fn codes(&self, value_set: &str) -> Option<Vec<String>> {
        let mut codes = BTreeSet::new();
        self.expand(value_set, &mut codes, 0)?;
        Some(codes.into_iter().collect())
    }

    fn expand(&self, url: &str, codes: &mut BTreeSet<String>, depth: usize) -> Option<()> {
        if depth > 8 {
            return None;
        }
        let value_set = self.value_sets.get(url.split('|').next().unwrap_or(url))?;
        for include in value_set["compose"]["include"].as_array()? {
            if include.get("filter").is_some() {
                return None;
            }
            for nested in include["valueSet"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                self.expand(nested, codes, depth + 1)?;
            }
            if let Some(concepts) = include["concept"].as_array() {
                codes.extend(concepts.iter().filter_map(|c| c["code"].as_str()).map(str::to_owned));
            } else if let Some(system) = include["system"].as_str() {
                let code_system = self.code_systems.get(system).filter(|cs| cs["content"] == "complete")?;
                collect_concepts(&code_system["concept"], codes);
            }
        }
        if value_set["compose"].get("exclude").is_some() {
            return None;
        }
        Some(())
    }
}

fn collect_concepts(concepts: &Value, codes: &mut BTreeSet<String>) {
    for concept in concepts.as_array().into_iter().flatten() {
        if let Some(code) = concept["code"].as_str() {
            codes.insert(code.to_owned());
        }
        collect_concepts(&concept["concept"], codes);
    }
}
