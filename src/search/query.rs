//! The first two stages of a search: the query string's parameters, and their resolution against
//! the registry into typed `Clause`s and result controls (search.html). Resolution is where
//! values are parsed and checked; what comes out can only be valid, and `compile` turns it into
//! SQL without further checks.

use super::params::composite::{ComponentRows, CompositeMatch};
use super::params::token::TokenMatch;
use super::params::{self, ParseFailure, ValueMatch, date::DateMatch};
use super::registry::{ParamType, Registry, SearchParam, component_param_id, param_id};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::ResourceType;

/// One condition all results meet (parameters are AND-ed; the values inside one are OR-ed).
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// `_id`: one of these ids.
    Id(Vec<String>),
    /// `_lastUpdated`: any of these ranges.
    LastUpdated(Vec<DateMatch>),
    /// Some index row of one of `param_ids` in `table` matches one of `matches`; with `negated`
    /// (`:not`), no row does.
    Index {
        table: &'static str,
        param_ids: Vec<i64>,
        matches: Vec<ValueMatch>,
        negated: bool,
    },
    /// `:missing=true` (no row of the parameter) or `:missing=false` (some row).
    Missing {
        table: &'static str,
        param_ids: Vec<i64>,
        missing: bool,
    },
    /// A chained parameter: a reference of `param_ids` points at a resource of `target_types`
    /// that meets `inner`.
    Chain {
        param_ids: Vec<i64>,
        target_types: Vec<String>,
        inner: Box<Clause>,
    },
    /// A composite parameter: some element whose components meet one of `alternatives` (no
    /// alternatives: has every component); with `negated` (`:missing=true`), no element does.
    Composite {
        components: Vec<ComponentRows>,
        alternatives: Vec<CompositeMatch>,
        negated: bool,
    },
    /// The resource is of one of these types (none: matches nothing). Authorization narrows a
    /// search over several types with it, each type by its own rule.
    OfType(Vec<String>),
    /// Every one of these (the words of a text search).
    All(Vec<Clause>),
    /// One of these.
    Any(Vec<Clause>),
    /// Not this one (what consents withhold from a search).
    Not(Box<Clause>),
    /// Reverse chaining (`_has`): some `source_type` resource whose reference parameter
    /// `param_id` points here meets `inner`.
    Has {
        source_type: String,
        param_id: i64,
        inner: Box<Clause>,
    },
}

impl Clause {
    /// Whether the clause only leaves resources out (what consents withhold): a `Not`, or
    /// `All`/`Any` made of those and of the type tests that say of which types.
    pub fn only_excludes(&self) -> bool {
        fn excluding(clause: &Clause) -> bool {
            match clause {
                Clause::Not(_) | Clause::OfType(_) => true,
                Clause::All(parts) | Clause::Any(parts) => {
                    !parts.is_empty()
                        && parts.iter().all(excluding)
                        && parts.iter().any(|p| !matches!(p, Clause::OfType(_)))
                }
                _ => false,
            }
        }
        !matches!(self, Clause::OfType(_)) && excluding(self)
    }
}

/// Why a parameter was left out of a search (without `handling=strict`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ignored {
    pub name: String,
    pub reason: String,
}

