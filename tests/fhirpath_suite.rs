//! HL7's FHIRPath test suite for R4 (`../shared/fhir-test-cases/fhirpath/tests-fhir-r4.xml`), run
//! against `fhir_server::fhirpath`. Every case runs; the test fails when a case fails that is not
//! listed in `tests/fhirpath-known-failures.txt` (name, a tab, the reason), and it prints listed
//! cases that now pass so the list can shrink.

#[path = "common/known_failures.rs"]
mod known_failures;

use fhir_server::fhirpath::{Context, Expression, Item, JsonModel};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
struct Case {
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
    strict: bool,
    predicate: bool,
    unordered: bool,
    outputs: Vec<(Option<String>, String)>,
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

fn suite_dir() -> PathBuf {
    shared_dir().join("fhir-test-cases/fhirpath")
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|v| v.into_owned())
}

fn read_cases(xml: &str) -> Vec<Case> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    let mut text = String::new();
    let mut output_type: Option<String> = None;
    let mut seen = HashSet::new();
    loop {
        match reader.read_event().expect("well-formed test XML") {
            Event::Start(e) => {
                text.clear();
                match e.name().as_ref() {
                    "test" => {
                        let mut name = attribute(&e, "name").unwrap_or_default();
                        // The suite reuses a few names; keep every case addressable.
                        while !seen.insert(name.clone()) {
                            name.push('+');
                        }
                        current = Some(Case {
                            name,
                            input: attribute(&e, "inputfile"),
                            strict: attribute(&e, "mode").as_deref() == Some("strict"),
                            predicate: attribute(&e, "predicate").as_deref() == Some("true"),
                            unordered: attribute(&e, "ordered").as_deref() == Some("false"),
                            ..Case::default()
                        });
                    }
                    "expression" => {
                        if let Some(case) = current.as_mut() {
                            case.invalid = attribute(&e, "invalid").is_some();
                            case.strict |= attribute(&e, "mode").as_deref() == Some("strict");
                        }
                    }
                    "output" => output_type = attribute(&e, "type"),
                    _ => {}
                }
            }
            Event::Text(t) => text.push_str(&t.xml_content(XmlVersion::Implicit1_0)),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => match r.resolve_char_ref().expect("valid character reference") {
                Some(c) => text.push(c),
                None => text.push_str(match r.into_inner().as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity &{other};"),
                }),
            },
            Event::End(e) => match e.name().as_ref() {
                "expression" => {
                    if let Some(case) = current.as_mut() {
                        case.expression = std::mem::take(&mut text);
                    }
                }
                "output" => {
                    if let Some(case) = current.as_mut() {
                        case.outputs.push((output_type.take(), std::mem::take(&mut text)));
                    }
                }
                "test" => cases.extend(current.take()),
                _ => {}
            },
            Event::Eof => return cases,
            _ => {}
        }
    }
}

fn load_input(name: &str) -> Option<Value> {
    let path = suite_dir().join(name);
    if name.ends_with(".xml") {
        // The suite's XML inputs go through the project's own XML converter.
        let xml = fs::read_to_string(&path).ok()?;
        Some(fhir_server::xml::from_xml(&xml).unwrap_or_else(|e| panic!("{name} does not convert: {e:?}")))
    } else {
        serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
    }
}

/// The suite's type name for an item: FHIR types by name, System types in lower case.
fn output_type(item: &Item<'_>) -> String {
    let (namespace, name) = item.type_name();
    match (namespace, name.as_ref()) {
        ("System", "Quantity") => "Quantity".to_owned(),
        ("System", "DateTime") => "dateTime".to_owned(),
        ("System", other) => other.to_lowercase(),
        (_, other) => other.to_owned(),
    }
}

