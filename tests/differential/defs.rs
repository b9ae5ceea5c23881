//! The search-parameter definitions the evaluator uses, read straight from the generated
//! `search-params/search-parameters.json` (the same official definitions the server loads), with
//! each FHIRPath expression parsed by the crate's public FHIRPath API.

use fhir_server::fhirpath::{Expression, JsonModel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Number,
    Date,
    String,
    Token,
    Reference,
    Quantity,
    Uri,
    Composite,
}

pub struct Def {
    pub kind: Kind,
    pub targets: Vec<String>,
    pub expression: Option<Expression>,
    /// For a composite, its components in order: the type of the parameter each one's
    /// `definition` names, and its expression, evaluated on each item of `expression`.
    pub components: Vec<(Kind, Expression)>,
}

pub struct Defs {
    /// `(resource type, code)` → definition; parameters on `Resource`/`DomainResource` are
    /// looked up under those names.
    by_key: HashMap<(String, String), Def>,
}

const COMMON_BASES: [&str; 2] = ["Resource", "DomainResource"];

impl Defs {
    pub fn r4() -> &'static Defs {
        static DEFS: OnceLock<Defs> = OnceLock::new();
        DEFS.get_or_init(|| {
            let text = include_str!("../../search-params/search-parameters.json");
            let file: Value = serde_json::from_str(text).unwrap();
            let raws = file["searchParameters"].as_array().unwrap();
            let kind_of = |raw: &Value| match raw["type"].as_str().unwrap() {
                "number" => Some(Kind::Number),
                "date" => Some(Kind::Date),
                "string" => Some(Kind::String),
                "token" => Some(Kind::Token),
                "reference" => Some(Kind::Reference),
                "quantity" => Some(Kind::Quantity),
                "uri" => Some(Kind::Uri),
                "composite" => Some(Kind::Composite),
                _ => None,
            };
            let by_url: HashMap<&str, Kind> = raws
                .iter()
                .filter_map(|raw| Some((raw["url"].as_str()?, kind_of(raw)?)))
                .collect();
            let mut by_key = HashMap::new();
            for raw in raws {
                let Some(kind) = kind_of(raw) else { continue };
                let code = raw["code"].as_str().unwrap().to_owned();
                let expression_text = raw["expression"].as_str();
                let targets: Vec<String> = raw["target"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                let components: Vec<(Kind, Expression)> = raw["component"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let definition = c["definition"].as_str().unwrap();
                        let kind = by_url.get(definition).copied();
                        let kind = kind.unwrap_or_else(|| panic!("no parameter {definition}"));
                        (kind, Expression::parse(c["expression"].as_str().unwrap()).unwrap())
                    })
                    .collect();
                // A few extension parameters in the package name no base; nothing searches them.
                for base in raw["base"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    by_key.insert(
                        (base.to_owned(), code.clone()),
                        Def {
                            kind,
                            targets: targets.clone(),
                            expression: expression_text.map(|e| Expression::parse(e).unwrap()),
                            components: components.clone(),
                        },
                    );
                }
            }
            Defs { by_key }
        })
    }

    pub fn get(&self, resource_type: &str, code: &str) -> Option<&Def> {
        self.by_key
            .get(&(resource_type.to_owned(), code.to_owned()))
            .or_else(|| {
                COMMON_BASES
                    .iter()
                    .find_map(|base| self.by_key.get(&((*base).to_owned(), code.to_owned())))
            })
    }
}

/// FHIR type information for FHIRPath (element types, choice types), built once.
pub fn model() -> &'static JsonModel {
    static MODEL: OnceLock<JsonModel> = OnceLock::new();
    MODEL.get_or_init(|| JsonModel::from_json(fhir_server::model::structure::MODEL_JSON).unwrap())
}