/// Resolves one search parameter `name` (with its modifier and chain, e.g. `subject:Patient.name`,
/// `code:text`, `_has:Observation:patient:code`) and its comma-separated `value` for resources of
/// `types`. `Ok(None)` means the parameter is unknown or unsupported and is to be ignored; the
/// reason goes to `ignored`.
pub fn resolve_param(
    registry: &Registry,
    types: &[&str],
    name: &str,
    value: &str,
    base_url: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<Option<Clause>> {
    let mut ignore = |reason: String| {
        ignored.push(Ignored {
            name: name.to_owned(),
            reason,
        });
        Ok(None)
    };
    if let Some(rest) = name.strip_prefix("_has:") {
        return resolve_has(registry, types, name, rest, value, base_url, ignored);
    }
    if name == "_list" {
        return resolve_list(name, value, ignored);
    }
    let (head, chain) = match name.split_once('.') {
        Some((head, chain)) => (head, Some(chain)),
        None => (name, None),
    };
    let (code, modifier) = match head.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (head, None),
    };
    let defined: Vec<(&str, &std::sync::Arc<SearchParam>)> = types
        .iter()
        .filter_map(|t| registry.get(t, code).map(|p| (*t, p)))
        .collect();
    let Some((_, first)) = defined.first() else {
        return ignore(format!("unknown search parameter '{code}' for {}", types.join(", ")));
    };
    let kind = first.kind;
    let param_ids: Vec<i64> = defined.iter().map(|(t, p)| param_id(t, &p.code)).collect();
    if (code == "_text" || code == "_content") && chain.is_none() {
        return resolve_text(name, modifier, value, param_ids, ignored);
    }
    if !first.is_searchable() && code != "_id" && code != "_lastUpdated" {
        return ignore(format!(
            "'{code}' has no expression to index, so this server does not search it yet"
        ));
    }

    if let Some(chain) = chain {
        if kind != ParamType::Reference {
            return ignore(format!(
                "'{code}' is not a reference parameter, so it cannot be chained"
            ));
        }
        let mut target_types: Vec<String> = match modifier {
            Some(m) => match ResourceType::parse(m) {
                Some(t) => vec![t.as_str().to_owned()],
                None => return ignore(format!("unknown resource type '{m}' in chain {name}")),
            },
            None => defined.iter().flat_map(|(_, p)| p.targets.iter().cloned()).collect(),
        };
        target_types.sort();
        target_types.dedup();
        // Only the targets that define the chained parameter can meet it.
        let chained_code = chain.split(['.', ':']).next().unwrap_or(chain);
        target_types.retain(|t| chained_code.starts_with("_has") || registry.get(t, chained_code).is_some());
        if target_types.is_empty() {
            return ignore(format!("no target of '{code}' has a search parameter '{chained_code}'"));
        }
        let inner_types: Vec<&str> = target_types.iter().map(String::as_str).collect();
        let Some(inner) = resolve_param(registry, &inner_types, chain, value, base_url, ignored)? else {
            return Ok(None);
        };
        return Ok(Some(Clause::Chain {
            param_ids,
            target_types,
            inner: Box::new(inner),
        }));
    }

    if code == "_id" {
        return match modifier {
            None => Ok(Some(Clause::Id(
                params::split_unescaped(value, ',')
                    .into_iter()
                    .map(params::unescape)
                    .collect(),
            ))),
            Some(m) => ignore(format!("modifier ':{m}' is not supported on _id")),
        };
    }
    if code == "_lastUpdated" {
        if let Some(m) = modifier {
            return ignore(format!("modifier ':{m}' is not supported on _lastUpdated"));
        }
        let mut ranges = Vec::new();
        for part in params::split_unescaped(value, ',') {
            match params::date::parse(part, None) {
                Ok(m) => ranges.push(m),
                Err(ParseFailure::Invalid(why)) => return Err(params::bad_value(name, part, why)),
                Err(ParseFailure::UnsupportedModifier) => unreachable!("no modifier given"),
            }
        }
        return Ok(Some(Clause::LastUpdated(ranges)));
    }

    if kind == ParamType::Composite {
        return resolve_composite(&defined, name, modifier, value, base_url, ignored);
    }
    // `Reference.identifier` values are token rows of the reference parameter.
    let (kind, modifier) = match (kind, modifier) {
        (ParamType::Reference, Some("identifier")) => (ParamType::Token, None),
        other => other,
    };
    let Some(table) = params::type_index(kind).map(|index| index.table.name) else {
        return ignore(format!(
            "'{code}' is a {kind:?} parameter, which this server does not search yet"
        ));
    };
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(params::bad_value(name, value, "':missing' takes true or false")),
        };
        return Ok(Some(Clause::Missing {
            table,
            param_ids,
            missing,
        }));
    }
    let negated = kind == ParamType::Token && matches!(modifier, Some("not" | "not-in"));
    let targets: Vec<String> = defined.iter().flat_map(|(_, p)| p.targets.iter().cloned()).collect();
    let mut matches = Vec::new();
    for part in params::split_unescaped(value, ',') {
        match ValueMatch::parse(kind, part, modifier, &targets, base_url) {
            Ok(ValueMatch::Token(TokenMatch::InValueSet { url, codes, .. })) => {
                matches.push(ValueMatch::Token(TokenMatch::InValueSet {
                    url,
                    codes,
                    parameter: name.to_owned(),
                }))
            }
            Ok(m) => matches.push(m),
            Err(ParseFailure::UnsupportedModifier) => {
                return ignore(format!(
                    "modifier ':{}' is not supported on {kind:?} parameter '{code}'",
                    modifier.unwrap_or_default()
                ));
            }
            Err(ParseFailure::Invalid(why)) => return Err(params::bad_value(name, part, why)),
        }
    }
    Ok(Some(Clause::Index {
        table,
        param_ids,
        matches,
        negated,
    }))
}

