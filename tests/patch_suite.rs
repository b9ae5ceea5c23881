//! HL7's patch test cases (`../shared/fhir-test-cases/patch/`): the FHIRPath Patch cases of
//! `fhir-patch-tests.xml` and the JSON Patch cases of `json-patch-tests.json`, run against
//! `fhir_server::patch`. Each case's input is patched and compared with its expected output (or
//! must fail when the case expects an error). The test fails when a case fails that is not listed
//! in `tests/patch-known-failures.txt` (name, a tab, the reason), when a listed case passes, or
//! when fewer than 95% of the cases pass.

#[path = "common/known_failures.rs"]
mod known_failures;

use fhir_server::patch::{JsonPatch, Patch};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-test-cases/patch")
}

/// The text between `<tag>` and `</tag>` in `case`.
fn section<'a>(case: &'a str, tag: &str) -> Option<&'a str> {
    let start = case.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = case[start..].find(&format!("</{tag}>"))? + start;
    Some(&case[start..end])
}

fn attribute(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("{name}=\""))? + name.len() + 2;
    let end = text[start..].find('"')? + start;
    Some(
        text[start..end]
            .replace("&apos;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn xml_resource(text: &str) -> Result<Value, String> {
    fhir_server::xml::from_xml(text.trim()).map_err(|e| format!("reading the case's XML: {e:?}"))
}

/// One FHIRPath Patch case: Ok when the server's patch gives the expected output (or fails
/// when an error is expected).
fn run_fhirpath_case(case: &str) -> Result<(), String> {
    let input = xml_resource(section(case, "input").ok_or("no input")?)?;
    let diff = xml_resource(section(case, "diff").ok_or("no diff")?)?;
    let expected_error = case.find("<error").and_then(|at| attribute(&case[at..], "msg"));
    let input = input.as_object().ok_or("the input is not a resource")?;
    let result = Patch::fhirpath_patch(diff.as_object().ok_or("the diff is not a resource")?)
        .and_then(|patch| patch.apply(input));
    match (result, expected_error) {
        (Err(_), Some(_)) => Ok(()),
        (Ok(out), Some(msg)) => Err(format!("expected the error '{msg}', got {}", Value::Object(out))),
        (Err(e), None) => Err(format!("failed: {}", e.issues[0].diagnostics)),
        (Ok(out), None) => {
            let expected = xml_resource(section(case, "output").ok_or("no output")?)?;
            let out = Value::Object(out);
            if out == expected {
                Ok(())
            } else {
                Err(format!("got {out}, expected {expected}"))
            }
        }
    }
}

fn run_json_case(case: &Value) -> Result<(), String> {
    let mut doc = case["doc"].clone();
    let result = JsonPatch::parse(&case["patch"]).and_then(|patch| patch.apply(&mut doc));
    match (result, case.get("error"), case.get("expected")) {
        (Err(_), Some(_), _) => Ok(()),
        (Ok(()), Some(error), _) => Err(format!("expected the error {error}, got {doc}")),
        (Err(e), None, _) => Err(format!("failed: {}", e.issues[0].diagnostics)),
        (Ok(()), None, Some(expected)) if &doc == expected => Ok(()),
        (Ok(()), None, expected) => Err(format!("got {doc}, expected {expected:?}")),
    }
}

#[test]
fn hl7_patch_cases_pass_except_known_failures() {
    let xml = fs::read_to_string(suite_dir().join("fhir-patch-tests.xml")).expect("the FHIRPath Patch cases");
    let json: Vec<Value> = serde_json::from_str(
        &fs::read_to_string(suite_dir().join("json-patch-tests.json")).expect("the JSON Patch cases"),
    )
    .expect("json-patch-tests.json is JSON");

    let mut results: Vec<(String, Result<(), String>)> = Vec::new();
    for case in xml.split("<case ").skip(1) {
        let case = &case[..case.find("</case>").expect("each case ends")];
        let name = attribute(case, "name").expect("each case has a name");
        results.push((format!("fhirpath: {name}"), run_fhirpath_case(case)));
    }
    for case in &json {
        let name = case["comment"]
            .as_str()
            .expect("each case has a comment")
            .trim()
            .to_owned();
        results.push((format!("json: {name}"), run_json_case(case)));
    }
    assert_eq!(
        results.len(),
        33 + 16,
        "33 FHIRPath Patch cases and 16 JSON Patch cases"
    );

    let known = known_failures::read("patch-known-failures.txt");
    let passed = results.iter().filter(|(_, r)| r.is_ok()).count();
    let unexpected: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| match r {
            Err(why) if !known.contains_key(name) => Some(format!("{name}\t{why}")),
            _ => None,
        })
        .collect();
    let now_passing: Vec<&str> = results
        .iter()
        .filter(|(name, r)| r.is_ok() && known.contains_key(name))
        .map(|(name, _)| name.as_str())
        .collect();
    println!("patch cases: {passed} of {} pass", results.len());
    assert!(
        now_passing.is_empty(),
        "listed as known failures but passing now (remove them from tests/patch-known-failures.txt):\n  {}",
        now_passing.join("\n  ")
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        passed * 100 >= results.len() * 95,
        "fewer than 95% of the patch cases pass"
    );
}
