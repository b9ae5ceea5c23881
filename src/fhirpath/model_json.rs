//! [`ModelInfo`] over the generated `fhir-schemas/model.json`:
//! `{"fhirVersion", "types": {name: {"kind", "base", "abstract", "elements": {name: {"types",
//! "array", "min", "choice"}}}}}`, where backbone elements are types named by their path
//! (`Patient.contact`). The caller reads the file; this module only parses the text, so the
//! FHIRPath module stays free of file-system concerns.

use super::model::{ElementInfo, ModelInfo};
use serde::Deserialize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Maps keyed by type and element names, looked up on every step of every path. The default
/// hasher (SipHash) resists crafted keys, which these are not (they come from the model file),
/// and hashing a short name with it cost about a tenth of extracting a resource's index rows.
type NameMap<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// A multiply-rotate hash over 8-byte words (the scheme of rustc's FxHash): a few instructions
/// per name.
#[derive(Default)]
struct NameHasher(u64);

impl NameHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ rest.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Deserialize)]
struct File {
    types: NameMap<TypeDef>,
}

#[derive(Deserialize)]
struct TypeDef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    elements: NameMap<ElementDef>,
}

#[derive(Deserialize)]
struct ElementDef {
    types: Vec<String>,
    #[serde(default)]
    array: bool,
    #[serde(default)]
    choice: bool,
}

/// The FHIR model loaded from `model.json`.
pub struct JsonModel {
    types: NameMap<TypeDef>,
}

/// FHIRPath System type URLs used by the core definitions for `id`, `url` and the like.
fn fhir_type_name(name: String) -> String {
    let system = name
        .strip_prefix("http://hl7.org/fhirpath/System.")
        .or_else(|| name.strip_prefix("System."));
    match system {
        Some("String") => "string".to_owned(),
        Some("Boolean") => "boolean".to_owned(),
        Some("Integer") => "integer".to_owned(),
        Some("Decimal") => "decimal".to_owned(),
        Some("Date") => "date".to_owned(),
        Some("DateTime") => "dateTime".to_owned(),
        Some("Time") => "time".to_owned(),
        Some(other) => other.to_owned(),
        None => name,
    }
}

impl JsonModel {
    pub fn from_json(text: &str) -> Result<JsonModel, String> {
        let mut file: File = serde_json::from_str(text).map_err(|e| format!("model.json: {e}"))?;
        for def in file.types.values_mut() {
            for element in def.elements.values_mut() {
                element.types = std::mem::take(&mut element.types)
                    .into_iter()
                    .map(fhir_type_name)
                    .collect();
            }
            if let Some(base) = def.base.take() {
                // Accept either a type name or a StructureDefinition URL.
                def.base = Some(base.rsplit('/').next().unwrap_or(&base).to_owned());
            }
        }
        Ok(JsonModel { types: file.types })
    }
}

impl ModelInfo for JsonModel {
    fn element(&self, type_name: &str, element: &str) -> Option<ElementInfo<'_>> {
        let def = self.types.get(type_name)?.elements.get(element)?;
        Some(ElementInfo {
            types: &def.types,
            choice: def.choice,
            array: def.array,
        })
    }

    fn base_type(&self, type_name: &str) -> Option<&str> {
        match self.types.get(type_name) {
            Some(def) => def.base.as_deref(),
            None if type_name.contains('.') => Some("BackboneElement"),
            None => None,
        }
    }

    fn has_type(&self, type_name: &str) -> bool {
        self.types.contains_key(type_name)
    }

    fn is_resource(&self, type_name: &str) -> bool {
        self.types.get(type_name).is_some_and(|def| def.kind == "resource")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"fhirVersion":"4.0.1","types":{
        "Patient":{"kind":"resource","base":"DomainResource","abstract":false,"elements":{
            "name":{"types":["HumanName"],"array":true,"min":0,"choice":false},
            "deceased":{"types":["boolean","dateTime"],"array":false,"min":0,"choice":true},
            "contact":{"types":["Patient.contact"],"array":true,"min":0,"choice":false},
            "id":{"types":["http://hl7.org/fhirpath/System.String"],"array":false,"min":0,"choice":false}}},
        "Patient.contact":{"kind":"backbone","base":"BackboneElement","abstract":false,"elements":{}},
        "code":{"kind":"primitive-type","base":"http://hl7.org/fhir/StructureDefinition/string","abstract":false,"elements":{}}
    }}"#;

    #[test]
    fn loads_elements_bases_and_choices() {
        let model = JsonModel::from_json(SAMPLE).unwrap();
        assert_eq!(
            model.element("Patient", "name").unwrap().types,
            ["HumanName".to_owned()]
        );
        assert!(model.element("Patient", "deceased").unwrap().choice);
        assert_eq!(model.element("Patient", "id").unwrap().types, ["string".to_owned()]);
        assert_eq!(model.base_type("code"), Some("string"));
        assert_eq!(model.base_type("Patient.contact"), Some("BackboneElement"));
        assert!(model.is_resource("Patient"));
        assert!(!model.is_resource("code"));
    }
}
