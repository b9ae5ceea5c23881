//! `fhir-schemas/model.json`: the computable shape of every R4 type — the facts the FHIRPath
//! engine, the validator and the XML converter share. Per type: kind, base type, whether it is
//! abstract, and its elements in definition order (the order XML needs), each with its types,
//! cardinality (`min`, `array`), whether it is a choice (`value[x]`, stored without `[x]`), and a
//! required binding's value set. Backbone elements become types of their own, named by path
//! (`Patient.contact`); `contentReference` elements point at the referenced path. Primitive types
//! carry the regex of their value. Inherited elements are listed with each type (from snapshots).

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

use super::GeneratedFile;

const FHIR_TYPE_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const REGEX_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/regex";
const SYSTEM_PREFIX: &str = "http://hl7.org/fhirpath/System.";

/// The types that define the base model: specializations and the abstract roots, not profiles
/// (constraints) or logical models.
pub(super) fn is_base_type(sd: &Value) -> bool {
    let kind = sd["kind"].as_str().unwrap_or_default();
    matches!(kind, "primitive-type" | "complex-type" | "resource") && sd["derivation"] != "constraint"
}

pub(super) fn model_file(definitions: &[Value], version: &str) -> GeneratedFile {
    let mut types: BTreeMap<String, Value> = BTreeMap::new();
    for sd in definitions.iter().filter(|sd| is_base_type(sd)) {
        add_type(sd, &mut types);
    }
    let mut text = String::new();
    text.push_str(&format!(
        "{{\n  \"fhirVersion\": {},\n  \"types\": {{\n",
        json!(version)
    ));
    let count = types.len();
    for (i, (name, entry)) in types.iter().enumerate() {
        text.push_str(&format!("    {}: {{\n", json!(name)));
        for key in ["kind", "base", "abstract", "pattern"] {
            if let Some(value) = entry.get(key) {
                text.push_str(&format!("      \"{key}\": {value},\n"));
            }
        }
        text.push_str("      \"elements\": {");
        let elements = entry["elements"].as_object().expect("elements is an object");
        for (j, (element, info)) in elements.iter().enumerate() {
            let sep = if j + 1 < elements.len() { "," } else { "" };
            text.push_str(&format!("\n        {}: {info}{sep}", json!(element)));
        }
        text.push_str(if elements.is_empty() { "}\n" } else { "\n      }\n" });
        text.push_str(if i + 1 < count { "    },\n" } else { "    }\n" });
    }
    text.push_str("  }\n}\n");
    GeneratedFile {
        path: "fhir-schemas/model.json",
        content: text,
    }
}

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn add_type(sd: &Value, types: &mut BTreeMap<String, Value>) {
    let type_name = sd["type"].as_str().unwrap_or_default().to_owned();
    let kind = sd["kind"].as_str().unwrap_or_default();
    let snapshot: Vec<&Value> = sd["snapshot"]["element"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let paths: BTreeSet<&str> = snapshot.iter().filter_map(|e| e["path"].as_str()).collect();
    let has_children = |path: &str| {
        paths
            .range(format!("{path}.").as_str()..)
            .next()
            .is_some_and(|p| p.starts_with(&format!("{path}.")))
    };

    let mut containers: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut backbone_bases: BTreeMap<String, String> = BTreeMap::new();
    containers.insert(type_name.clone(), Map::new());
    let mut pattern = None;
    for element in &snapshot {
        let path = element["path"].as_str().unwrap_or_default();
        let Some((parent, raw_name)) = path.rsplit_once('.') else {
            continue;
        };
        let choice = raw_name.ends_with("[x]");
        let name = raw_name.trim_end_matches("[x]");
        let declared: Vec<String> = element["type"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| type_code(t, kind == "primitive-type" && name == "value"))
            .collect();
        let types_of_element: Vec<String> = if let Some(reference) = element["contentReference"].as_str() {
            vec![reference.trim_start_matches('#').to_owned()]
        } else if !choice && has_children(path) {
            backbone_bases.insert(
                path.to_owned(),
                declared.first().cloned().unwrap_or_else(|| "BackboneElement".into()),
            );
            vec![path.to_owned()]
        } else {
            declared
        };
        if kind == "primitive-type" && name == "value" {
            pattern = element["type"][0]["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["url"] == REGEX_EXTENSION)
                .and_then(|x| x["valueString"].as_str())
                .map(str::to_owned);
        }
        let mut info = Map::new();
        info.insert("types".into(), json!(types_of_element));
        info.insert("min".into(), json!(element["min"].as_u64().unwrap_or(0)));
        info.insert(
            "array".into(),
            json!(element["max"].as_str().is_some_and(|m| m != "1" && m != "0")),
        );
        if choice {
            info.insert("choice".into(), json!(true));
        }
        // `_summary=true` keeps these.
        if element["isSummary"] == true {
            info.insert("summary".into(), json!(true));
        }
        if element["binding"]["strength"] == "required"
            && let Some(value_set) = element["binding"]["valueSet"].as_str()
        {
            let versionless = value_set.split('|').next().unwrap_or(value_set);
            info.insert("requiredBinding".into(), json!(versionless));
        }
        containers
            .entry(parent.to_owned())
            .or_default()
            .insert(name.to_owned(), Value::Object(info));
    }
    for (container, elements) in containers {
        let entry = if container == type_name {
            let mut entry = json!({
                "kind": kind,
                "base": sd["baseDefinition"].as_str().map(last_segment),
                "abstract": sd["abstract"].as_bool().unwrap_or(false),
            });
            if let Some(p) = &pattern {
                entry["pattern"] = json!(p);
            }
            entry["elements"] = Value::Object(elements);
            entry
        } else {
            json!({
                "kind": "backbone",
                "base": backbone_bases.get(&container).cloned().unwrap_or_else(|| "BackboneElement".into()),
                "abstract": false,
                "elements": elements,
            })
        };
        types.insert(container, entry);
    }
}

/// The FHIR type of one `ElementDefinition.type`: a FHIR type name, or for the value of a
/// primitive a FHIRPath system type (`System.String`). Elements the package types as a system
/// type with a `structuredefinition-fhir-type` extension (e.g. `Element.id`) take that FHIR type.
fn type_code(declared: &Value, primitive_value: bool) -> String {
    let code = declared["code"].as_str().unwrap_or_default();
    let Some(system) = code.strip_prefix(SYSTEM_PREFIX) else {
        return code.to_owned();
    };
    if !primitive_value
        && let Some(fhir) = declared["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["url"] == FHIR_TYPE_EXTENSION)
            .and_then(|x| x["valueUrl"].as_str())
    {
        return fhir.to_owned();
    }
    format!("System.{system}")
}
