//! What a run leaves behind: a TestReport (R4) per script, a readable summary, and JUnit XML
//! for CI dashboards.

use super::engine::{ActionResult, Outcome, ScriptResult};
use super::script::Script;
use serde_json::{Value, json};
use std::fmt::Write;

/// The R4 TestReport of one script's run against `base`.
pub fn test_report(script: &Script, result: &ScriptResult, base: &str) -> Value {
    let tests_run: Vec<_> = result.tests.iter().filter(|t| t.outcome() != Outcome::Skip).collect();
    let passed = tests_run.iter().filter(|t| t.outcome() == Outcome::Pass).count();
    let score = if tests_run.is_empty() {
        if result.result() == "pass" { 100.0 } else { 0.0 }
    } else {
        (passed as f64 * 100.0 / tests_run.len() as f64 * 100.0).round() / 100.0
    };
    let outcome = result.result();
    let script_reference = match (&script.url, &script.id) {
        (Some(url), _) => url.clone(),
        (None, Some(id)) => format!("TestScript/{id}"),
        (None, None) => format!("#{}", script.name),
    };
    let mut report = json!({
        "resourceType": "TestReport",
        "id": uuid::Uuid::new_v4().to_string(),
        "name": script.name,
        "status": "completed",
        "testScript": {"reference": script_reference, "display": script.name},
        "result": outcome,
        "score": score,
        "tester": "fhir-server conformance",
        "issued": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "participant": [
            {"type": "test-engine", "uri": "urn:fhir-server:conformance", "display": "fhir-server conformance"},
            {"type": "server", "uri": base}
        ],
    });
    if !result.setup.is_empty() {
        report["setup"] = json!({"action": result.setup.iter().map(action_json).collect::<Vec<_>>()});
    }
    let tests: Vec<Value> = result
        .tests
        .iter()
        .filter(|t| !t.actions.is_empty())
        .map(|t| {
            let mut test = json!({"name": t.name, "action": t.actions.iter().map(action_json).collect::<Vec<_>>()});
            if let Some(description) = &t.description {
                test["description"] = json!(description);
            }
            test
        })
        .collect();
    if !tests.is_empty() {
        report["test"] = json!(tests);
    }
    // A teardown holds operations only (R4).
    let teardown: Vec<Value> = result
        .teardown
        .iter()
        .map(|a| json!({"operation": result_json(a)}))
        .collect();
    if !teardown.is_empty() {
        report["teardown"] = json!({"action": teardown});
    }
    if !script.warnings.is_empty() {
        report["extension"] = json!(
            script
                .warnings
                .iter()
                .map(|w| json!({"url": "urn:fhir-server:conformance:warning", "valueString": w}))
                .collect::<Vec<_>>()
        );
    }
    report
}

fn action_json(action: &ActionResult) -> Value {
    if action.is_assert {
        json!({"assert": result_json(action)})
    } else {
        json!({"operation": result_json(action)})
    }
}

fn result_json(action: &ActionResult) -> Value {
    json!({"result": action.outcome.code(), "message": format!("{}: {}", action.label, action.message)})
}

/// Lines for stdout: one per test (and a setup that failed), then the script's verdict.
pub fn summary(name: &str, script: &Script, result: &ScriptResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{name}");
    for warning in &script.warnings {
        let _ = writeln!(out, "  warning  {warning}");
    }
    for action in result
        .setup
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Fail | Outcome::Error))
    {
        let _ = writeln!(
            out,
            "  SETUP {}  {}: {}",
            action.outcome.code().to_uppercase(),
            action.label,
            action.message
        );
    }
    for test in &result.tests {
        let verdict = test.outcome();
        let _ = writeln!(out, "  {:<5} {}", verdict.code().to_uppercase(), test.name);
        for action in test
            .actions
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Fail | Outcome::Error | Outcome::Warning))
        {
            let _ = writeln!(
                out,
                "        {} {}: {}",
                action.outcome.code(),
                action.label,
                action.message
            );
        }
    }
    for action in result.teardown.iter().filter(|a| a.outcome == Outcome::Error) {
        let _ = writeln!(out, "  TEARDOWN ERROR  {}: {}", action.label, action.message);
    }
    out
}

/// JUnit XML: a `testsuite` per script, a `testcase` per test.
pub fn junit(runs: &[(String, ScriptResult)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (name, result) in runs {
        let failures = result.tests.iter().filter(|t| t.outcome() == Outcome::Fail).count();
        let skipped = result.tests.iter().filter(|t| t.outcome() == Outcome::Skip).count();
        let setup_errors = result
            .setup
            .iter()
            .chain(&result.teardown)
            .filter(|a| a.outcome == Outcome::Error)
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{setup_errors}\" skipped=\"{skipped}\">",
            escape(name),
            result.tests.len()
        );
        for action in result
            .setup
            .iter()
            .chain(&result.teardown)
            .filter(|a| a.outcome == Outcome::Error)
        {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"><error message=\"{}\"/></testcase>",
                escape(&action.label),
                escape(name),
                escape(&action.message)
            );
        }
        for test in &result.tests {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"",
                escape(&test.name),
                escape(name)
            );
            match test.outcome() {
                Outcome::Fail => {
                    let reasons: Vec<String> = test
                        .actions
                        .iter()
                        .filter(|a| matches!(a.outcome, Outcome::Fail | Outcome::Error))
                        .map(|a| format!("{}: {}", a.label, a.message))
                        .collect();
                    let _ = writeln!(
                        out,
                        "><failure message=\"{}\"/></testcase>",
                        escape(&reasons.join("; "))
                    );
                }
                Outcome::Skip => {
                    let _ = writeln!(out, "><skipped/></testcase>");
                }
                _ => {
                    let _ = writeln!(out, "/>");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn escape(text: &str) -> String {
    // XML 1.0 has no place for most control characters, which a server's text may carry.
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
}
