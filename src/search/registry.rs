//! The search parameters the server knows, per resource type, with their FHIRPath expressions
//! parsed once at first use. Parameters defined on `Resource` and `DomainResource` (`_id`,
//! `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`, `_text`, …) apply to every type
//! derived from them.

use crate::fhirpath::Expression;
use crate::model::structure::TypeModel;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

const SEARCH_PARAMETERS_JSON: &str = include_str!("../../search-params/search-parameters.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

#[derive(Debug)]
pub struct SearchParam {
    pub url: String,
    pub code: String,
    pub kind: ParamType,
    pub base: Vec<String>,
    pub targets: Vec<String>,
    /// The source text of the expression, and its parsed form (`None` when the definition has none).
    pub expression_text: Option<String>,
    pub expression: Option<Expression>,
    /// For a composite parameter, its parts in order, each evaluated on an item of `expression`.
    pub components: Vec<Component>,
}

/// One part of a composite parameter: the type of the parameter it borrows its matching rules
/// from, and the expression giving its values relative to the composite's item.
#[derive(Debug)]
pub struct Component {
    pub kind: ParamType,
    pub expression: Expression,
}

impl SearchParam {
    /// Whether this server searches the parameter: it has an expression to index (or is one of
    /// the text searches, which index words of their own), and is not `special` (`near`).
    pub fn is_searchable(&self) -> bool {
        match self.kind {
            ParamType::Special => false,
            _ => self.expression.is_some() || self.code == "_text" || self.code == "_content",
        }
    }
}

#[derive(Deserialize)]
struct RawParam {
    url: String,
    code: String,
    #[serde(rename = "type")]
    kind: ParamType,
    #[serde(default)]
    base: Vec<String>,
    #[serde(default)]
    target: Vec<String>,
    expression: Option<String>,
    #[serde(default)]
    component: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    definition: String,
    expression: String,
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "searchParameters")]
    search_parameters: Vec<RawParam>,
}

/// The search parameters of every resource type: the built-in R4 ones, plus (for a running
/// server) the `SearchParameter` resources stored on it. Immutable; a change builds a new one.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_type: HashMap<String, Vec<Arc<SearchParam>>>,
    /// The type of every parameter by canonical URL, for the components of composites.
    kinds: HashMap<String, ParamType>,
    /// How many parameters came from `SearchParameter` resources.
    custom: usize,
}

impl Registry {
    /// The R4 parameters, loaded and compiled on first use.
    pub fn r4() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::load(SEARCH_PARAMETERS_JSON).expect("search-params/ is generated and valid"))
    }

    pub fn load(text: &str) -> Result<Registry, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut registry = Registry::default();
        registry.add(file.search_parameters, false)?;
        Ok(registry)
    }

    /// This registry plus the `SearchParameter` resources `definitions`; each replaces a parameter
    /// of the same code on its base types. Fails naming the first definition this server cannot
    /// search by (no expression, one that does not parse, an unknown type, …).
    pub fn with_custom(&self, definitions: &[Value]) -> Result<Registry, String> {
        let mut raws = Vec::with_capacity(definitions.len());
        for definition in definitions {
            raws.push(custom_definition(definition)?);
        }
        let mut registry = self.clone();
        registry.custom += raws.len();
        registry.add(raws, true)?;
        Ok(registry)
    }

    /// How many parameters came from `SearchParameter` resources.
    pub fn custom_count(&self) -> usize {
        self.custom
    }

    fn add(&mut self, raws: Vec<RawParam>, replace: bool) -> Result<(), String> {
        let model = TypeModel::r4();
        for raw in &raws {
            self.kinds.insert(raw.url.clone(), raw.kind);
        }
        for raw in raws {
            let mut components = Vec::new();
            for c in &raw.component {
                let kind = *self
                    .kinds
                    .get(c.definition.as_str())
                    .ok_or_else(|| format!("{}: component {} is not defined", raw.url, c.definition))?;
                let expression = Expression::parse(&c.expression)
                    .map_err(|e| format!("{}: component {}: {}", raw.url, c.expression, e.message))?;
                components.push(Component { kind, expression });
            }
            let expression = match &raw.expression {
                Some(source) => {
                    Some(Expression::parse(source).map_err(|e| format!("{}: {source}: {}", raw.url, e.message))?)
                }
                None => None,
            };
            let param = Arc::new(SearchParam {
                url: raw.url,
                code: raw.code,
                kind: raw.kind,
                base: raw.base,
                targets: raw.target,
                expression_text: raw.expression,
                expression,
                components,
            });
            // A parameter on Resource or DomainResource applies to every concrete type below it.
            for base in &param.base {
                for resource_type in model.resource_types().filter(|t| model.is_a(t, base)) {
                    let params = self.by_type.entry(resource_type.to_owned()).or_default();
                    if replace {
                        params.retain(|p| p.code != param.code);
                        let id = param_id(resource_type, &param.code);
                        if let Some(other) = params.iter().find(|p| param_id(resource_type, &p.code) == id) {
                            return Err(format!(
                                "{}: the code '{}' shares its index key with '{}' on {resource_type}; choose another code",
                                param.url, param.code, other.code
                            ));
                        }
                    }
                    params.push(param.clone());
                }
            }
        }
        Ok(())
    }

    /// The parameters that apply to `resource_type`.
    pub fn params_for(&self, resource_type: &str) -> &[Arc<SearchParam>] {
        self.by_type.get(resource_type).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn get(&self, resource_type: &str, code: &str) -> Option<&Arc<SearchParam>> {
        self.params_for(resource_type).iter().find(|p| p.code == code)
    }
}