/// `_list=id,…`: resources that an entry of one of these Lists points at; the same as
/// `_has:List:item:_id=…`. Functional lists (`$current-problems`, …) are not kept by this server.
fn resolve_list(name: &str, value: &str, ignored: &mut Vec<Ignored>) -> Result<Option<Clause>> {
    let ids: Vec<String> = params::split_unescaped(value, ',')
        .into_iter()
        .map(params::unescape)
        .collect();
    if let Some(functional) = ids.iter().find(|id| id.starts_with('$')) {
        ignored.push(Ignored {
            name: name.to_owned(),
            reason: format!("the functional list '{functional}' is not kept by this server"),
        });
        return Ok(None);
    }
    if let Some(bad) = ids.iter().find(|id| !crate::model::id::is_valid_id(id)) {
        return Err(params::bad_value(name, bad, "a List id is expected"));
    }
    Ok(Some(Clause::Has {
        source_type: "List".to_owned(),
        param_id: param_id("List", "item"),
        inner: Box::new(Clause::Id(ids)),
    }))
}

/// `_text` or `_content`: every word of one of the comma-separated values matches a word row.
fn resolve_text(
    name: &str,
    modifier: Option<&str>,
    value: &str,
    param_ids: Vec<i64>,
    ignored: &mut Vec<Ignored>,
) -> Result<Option<Clause>> {
    let mut alternatives = Vec::new();
    for part in params::split_unescaped(value, ',') {
        let words = match params::text::parse(part, modifier) {
            Ok(words) => words,
            Err(ParseFailure::UnsupportedModifier) => {
                ignored.push(Ignored {
                    name: name.to_owned(),
                    reason: format!(
                        "modifier ':{}' is not supported on text search",
                        modifier.unwrap_or_default()
                    ),
                });
                return Ok(None);
            }
            Err(ParseFailure::Invalid(why)) => return Err(params::bad_value(name, part, why)),
        };
        let word_clauses = words
            .into_iter()
            .map(|word| Clause::Index {
                table: params::string::TABLE.name,
                param_ids: param_ids.clone(),
                matches: vec![ValueMatch::String(word)],
                negated: false,
            })
            .collect();
        alternatives.push(Clause::All(word_clauses));
    }
    Ok(Some(Clause::Any(alternatives)))
}

