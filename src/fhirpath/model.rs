//! What the engine needs to know about FHIR types, as a trait the caller implements (see
//! [`model_json`](super::model_json) for the implementation over `fhir-schemas/model.json`), plus the
//! few R4 facts the engine keeps built in so it still works with no model at all: the primitive
//! types and their bases, and the data type names that can end a choice element (`valueQuantity`).

/// The declared type(s) of one element of a FHIR type.
#[derive(Clone, Copy, Debug)]
pub struct ElementInfo<'m> {
    /// Type names: FHIR types (`HumanName`, `code`), or backbone paths (`Patient.contact`).
    /// A choice element (`value[x]`) lists every allowed type.
    pub types: &'m [String],
    pub choice: bool,
    pub array: bool,
}

/// FHIR type information supplied by the caller.
pub trait ModelInfo {
    /// The element `element` (a name without `[x]`) of `type_name`, inherited ones included.
    fn element(&self, type_name: &str, element: &str) -> Option<ElementInfo<'_>>;

    /// The type `type_name` derives from (`code` → `string`, `Patient` → `DomainResource`).
    fn base_type(&self, type_name: &str) -> Option<&str>;

    /// Whether `type_name` is a type (or backbone path) the model describes.
    fn has_type(&self, type_name: &str) -> bool;

    /// Whether `type_name` is a resource type.
    fn is_resource(&self, type_name: &str) -> bool;
}

/// R4 primitive types and the primitive each one specialises.
const PRIMITIVES: &[(&str, Option<&str>)] = &[
    ("boolean", None),
    ("integer", None),
    ("string", None),
    ("decimal", None),
    ("uri", None),
    ("url", Some("uri")),
    ("canonical", Some("uri")),
    ("base64Binary", None),
    ("instant", None),
    ("date", None),
    ("dateTime", None),
    ("time", None),
    ("code", Some("string")),
    ("oid", Some("uri")),
    ("id", Some("string")),
    ("markdown", Some("string")),
    ("unsignedInt", Some("integer")),
    ("positiveInt", Some("integer")),
    ("uuid", Some("uri")),
    ("xhtml", None),
];

/// R4 complex data types, with the type each one specialises when that is not `Element`.
const COMPLEX: &[(&str, Option<&str>)] = &[
    ("Address", None),
    ("Age", Some("Quantity")),
    ("Annotation", None),
    ("Attachment", None),
    ("CodeableConcept", None),
    ("Coding", None),
    ("ContactDetail", None),
    ("ContactPoint", None),
    ("Contributor", None),
    ("Count", Some("Quantity")),
    ("DataRequirement", None),
    ("Distance", Some("Quantity")),
    ("Dosage", Some("BackboneElement")),
    ("Duration", Some("Quantity")),
    ("Expression", None),
    ("Extension", None),
    ("HumanName", None),
    ("Identifier", None),
    ("Meta", None),
    ("Money", None),
    ("MoneyQuantity", Some("Quantity")),
    ("Narrative", None),
    ("ParameterDefinition", None),
    ("Period", None),
    ("Quantity", None),
    ("Range", None),
    ("Ratio", None),
    ("Reference", None),
    ("RelatedArtifact", None),
    ("SampledData", None),
    ("Signature", None),
    ("SimpleQuantity", Some("Quantity")),
    ("Timing", Some("BackboneElement")),
    ("TriggerDefinition", None),
    ("UsageContext", None),
];

/// The base of a type from the built-in tables, or `None` when they do not know it.
pub fn builtin_base(type_name: &str) -> Option<&'static str> {
    if let Some((_, base)) = PRIMITIVES.iter().find(|(n, _)| *n == type_name) {
        return Some(base.unwrap_or("Element"));
    }
    if let Some((_, base)) = COMPLEX.iter().find(|(n, _)| *n == type_name) {
        return Some(base.unwrap_or("Element"));
    }
    match type_name {
        "BackboneElement" => Some("Element"),
        "Element" => Some("Base"),
        "DomainResource" => Some("Resource"),
        "Resource" => Some("Base"),
        _ => None,
    }
}

pub fn is_primitive(type_name: &str) -> bool {
    PRIMITIVES.iter().any(|(n, _)| *n == type_name)
}

/// Names of types that are Quantity or specialise it.
pub fn is_quantity_type(type_name: &str) -> bool {
    type_name == "Quantity"
        || COMPLEX
            .iter()
            .any(|(n, base)| *n == type_name && *base == Some("Quantity"))
}

/// The type named by the suffix of a choice element (`Quantity` in `valueQuantity`,
/// `dateTime` in `effectiveDateTime`), from the built-in list of data types.
pub fn choice_suffix_type(suffix: &str) -> Option<&'static str> {
    if let Some((name, _)) = COMPLEX.iter().find(|(n, _)| *n == suffix) {
        return Some(name);
    }
    let mut chars = suffix.chars();
    let first = chars.next()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    PRIMITIVES
        .iter()
        .map(|(n, _)| *n)
        .find(|n| n.len() == suffix.len() && n[..1].eq_ignore_ascii_case(&suffix[..1]) && n[1..] == suffix[1..])
}

/// The JSON key of a choice element for one of its types: `value` + `Quantity` → `valueQuantity`.
pub fn choice_key(element: &str, type_name: &str) -> String {
    let mut key = String::with_capacity(element.len() + type_name.len());
    key.push_str(element);
    let mut chars = type_name.chars();
    if let Some(first) = chars.next() {
        key.extend(first.to_uppercase());
        key.push_str(chars.as_str());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_suffixes_name_primitive_and_complex_types() {
        assert_eq!(choice_suffix_type("Quantity"), Some("Quantity"));
        assert_eq!(choice_suffix_type("DateTime"), Some("dateTime"));
        assert_eq!(choice_suffix_type("Base64Binary"), Some("base64Binary"));
        assert_eq!(choice_suffix_type("Foo"), None);
        assert_eq!(choice_key("value", "dateTime"), "valueDateTime");
    }

    #[test]
    fn built_in_bases_follow_the_r4_hierarchy() {
        assert_eq!(builtin_base("code"), Some("string"));
        assert_eq!(builtin_base("Age"), Some("Quantity"));
        assert!(is_quantity_type("Duration"));
    }
}
