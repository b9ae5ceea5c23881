//! `search-params/`: every R4 SearchParameter in compact form, and the R4 compartment definitions
//! as parameter lists per resource type. One parameter per line, sorted by URL, so a change in the
//! package shows as a readable diff.

use super::GeneratedFile;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The SearchParameter elements that carry computable facts; descriptive ones are left out.
const KEPT: &[&str] = &[
    "url",
    "code",
    "base",
    "type",
    "expression",
    "target",
    "modifier",
    "comparator",
    "chain",
    "multipleOr",
    "multipleAnd",
];

pub(super) fn search_parameters_file(parameters: &[Value], version: &str) -> GeneratedFile {
    let mut compact: BTreeMap<String, Value> = BTreeMap::new();
    // The package also carries three example SearchParameters (ids `example…`); they define nothing.
    for parameter in parameters
        .iter()
        .filter(|p| !p["id"].as_str().unwrap_or_default().starts_with("example"))
    {
        let mut kept = Map::new();
        for key in KEPT {
            if let Some(value) = parameter.get(*key) {
                kept.insert((*key).to_owned(), value.clone());
            }
        }
        if let Some(components) = parameter["component"].as_array() {
            let components: Vec<Value> = components
                .iter()
                .map(|c| json!({"definition": c["definition"], "expression": c["expression"]}))
                .collect();
            kept.insert("component".into(), json!(components));
        }
        let url = parameter["url"].as_str().unwrap_or_default().to_owned();
        compact.insert(url, Value::Object(kept));
    }
    let lines: Vec<String> = compact.values().map(Value::to_string).collect();
    let content = format!(
        "{{\n  \"fhirVersion\": {},\n  \"searchParameters\": [\n    {}\n  ]\n}}\n",
        json!(version),
        lines.join(",\n    ")
    );
    GeneratedFile {
        path: "search-params/search-parameters.json",
        content,
    }
}

/// `{compartment: {resource type: [parameter codes]}}` for the R4 compartments (the package's
/// `example` definition is not one of them). Types with no parameters are not in the compartment.
pub(super) fn compartments_file(definitions: &[Value], version: &str) -> GeneratedFile {
    let mut compartments: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for definition in definitions.iter().filter(|d| d["id"] != "example") {
        let code = definition["code"].as_str().unwrap_or_default().to_owned();
        let members = compartments.entry(code).or_default();
        for resource in definition["resource"].as_array().into_iter().flatten() {
            if let (Some(name), Some(params)) = (resource["code"].as_str(), resource["param"].as_array())
                && !params.is_empty()
            {
                members.insert(name.to_owned(), json!(params));
            }
        }
    }
    let mut content = format!("{{\n  \"fhirVersion\": {},\n  \"compartments\": {{\n", json!(version));
    let count = compartments.len();
    for (i, (code, members)) in compartments.iter().enumerate() {
        let lines: Vec<String> = members.iter().map(|(t, p)| format!("{}: {p}", json!(t))).collect();
        content.push_str(&format!(
            "    {}: {{\n      {}\n    }}",
            json!(code),
            lines.join(",\n      ")
        ));
        content.push_str(if i + 1 < count { ",\n" } else { "\n" });
    }
    content.push_str("  }\n}\n");
    GeneratedFile {
        path: "search-params/compartments.json",
        content,
    }
}