/// A composite parameter defined on each of `defined` (type, parameter); `:missing` asks whether
/// some element has all the components.
fn resolve_composite(
    defined: &[(&str, &std::sync::Arc<SearchParam>)],
    name: &str,
    modifier: Option<&str>,
    value: &str,
    base_url: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<Option<Clause>> {
    let (_, first) = defined[0];
    let mut components = Vec::new();
    for (k, component) in first.components.iter().enumerate() {
        let Some(table) = params::type_index(component.kind).map(|index| index.table.name) else {
            ignored.push(Ignored {
                name: name.to_owned(),
                reason: format!(
                    "component {k} of '{}' is of a type this server does not search",
                    first.code
                ),
            });
            return Ok(None);
        };
        let param_ids = defined.iter().map(|(t, p)| component_param_id(t, &p.code, k)).collect();
        components.push(ComponentRows { table, param_ids });
    }
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(params::bad_value(name, value, "':missing' takes true or false")),
        };
        return Ok(Some(Clause::Composite {
            components,
            alternatives: Vec::new(),
            negated: missing,
        }));
    }
    let mut alternatives = Vec::new();
    for part in params::split_unescaped(value, ',') {
        match params::composite::parse(part, modifier, &first.components, base_url) {
            Ok(m) => alternatives.push(m),
            Err(ParseFailure::UnsupportedModifier) => {
                ignored.push(Ignored {
                    name: name.to_owned(),
                    reason: format!(
                        "modifier ':{}' is not supported on composite parameter '{}'",
                        modifier.unwrap_or_default(),
                        first.code
                    ),
                });
                return Ok(None);
            }
            Err(ParseFailure::Invalid(why)) => return Err(params::bad_value(name, part, why)),
        }
    }
    Ok(Some(Clause::Composite {
        components,
        alternatives,
        negated: false,
    }))
}

/// `_has:Type:param:rest` — `rest` is resolved on `Type` (it may be another `_has`).
fn resolve_has(
    registry: &Registry,
    types: &[&str],
    name: &str,
    rest: &str,
    value: &str,
    base_url: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<Option<Clause>> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(reference), Some(inner_name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::invalid(format!(
            "'{name}' is not a reverse chain: expected _has:Type:reference-parameter:parameter"
        ))
        .at(name.to_owned()));
    };
    let Some(source_type) = ResourceType::parse(source) else {
        return Err(Error::invalid(format!("'{source}' in '{name}' is not a resource type")).at(name.to_owned()));
    };
    let Some(reference_param) = Registry::r4()
        .get(source_type.as_str(), reference)
        .filter(|p| p.kind == ParamType::Reference)
    else {
        return Err(Error::invalid(format!(
            "'{reference}' in '{name}' is not a reference search parameter of {source_type}"
        ))
        .at(name.to_owned()));
    };
    if !reference_param.targets.is_empty()
        && !types
            .iter()
            .any(|t| reference_param.targets.iter().any(|target| target == t))
    {
        return Err(Error::invalid(format!(
            "{source_type}.{reference} never points at {}",
            types.join(" or ")
        ))
        .at(name.to_owned()));
    }
    let Some(inner) = resolve_param(registry, &[source_type.as_str()], inner_name, value, base_url, ignored)? else {
        return Ok(None);
    };
    Ok(Some(Clause::Has {
        source_type: source_type.as_str().to_owned(),
        param_id: param_id(source_type.as_str(), reference),
        inner: Box::new(inner),
    }))
}

