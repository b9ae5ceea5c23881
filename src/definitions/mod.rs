//! The definitions generator: reads the official `hl7.fhir.r4.core` 4.0.1 package and writes the
//! compact, computable facts the server loads at start-up into the repository (`fhir-schemas/`,
//! later `search-params/`). No descriptive text is copied; output is deterministic so a test can
//! regenerate it and compare with what is committed.
//!
//! Run as `fhir-server definitions generate --package DIR --out .`.

mod model;
mod schemas;
mod search_params;

use serde_json::{Value, json};
use std::fs;
use std::path::Path;

/// A generated file: its path relative to the repository root, and its content.
pub struct GeneratedFile {
    pub path: &'static str,
    pub content: String,
}

/// Reads the package in `package_dir` and returns every generated file, without writing anything.
pub fn generate(package_dir: &Path) -> Result<Vec<GeneratedFile>, String> {
    let version = package_version(package_dir)?;
    let definitions = load_resources(package_dir, "StructureDefinition")?;
    let search_parameters = load_resources(package_dir, "SearchParameter")?;
    let compartments = load_resources(package_dir, "CompartmentDefinition")?;
    let value_sets = load_resources(package_dir, "ValueSet")?;
    let code_systems = load_resources(package_dir, "CodeSystem")?;
    let model = model::model_file(&definitions, &version);
    let model_value: Value = serde_json::from_str(&model.content).map_err(|e| format!("model.json: {e}"))?;
    Ok(vec![
        resource_types_file(&definitions, &version),
        schemas::schema_file(&model_value, &value_sets, &code_systems),
        model,
        search_params::search_parameters_file(&search_parameters, &version),
        search_params::compartments_file(&compartments, &version),
    ])
}

/// Writes the generated files under `out_dir` (the repository root).
pub fn write(files: &[GeneratedFile], out_dir: &Path) -> Result<(), String> {
    for file in files {
        let path = out_dir.join(file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&path, &file.content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn package_version(package_dir: &Path) -> Result<String, String> {
    let manifest = read_json(&package_dir.join("package.json"))?;
    let name = manifest["name"].as_str().unwrap_or_default();
    let version = manifest["version"].as_str().unwrap_or_default();
    if name != "hl7.fhir.r4.core" || version != "4.0.1" {
        return Err(format!(
            "{} is {name}#{version}, not hl7.fhir.r4.core#4.0.1",
            package_dir.display()
        ));
    }
    Ok(version.to_owned())
}

/// Every `<resource_type>-*.json` of the package, sorted by file name so output is deterministic.
fn load_resources(package_dir: &Path, resource_type: &str) -> Result<Vec<Value>, String> {
    let entries = fs::read_dir(package_dir).map_err(|e| format!("{}: {e}", package_dir.display()))?;
    let prefix = format!("{resource_type}-");
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".json") {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(format!("no {prefix}*.json files in {}", package_dir.display()));
    }
    paths.sort();
    paths.iter().map(|p| read_json(p)).collect()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `fhir-schemas/resource-types.json`: the concrete resource types (kind `resource`, not abstract,
/// a specialization rather than a profile), sorted.
fn resource_types_file(definitions: &[Value], version: &str) -> GeneratedFile {
    let mut names: Vec<&str> = definitions
        .iter()
        .filter(|sd| sd["kind"] == "resource" && sd["abstract"] == false && sd["derivation"] == "specialization")
        .filter_map(|sd| sd["type"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let file = json!({
        "fhirVersion": version,
        "generatedFrom": "hl7.fhir.r4.core#4.0.1 StructureDefinitions",
        "resourceTypes": names,
    });
    GeneratedFile {
        path: "fhir-schemas/resource-types.json",
        content: pretty(&file),
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a Value always serialises");
    text.push('\n');
    text
}