/// A `SearchParameter` resource as a parameter definition, if this server can search by it.
fn custom_definition(resource: &Value) -> Result<RawParam, String> {
    let raw: RawParam = serde_json::from_value(resource.clone())
        .map_err(|e| format!("the SearchParameter lacks url, code, base or a known type: {e}"))?;
    let label = &raw.url;
    if raw.code.is_empty()
        || !raw
            .code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{label}: the code '{}' must be letters, digits, '-' and '_'",
            raw.code
        ));
    }
    if raw.kind == ParamType::Special {
        return Err(format!(
            "{label}: special parameters need code of their own, which this server does not have"
        ));
    }
    if raw.expression.is_none() {
        return Err(format!("{label}: without an expression there is nothing to index"));
    }
    if raw.kind == ParamType::Composite && raw.component.is_empty() {
        return Err(format!("{label}: a composite parameter needs components"));
    }
    let model = TypeModel::r4();
    if raw.base.is_empty() {
        return Err(format!("{label}: the parameter has no base resource type"));
    }
    if let Some(unknown) = raw.base.iter().chain(&raw.target).find(|t| {
        !model.resource_types().any(|known| known == t.as_str()) && *t != "Resource" && *t != "DomainResource"
    }) {
        return Err(format!("{label}: '{unknown}' is not a resource type"));
    }
    Ok(raw)
}

/// The key of a search parameter of one resource type in the index tables: a 31-bit FNV-1a hash
/// of `Type.code`. A number, not the text, because it is stored in every index row; qualified by
/// type so an index scan for `Patient.name` does not wade through `Practitioner.name`. Collisions
/// are checked among the built-in parameters by a test.
pub fn param_id(resource_type: &str, code: &str) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in resource_type.bytes().chain(std::iter::once(b'.')).chain(code.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i64::from(hash & 0x7fff_ffff)
}

/// The key of component `k` of a composite parameter in the index tables (see `param_id`).
pub fn component_param_id(resource_type: &str, code: &str, k: usize) -> i64 {
    param_id(resource_type, &format!("{code}${k}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_gets_its_own_and_the_common_parameters() {
        let registry = Registry::r4();
        let name = registry.get("Patient", "name").unwrap();
        assert_eq!(name.kind, ParamType::String);
        assert!(
            registry.get("Patient", "_id").is_some(),
            "Resource parameters apply to every type"
        );
        assert!(registry.get("Observation", "_lastUpdated").is_some());
        assert!(registry.get("Patient", "code").is_none());
        let subject = registry.get("Observation", "subject").unwrap();
        assert_eq!(param_id("Patient", "name"), param_id("Patient", "name"));
        assert_ne!(param_id("Patient", "name"), param_id("Practitioner", "name"));
        assert_eq!(subject.kind, ParamType::Reference);
        assert!(subject.targets.iter().any(|t| t == "Patient"));
    }

    #[test]
    fn parameter_ids_do_not_collide() {
        let model = TypeModel::r4();
        let mut seen = std::collections::HashMap::new();
        for resource_type in model.resource_types() {
            for param in Registry::r4().params_for(resource_type) {
                let mut keys = vec![(
                    format!("{resource_type}.{}", param.code),
                    param_id(resource_type, &param.code),
                )];
                for k in 0..param.components.len() {
                    keys.push((
                        format!("{resource_type}.{}${k}", param.code),
                        component_param_id(resource_type, &param.code, k),
                    ));
                }
                for (key, id) in keys {
                    if let Some(other) = seen.insert(id, key.clone()) {
                        assert_eq!(other, key, "two parameters share an id");
                    }
                }
            }
        }
        assert!(seen.len() > 3000, "{}", seen.len());
    }
}
