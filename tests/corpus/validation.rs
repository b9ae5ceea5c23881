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
