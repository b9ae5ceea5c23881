//! The R4 type model at run time, read once from the generated `fhir-schemas/model.json`: which
//! elements each type has, in definition order, with their types, cardinality and choice-ness.
//! The XML converter, the validator and FHIRPath's type checks all ask it.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The generated model, embedded in the binary (also handed to FHIRPath as its type information).
pub const MODEL_JSON: &str = include_str!("../../fhir-schemas/model.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Primitive,
    Complex,
    Resource,
    /// An element with children of its own, named by its path (`Patient.contact`).
    Backbone,
}

#[derive(Debug)]
pub struct ElementDef {
    pub name: String,
    /// FHIR type names (or a backbone path, or `System.X` for a primitive's value).
    pub types: Vec<String>,
    pub min: u32,
    pub array: bool,
    /// `value[x]`: the JSON/XML name is the element name plus the capitalised type.
    pub choice: bool,
    /// Part of the summary form (`_summary=true`).
    pub summary: bool,
    /// The value set of a required binding, without version.
    pub required_binding: Option<String>,
}

#[derive(Debug)]
pub struct TypeDef {
    pub name: String,
    pub kind: TypeKind,
    pub base: Option<String>,
    pub is_abstract: bool,
    /// For primitives: the regex their value must match.
    pub pattern: Option<String>,
    /// In definition order, which is the order XML requires.
    pub elements: Vec<ElementDef>,
    by_name: HashMap<String, usize>,
}

impl TypeDef {
    pub fn element(&self, name: &str) -> Option<&ElementDef> {
        self.by_name.get(name).map(|&i| &self.elements[i])
    }

    /// The element a JSON key or XML element name stands for, with the concrete type it names:
    /// `valueQuantity` is the choice `value` as `Quantity`; `name` is `name` as its single type.
    pub fn resolve(&self, key: &str) -> Option<(&ElementDef, &str)> {
        if let Some(element) = self.element(key) {
            if element.choice {
                return None;
            }
            return Some((element, element.types.first().map(String::as_str).unwrap_or_default()));
        }
        self.elements
            .iter()
            .filter(|e| e.choice && key.starts_with(e.name.as_str()))
            .find_map(|element| {
                let suffix = &key[element.name.len()..];
                element
                    .types
                    .iter()
                    .find(|t| capitalised(t) == suffix)
                    .map(|t| (element, t.as_str()))
            })
    }
}

/// `dateTime` → `DateTime`, as choice element names spell their type.
pub fn capitalised(type_name: &str) -> String {
    let mut chars = type_name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The same model as FHIRPath type information, built once (for search parameter expressions
/// and patch paths).
pub fn fhirpath_model() -> &'static crate::fhirpath::JsonModel {
    static MODEL: OnceLock<crate::fhirpath::JsonModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        crate::fhirpath::JsonModel::from_json(MODEL_JSON).expect("model.json loads as FHIRPath type information")
    })
}

pub struct TypeModel {
    types: HashMap<String, TypeDef>,
}

#[derive(Deserialize)]
struct ModelFile {
    types: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawType {
    kind: String,
    base: Option<String>,
    #[serde(rename = "abstract")]
    is_abstract: bool,
    pattern: Option<String>,
    elements: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawElement {
    types: Vec<String>,
    min: u32,
    array: bool,
    #[serde(default)]
    choice: bool,
    #[serde(default)]
    summary: bool,
    #[serde(rename = "requiredBinding")]
    required_binding: Option<String>,
}

impl TypeModel {
    /// The R4 model, parsed on first use.
    pub fn r4() -> &'static TypeModel {
        static MODEL: OnceLock<TypeModel> = OnceLock::new();
        MODEL.get_or_init(|| TypeModel::parse(MODEL_JSON).expect("fhir-schemas/model.json is generated and valid"))
    }

    pub fn parse(text: &str) -> Result<TypeModel, String> {
        let file: ModelFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut types = HashMap::with_capacity(file.types.len());
        for (name, raw) in file.types {
            let raw: RawType = serde_json::from_value(raw).map_err(|e| format!("{name}: {e}"))?;
            let kind = match raw.kind.as_str() {
                "primitive-type" => TypeKind::Primitive,
                "complex-type" => TypeKind::Complex,
                "resource" => TypeKind::Resource,
                "backbone" => TypeKind::Backbone,
                other => return Err(format!("{name}: unknown kind {other}")),
            };
            let mut elements = Vec::with_capacity(raw.elements.len());
            for (element_name, element) in raw.elements {
                let e: RawElement =
                    serde_json::from_value(element).map_err(|e| format!("{name}.{element_name}: {e}"))?;
                elements.push(ElementDef {
                    name: element_name,
                    types: e.types,
                    min: e.min,
                    array: e.array,
                    choice: e.choice,
                    summary: e.summary,
                    required_binding: e.required_binding,
                });
            }
            let by_name = elements.iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect();
            let def = TypeDef {
                name: name.clone(),
                kind,
                base: raw.base,
                is_abstract: raw.is_abstract,
                pattern: raw.pattern,
                elements,
                by_name,
            };
            types.insert(name, def);
        }
        Ok(TypeModel { types })
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Every type of the model, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }

    pub fn is_primitive(&self, name: &str) -> bool {
        self.get(name).is_some_and(|t| t.kind == TypeKind::Primitive)
    }

    /// Whether `name` is `ancestor` or derives from it (`code` is a `string`, `Patient` a `Resource`).
    pub fn is_a(&self, name: &str, ancestor: &str) -> bool {
        let mut current = Some(name);
        while let Some(n) = current {
            if n == ancestor {
                return true;
            }
            current = self.get(n).and_then(|t| t.base.as_deref());
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_elements_choices_and_backbones() {
        let model = TypeModel::r4();
        let patient = model.get("Patient").unwrap();
        assert_eq!(patient.kind, TypeKind::Resource);
        let (deceased, as_type) = patient.resolve("deceasedDateTime").unwrap();
        assert!(deceased.choice);
        assert_eq!(as_type, "dateTime");
        assert!(patient.resolve("deceased").is_none(), "a choice needs its type suffix");
        assert!(
            patient.resolve("deceasedString").is_none(),
            "string is not one of deceased's types"
        );
        let (contact, contact_type) = patient.resolve("contact").unwrap();
        assert!(contact.array);
        assert_eq!(model.get(contact_type).unwrap().kind, TypeKind::Backbone);
        assert_eq!(
            patient.elements[0].name, "id",
            "inherited elements come first, in definition order"
        );
    }

    #[test]
    fn follows_the_type_hierarchy() {
        let model = TypeModel::r4();
        assert!(model.is_a("code", "string"));
        assert!(model.is_a("Patient", "Resource"));
        assert!(!model.is_a("string", "code"));
        assert!(model.is_primitive("dateTime"));
        assert!(!model.is_primitive("HumanName"));
    }
}