fn run_case(case: &Case, inputs: &mut HashMap<String, Option<Value>>, model: Option<&JsonModel>) -> Result<(), String> {
    let empty = Value::Object(Default::default());
    let resource = match &case.input {
        Some(file) => inputs
            .entry(file.clone())
            .or_insert_with(|| load_input(file))
            .as_ref()
            .ok_or_else(|| format!("input {file} unavailable"))?,
        None => &empty,
    };
    let mut context = Context::new().strict(case.strict);
    if let Some(model) = model {
        context = context.with_model(model);
    }
    let parsed = Expression::parse(&case.expression);
    let outcome = match &parsed {
        Ok(expr) => expr
            .evaluate(resource, &context)
            .map(|r| render(&r))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let results = match (outcome, case.invalid) {
        (Err(_), true) => return Ok(()),
        (Err(e), false) => return Err(e),
        (Ok(r), true) => return Err(format!("expected an error, got {r:?}")),
        (Ok(r), false) => r,
    };
    let results = if case.predicate {
        let truth = !(results.is_empty() || results == [("boolean".to_owned(), "false".to_owned())]);
        vec![("boolean".to_owned(), truth.to_string())]
    } else {
        results
    };
    let expected: Vec<(Option<&str>, &str)> = case.outputs.iter().map(|(t, v)| (t.as_deref(), v.as_str())).collect();
    let matches = results.len() == expected.len()
        && if case.unordered {
            expected
                .iter()
                .all(|(t, v)| results.iter().any(|r| same_rendered(*t, v, r)))
        } else {
            expected.iter().zip(&results).all(|((t, v), r)| same_rendered(*t, v, r))
        };
    if matches {
        Ok(())
    } else {
        Err(format!("got {results:?}, expected {expected:?}"))
    }
}

/// Results as (suite type, text), rendered while the input is still borrowed.
fn render(items: &[Item<'_>]) -> Vec<(String, String)> {
    items.iter().map(|item| (output_type(item), item.to_string())).collect()
}

fn same_rendered(expected_type: Option<&str>, expected: &str, (ty, text): &(String, String)) -> bool {
    if expected_type.is_some_and(|t| t != ty) {
        return false;
    }
    let expected = expected
        .strip_prefix("@T")
        .or_else(|| expected.strip_prefix('@'))
        .unwrap_or(expected);
    if expected_type == Some("decimal") {
        return expected.parse::<f64>().ok() == text.parse::<f64>().ok();
    }
    text == expected
}

#[test]
fn hl7_fhirpath_suite_passes_except_known_failures() {
    let xml = fs::read_to_string(suite_dir().join("tests-fhir-r4.xml")).expect("the HL7 suite in ../shared");
    let cases = read_cases(&xml);
    // 937 `<test` tags, two of them inside XML comments.
    assert_eq!(cases.len(), 935, "the R4 suite has 935 live cases");
    let model_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir-schemas/model.json");
    let model = fs::read_to_string(model_path)
        .ok()
        .map(|text| JsonModel::from_json(&text).expect("model.json"));
    let known = known_failures::read("fhirpath-known-failures.txt");
    let mut inputs = HashMap::new();
    let (mut passed, mut unexpected, mut now_passing) = (0, Vec::new(), Vec::new());
    for case in &cases {
        match run_case(case, &mut inputs, model.as_ref()) {
            Ok(()) => {
                passed += 1;
                if known.contains_key(&case.name) {
                    now_passing.push(case.name.clone());
                }
            }
            Err(why) if !known.contains_key(&case.name) => {
                unexpected.push(format!("{}\t{why}\n    {}", case.name, case.expression.trim()));
            }
            Err(_) => {}
        }
    }
    println!(
        "FHIRPath suite: {passed} of {} cases pass (model.json loaded: {})",
        cases.len(),
        model.is_some()
    );
    // A listed case that passes is a stale entry: the list must say exactly what fails.
    assert!(
        now_passing.is_empty(),
        "listed as known failures but passing now (remove them from tests/fhirpath-known-failures.txt):\n  {}",
        now_passing.join("\n  ")
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// Every FHIRPath expression of the R4 core search parameters parses, and evaluates without error
/// on every official example of its base resource type (with the model, in lenient mode).
#[test]
fn r4_search_parameter_expressions_evaluate_on_the_r4_examples() {
    let r4 = shared_dir().join("fhir-r4");
    let read = |path: &Path| -> Value { serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap() };
    let mut examples: HashMap<String, Vec<Value>> = HashMap::new();
    for entry in fs::read_dir(r4.join("examples-4.0.1")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let resource = read(&path);
            if let Some(ty) = resource.get("resourceType").and_then(Value::as_str) {
                examples.entry(ty.to_owned()).or_default().push(resource.clone());
            }
        }
    }
    let model_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir-schemas/model.json");
    let model = fs::read_to_string(model_path)
        .ok()
        .map(|text| JsonModel::from_json(&text).expect("model.json"));
    let mut context = Context::new().with_reference_stubs(true);
    if let Some(model) = model.as_ref() {
        context = context.with_model(model);
    }
    let (mut expressions, mut evaluations, mut failures) = (0, 0, Vec::new());
    for entry in fs::read_dir(r4.join("hl7.fhir.r4.core-4.0.1")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("SearchParameter-") {
            continue;
        }
        let parameter = read(&entry.path());
        let Some(source) = parameter.get("expression").and_then(Value::as_str) else {
            continue;
        };
        expressions += 1;
        let expression = match Expression::parse(source) {
            Ok(expression) => expression,
            Err(e) => {
                failures.push(format!("{name}: {source}: {e}"));
                continue;
            }
        };
        let bases = parameter
            .get("base")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for base in bases.iter().filter_map(Value::as_str) {
            for example in examples.get(base).into_iter().flatten() {
                evaluations += 1;
                if let Err(e) = expression.evaluate(example, &context) {
                    let id = example.get("id").and_then(Value::as_str).unwrap_or("?");
                    failures.push(format!("{name} on {base}/{id}: {source}: {e}"));
                }
            }
        }
    }
    println!("{expressions} search parameter expressions, {evaluations} evaluations");
    assert!(
        expressions > 1000,
        "the R4 package has over a thousand search parameters"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
