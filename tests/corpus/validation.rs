//! The validator against the official R4 examples: every example passes except the few HL7 ships
//! invalid, each listed with its reason in `tests/corpus/invalid-examples.txt`; and generated
//! mutations of valid examples are each rejected at the right location.

use serde_json::Value;
use std::collections::BTreeMap;

/// `file name → reason` for the examples HL7 ships invalid.
fn known_invalid() -> BTreeMap<String, String> {
    include_str!("invalid-examples.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once('\t').unwrap_or((l, ""));
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

pub fn examples() -> Vec<(String, Value)> {
    let Some(dir) = crate::shared("fhir-r4/examples-4.0.1") else {
        return Vec::new();
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("package.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn official_examples_are_valid_except_those_hl7_ships_invalid() {
    let examples = examples();
    if examples.is_empty() {
        return;
    }
    let known = known_invalid();
    let mut unexpected = Vec::new();
    let mut now_valid = Vec::new();
    for (name, example) in &examples {
        match (fhir_server::validate::validate(example), known.contains_key(name)) {
            (Ok(()), true) => now_valid.push(name.clone()),
            (Err(e), false) => {
                let issues: Vec<String> = e
                    .issues
                    .iter()
                    .take(3)
                    .map(|i| format!("{} ({})", i.diagnostics, i.expression.clone().unwrap_or_default()))
                    .collect();
                unexpected.push(format!("{name}\t{}", issues.join("; ")));
            }
            _ => {}
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} examples fail validation:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        now_valid.is_empty(),
        "listed as invalid but valid now (remove them from the list): {now_valid:?}"
    );
    assert!(known.len() * 50 < examples.len(), "the invalid list must stay short");
}

/// One way of breaking a valid resource at its top level, and where the error must be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mutation {
    UnknownElement,
    WrongJsonType,
    InvalidDateTime,
    InvalidUri,
    InvalidCode,
    CodeOutsideRequiredBinding,
    MissingRequired,
    ArrayForSingle,
    SingleForArray,
    TwoChoiceVariants,
    EmptyString,
    EmptyObject,
}

/// The mutated resource and the location the validator must name, or `None` when this resource
/// has no place for this mutation.
fn mutate(resource: &Value, mutation: Mutation) -> Option<(Value, String)> {
    use fhir_server::model::structure::TypeModel;
    let model = TypeModel::r4();
    let resource_type = resource["resourceType"].as_str()?;
    let type_def = model.get(resource_type)?;
    let object = resource.as_object()?;
    let mut out = resource.clone();
    let at = |key: &str| format!("{resource_type}.{key}");
    // Elements present at the top level, with their element definition and concrete type.
    let present = || {
        object
            .keys()
            .filter(|k| k.as_str() != "resourceType" && !k.starts_with('_'))
            .filter_map(|k| type_def.resolve(k).map(|(e, t)| (k.clone(), e, t.to_owned())))
    };
    match mutation {
        Mutation::UnknownElement => {
            out["notAnElement"] = Value::from(1);
            Some((out, at("notAnElement")))
        }
        Mutation::WrongJsonType => {
            let (key, ..) = present().find(|(k, e, t)| {
                !e.array
                    && matches!(t.as_str(), "string" | "code" | "uri" | "dateTime" | "date")
                    && !object.contains_key(&format!("_{k}"))
            })?;
            out[&key] = Value::from(42);
            Some((out, at(&key)))
        }
        Mutation::InvalidDateTime => {
            let (key, ..) =
                present().find(|(_, e, t)| !e.array && matches!(t.as_str(), "date" | "dateTime" | "instant"))?;
            out[&key] = Value::from("2020-13-45");
            Some((out, at(&key)))
        }
        Mutation::InvalidUri => {
            let (key, ..) =
                present().find(|(_, e, t)| !e.array && matches!(t.as_str(), "uri" | "url" | "canonical"))?;
            out[&key] = Value::from("has spaces in it");
            Some((out, at(&key)))
        }
        Mutation::InvalidCode => {
            let (key, ..) = present().find(|(_, e, t)| !e.array && t == "code")?;
            out[&key] = Value::from(" leading space");
            Some((out, at(&key)))
        }
        Mutation::CodeOutsideRequiredBinding => {
            // Value sets drawn from code systems outside the package (MIME types, currencies, UCUM,
            // a LOINC answer list) cannot be expanded here, so their codes are not checked.
            const EXTERNAL: &[&str] = &[
                "http://hl7.org/fhir/ValueSet/mimetypes",
                "http://hl7.org/fhir/ValueSet/currencies",
                "http://hl7.org/fhir/ValueSet/ucum-units",
                "http://loinc.org/vs/LL379-9",
            ];
            let (key, ..) = present().find(|(_, e, t)| {
                !e.array && t == "code" && e.required_binding.as_deref().is_some_and(|vs| !EXTERNAL.contains(&vs))
            })?;
            out[&key] = Value::from("surely-not-a-code-of-this-value-set");
            Some((out, at(&key)))
        }
        Mutation::MissingRequired => {
            let (key, ..) =
                present().find(|(k, e, _)| e.min >= 1 && !e.choice && !object.contains_key(&format!("_{k}")))?;
            out.as_object_mut()?.remove(&key);
            Some((out, at(&key)))
        }
        Mutation::ArrayForSingle => {
            let (key, ..) = present().find(|(_, e, _)| !e.array)?;
            out[&key] = Value::Array(vec![object[&key].clone()]);
            Some((out, at(&key)))
        }
        Mutation::SingleForArray => {
            let (key, ..) = present().find(|(k, e, _)| e.array && !object.contains_key(&format!("_{k}")))?;
            out[&key] = object[&key][0].clone();
            Some((out, at(&key)))
        }
        Mutation::TwoChoiceVariants => {
            let (key, element, chosen) =
                present().find(|(_, e, _)| e.choice && e.types.iter().any(|t| t == "string"))?;
            if chosen == "string" {
                return None;
            }
            out[format!("{}String", element.name)] = Value::from("a second variant");
            Some((out, at(&key)))
        }
        Mutation::EmptyString => {
            let (key, ..) = present().find(|(_, e, t)| !e.array && matches!(t.as_str(), "string" | "markdown"))?;
            out[&key] = Value::from("");
            Some((out, at(&key)))
        }
        Mutation::EmptyObject => {
            let (key, ..) =
                present().find(|(_, e, t)| !e.array && !model.is_primitive(t) && t != "Resource" && t != "xhtml")?;
            out[&key] = Value::Object(Default::default());
            Some((out, at(&key)))
        }
    }
}

#[test]
fn mutations_of_valid_examples_are_rejected_at_the_right_location() {
    let examples = examples();
    if examples.is_empty() {
        return;
    }
    let known = known_invalid();
    let all = [
        Mutation::UnknownElement,
        Mutation::WrongJsonType,
        Mutation::InvalidDateTime,
        Mutation::InvalidUri,
        Mutation::InvalidCode,
        Mutation::CodeOutsideRequiredBinding,
        Mutation::MissingRequired,
        Mutation::ArrayForSingle,
        Mutation::SingleForArray,
        Mutation::TwoChoiceVariants,
        Mutation::EmptyString,
        Mutation::EmptyObject,
    ];
    // One example per resource type, so the mutations cover many different shapes.
    let mut seen_types = std::collections::BTreeSet::new();
    let mut per_mutation: BTreeMap<Mutation, usize> = BTreeMap::new();
    let mut mutated_examples = 0;
    let mut misses = Vec::new();
    for (name, example) in &examples {
        if known.contains_key(name)
            || !seen_types.insert(example["resourceType"].as_str().unwrap_or_default().to_owned())
        {
            continue;
        }
        let mut mutated = false;
        for mutation in all {
            let Some((broken, location)) = mutate(example, mutation) else {
                continue;
            };
            mutated = true;
            *per_mutation.entry(mutation).or_default() += 1;
            match fhir_server::validate::validate(&broken) {
                Ok(()) => misses.push(format!("{name} {mutation:?}: accepted")),
                Err(e)
                    if !e
                        .issues
                        .iter()
                        .any(|i| i.expression.as_deref() == Some(location.as_str())) =>
                {
                    let found: Vec<String> = e
                        .issues
                        .iter()
                        .map(|i| i.expression.clone().unwrap_or_default())
                        .collect();
                    misses.push(format!("{name} {mutation:?}: expected {location}, found {found:?}"));
                }
                Err(_) => {}
            }
        }
        mutated_examples += usize::from(mutated);
    }
    eprintln!("mutated {mutated_examples} examples: {per_mutation:?}");
    assert!(
        misses.is_empty(),
        "{} mutations not caught at the right place:\n{}",
        misses.len(),
        misses.join("\n")
    );
    assert!(mutated_examples >= 30, "only {mutated_examples} examples mutated");
    for mutation in all {
        assert!(
            per_mutation.get(&mutation).copied().unwrap_or(0) >= 5,
            "{mutation:?} applied too rarely: {per_mutation:?}"
        );
    }
}