/// A `400` for a request that cannot be searched at all.
pub fn invalid_request(diagnostics: impl Into<String>, expression: &str) -> Error {
    Error::new(ErrorKind::Invalid, IssueCode::Invalid, diagnostics).at(expression.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_are_nots_with_the_type_tests_that_place_them() {
        let not = || Clause::Not(Box::new(Clause::Id(vec!["x".into()])));
        let of = |t: &str| Clause::OfType(vec![t.into()]);
        assert!(not().only_excludes());
        assert!(Clause::All(vec![of("Patient"), not()]).only_excludes());
        assert!(Clause::Any(vec![Clause::All(vec![of("Patient"), not()]), of("Group")]).only_excludes());
        assert!(!of("Patient").only_excludes(), "a type test alone narrows");
        assert!(!Clause::Any(vec![of("Patient"), of("Group")]).only_excludes());
        assert!(!Clause::All(vec![Clause::Id(vec!["x".into()]), not()]).only_excludes());
        assert!(!Clause::All(vec![]).only_excludes());
    }

    fn resolve(types: &[&str], name: &str, value: &str) -> (Result<Option<Clause>>, Vec<Ignored>) {
        let mut ignored = Vec::new();
        let clause = resolve_param(
            Registry::r4(),
            types,
            name,
            value,
            "http://example.org/fhir",
            &mut ignored,
        );
        (clause, ignored)
    }

    #[test]
    fn a_token_with_system_and_alternatives() {
        let (clause, ignored) = resolve(&["Observation"], "code", "http://loinc.org|8480-6,1234");
        assert!(ignored.is_empty());
        let Some(Clause::Index {
            table,
            matches,
            negated,
            param_ids,
        }) = clause.unwrap()
        else {
            panic!("not an index clause")
        };
        assert_eq!((table, negated), ("search_token", false));
        assert_eq!(param_ids, vec![param_id("Observation", "code")]);
        assert_eq!(
            matches,
            vec![
                ValueMatch::Token(TokenMatch::SystemAndCode("http://loinc.org".into(), "8480-6".into())),
                ValueMatch::Token(TokenMatch::Code("1234".into()))
            ]
        );
    }

    #[test]
    fn unknown_parameters_and_modifiers_are_ignored_with_a_reason() {
        let (clause, ignored) = resolve(&["Patient"], "shoe-size", "42");
        assert_eq!(clause.unwrap(), None);
        assert!(ignored[0].reason.contains("unknown search parameter"));
        let (clause, ignored) = resolve(&["Patient"], "birthdate:contains", "2000");
        assert_eq!(clause.unwrap(), None);
        assert!(ignored[0].reason.contains("not supported"), "{ignored:?}");
    }

    #[test]
    fn malformed_values_are_errors_naming_the_parameter() {
        let (clause, _) = resolve(&["Patient"], "birthdate", "ge20x0");
        let error = clause.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Invalid);
        assert_eq!(error.issues[0].expression.as_deref(), Some("birthdate"));
        assert!(resolve(&["Patient"], "active:missing", "maybe").0.is_err());
        assert!(resolve(&["Observation"], "value-quantity", "abc").0.is_err());
    }

    #[test]
    fn chains_resolve_on_the_targets_that_define_the_parameter() {
        let (clause, _) = resolve(&["Observation"], "subject.name", "peter");
        let Some(Clause::Chain {
            target_types, inner, ..
        }) = clause.unwrap()
        else {
            panic!("not a chain")
        };
        assert!(target_types.contains(&"Patient".to_owned()));
        assert!(
            !target_types.contains(&"Device".to_owned()),
            "Device has no name parameter"
        );
        assert!(matches!(
            *inner,
            Clause::Index {
                table: "search_string",
                ..
            }
        ));
        let (clause, _) = resolve(&["Observation"], "subject:Patient.organization.name", "acme");
        let Some(Clause::Chain {
            target_types, inner, ..
        }) = clause.unwrap()
        else {
            panic!("not a chain")
        };
        assert_eq!(target_types, vec!["Patient".to_owned()]);
        assert!(matches!(*inner, Clause::Chain { .. }));
    }

    #[test]
    fn reverse_chains_nest() {
        let (clause, _) = resolve(&["Patient"], "_has:Observation:patient:code", "1234");
        let Some(Clause::Has { source_type, inner, .. }) = clause.unwrap() else {
            panic!("not _has")
        };
        assert_eq!(source_type, "Observation");
        assert!(matches!(
            *inner,
            Clause::Index {
                table: "search_token",
                ..
            }
        ));
        let (clause, _) = resolve(&["Patient"], "_has:Observation:encounter:code", "1");
        assert!(clause.is_err(), "Observation.encounter never points at a Patient");
    }
}
