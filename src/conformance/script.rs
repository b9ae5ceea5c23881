//! A TestScript read leniently into what the engine runs. Scripts in the wild follow R4 loosely:
//! R5's `stopTestOnFail` element or Touchstone's extension for it, `profile` as a canonical or a
//! Reference, operation types from any code system, `json`/`xml` shorthands or MIME types. What
//! the engine does not know is kept as a warning for the report, never a failure to read.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// Touchstone's extension on an assert: stop the test when this assert fails.
pub const STOP_TEST_ON_FAIL_EXTENSION: &str =
    "http://touchstone.aegis.net/touchstone/fhir/testing/StructureDefinition/testscript-assert-stopTestOnFail";

#[derive(Debug, Default)]
pub struct Script {
    pub id: Option<String>,
    pub url: Option<String>,
    pub name: String,
    pub fixtures: Vec<FixtureRef>,
    /// Profile id → canonical URL.
    pub profiles: HashMap<String, String>,
    pub variables: Vec<Variable>,
    pub setup: Vec<Action>,
    pub tests: Vec<Test>,
    pub teardown: Vec<Action>,
    /// Elements and extensions the engine ignores, named by path.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FixtureRef {
    pub id: String,
    pub autocreate: bool,
    pub autodelete: bool,
    /// `resource.reference`: a file path relative to the script, or `Type/id`.
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Variable {
    pub name: String,
    pub default_value: Option<String>,
    pub expression: Option<String>,
    pub path: Option<String>,
    pub header_field: Option<String>,
    pub source_id: Option<String>,
    pub hint: Option<String>,
}

#[derive(Debug)]
pub struct Test {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<Action>,
}

#[derive(Debug)]
pub enum Action {
    Operation(Box<Operation>),
    Assert(Box<Assert>),
}

#[derive(Debug, Clone, Default)]
pub struct Operation {
    /// The operation type's code (`read`, `search`, …), whatever its code system.
    pub kind: Option<String>,
    pub resource: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    /// MIME types (`json`/`xml` shorthands expanded).
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub encode_request_url: bool,
    pub method: Option<String>,
    pub params: Option<String>,
    pub headers: Vec<(String, String)>,
    pub request_id: Option<String>,
    pub response_id: Option<String>,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    pub url: Option<String>,
    /// `origin` and `destination` as written: recorded in the report; every request goes to the
    /// one server under test.
    pub origin: Option<String>,
    pub destination: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Response,
    Request,
}

#[derive(Debug, Clone, Default)]
pub struct Assert {
    pub label: Option<String>,
    pub description: Option<String>,
    pub direction: Direction,
    pub compare_to_source_id: Option<String>,
    pub compare_to_source_expression: Option<String>,
    pub compare_to_source_path: Option<String>,
    pub content_type: Option<String>,
    pub expression: Option<String>,
    pub header_field: Option<String>,
    pub minimum_id: Option<String>,
    pub navigation_links: Option<bool>,
    /// The operator as written (`equals` when absent).
    pub operator: Option<String>,
    pub path: Option<String>,
    pub request_method: Option<String>,
    pub request_url: Option<String>,
    pub resource: Option<String>,
    pub response: Option<String>,
    pub response_code: Option<String>,
    pub source_id: Option<String>,
    pub validate_profile_id: Option<String>,
    pub value: Option<String>,
    pub warning_only: bool,
    pub stop_test_on_fail: bool,
    /// Extensions on the assert the engine does not support (e.g. a sub-test to run): the
    /// assert is skipped for them, neither passed nor failed.
    pub unsupported_extensions: Vec<String>,
}

const SCRIPT_ELEMENTS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "jurisdiction",
    "purpose",
    "copyright",
    "origin",
    "destination",
    "metadata",
    "fixture",
    "profile",
    "variable",
    "setup",
    "test",
    "teardown",
];

const OPERATION_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "type",
    "resource",
    "label",
    "description",
    "accept",
    "contentType",
    "destination",
    "encodeRequestUrl",
    "method",
    "origin",
    "params",
    "requestHeader",
    "requestId",
    "responseId",
    "sourceId",
    "targetId",
    "url",
];

const ASSERT_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "label",
    "description",
    "direction",
    "compareToSourceId",
    "compareToSourceExpression",
    "compareToSourcePath",
    "contentType",
    "expression",
    "headerField",
    "minimumId",
    "navigationLinks",
    "operator",
    "path",
    "requestMethod",
    "requestURL",
    "resource",
    "response",
    "responseCode",
    "rule",
    "ruleset",
    "sourceId",
    "validateProfileId",
    "value",
    "warningOnly",
    "stopTestOnFail",
];

/// Reads a TestScript from its text (JSON, or XML when it starts with `<`).
pub fn parse(text: &str) -> Result<Script, String> {
    let json = if text.trim_start().starts_with('<') {
        crate::xml::from_xml(text).map_err(|e| format!("not FHIR XML: {}", first_issue(&e)))?
    } else {
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?
    };
    from_json(&json)
}

fn first_issue(error: &crate::error::Error) -> String {
    error
        .issues
        .first()
        .map(|i| i.diagnostics.clone())
        .unwrap_or_else(|| "unreadable".to_owned())
}

/// Reads a TestScript resource already parsed as JSON.
pub fn from_json(json: &Value) -> Result<Script, String> {
    let Some(root) = json.as_object() else {
        return Err("a TestScript is a JSON object".to_owned());
    };
    match root.get("resourceType").and_then(Value::as_str) {
        Some("TestScript") => {}
        Some(other) => return Err(format!("a {other}, not a TestScript")),
        None => return Err("no resourceType".to_owned()),
    }
    let mut script = Script {
        id: text(root, "id"),
        url: text(root, "url"),
        name: text(root, "name")
            .or_else(|| text(root, "title"))
            .or_else(|| text(root, "id"))
            .unwrap_or_else(|| "TestScript".to_owned()),
        ..Script::default()
    };
    let warnings = &mut script.warnings;
    note_unknown(root, SCRIPT_ELEMENTS, "TestScript", warnings);
    note_extensions(root, "TestScript", &[], warnings);
    for (n, fixture) in list(root, "fixture").enumerate() {
        let Some(id) = text_of(fixture, "id") else {
            warnings.push(format!("TestScript.fixture[{n}] has no id and cannot be used"));
            continue;
        };
        script.fixtures.push(FixtureRef {
            id,
            autocreate: fixture["autocreate"].as_bool().unwrap_or(false),
            autodelete: fixture["autodelete"].as_bool().unwrap_or(false),
            reference: fixture["resource"]["reference"].as_str().map(str::to_owned),
        });
    }
    for (n, profile) in list(root, "profile").enumerate() {
        match profile {
            Value::String(canonical) => {
                script.profiles.insert(canonical.clone(), canonical.clone());
            }
            Value::Object(reference) => {
                let url = reference.get("reference").and_then(Value::as_str);
                let id = reference.get("id").and_then(Value::as_str).or(url);
                if let (Some(id), Some(url)) = (id, url) {
                    script.profiles.insert(id.to_owned(), url.to_owned());
                }
            }
            _ => warnings.push(format!(
                "TestScript.profile[{n}] is neither a canonical nor a Reference"
            )),
        }
    }
    for variable in list(root, "variable") {
        script.variables.push(Variable {
            name: text_of(variable, "name").unwrap_or_default(),
            default_value: text_of(variable, "defaultValue"),
            expression: text_of(variable, "expression"),
            path: text_of(variable, "path"),
            header_field: text_of(variable, "headerField"),
            source_id: text_of(variable, "sourceId"),
            hint: text_of(variable, "hint"),
        });
    }
    script.setup = actions(
        &root.get("setup").cloned().unwrap_or(Value::Null),
        "TestScript.setup",
        warnings,
    );
    for (n, test) in list(root, "test").enumerate() {
        let path = format!("TestScript.test[{n}]");
        script.tests.push(Test {
            name: text_of(test, "name")
                .or_else(|| text_of(test, "id"))
                .unwrap_or_else(|| format!("test {}", n + 1)),
            description: text_of(test, "description"),
            actions: actions(test, &path, warnings),
        });
    }
    script.teardown = actions(
        &root.get("teardown").cloned().unwrap_or(Value::Null),
        "TestScript.teardown",
        warnings,
    );
    Ok(script)
}

fn actions(holder: &Value, path: &str, warnings: &mut Vec<String>) -> Vec<Action> {
    let mut actions = Vec::new();
    for (n, action) in holder["action"].as_array().into_iter().flatten().enumerate() {
        let at = format!("{path}.action[{n}]");
        if let Some(operation) = action.get("operation").and_then(Value::as_object) {
            actions.push(Action::Operation(Box::new(read_operation(
                operation,
                &format!("{at}.operation"),
                warnings,
            ))));
        } else if let Some(assert) = action.get("assert").and_then(Value::as_object) {
            actions.push(Action::Assert(Box::new(read_assert(
                assert,
                &format!("{at}.assert"),
                warnings,
            ))));
        } else {
            warnings.push(format!("{at} is neither an operation nor an assert"));
        }
    }
    actions
}

fn read_operation(object: &Map<String, Value>, path: &str, warnings: &mut Vec<String>) -> Operation {
    note_unknown(object, OPERATION_ELEMENTS, path, warnings);
    note_extensions(object, path, &[], warnings);
    Operation {
        kind: object
            .get("type")
            .and_then(|t| t.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource: text(object, "resource"),
        label: text(object, "label"),
        description: text(object, "description"),
        accept: text(object, "accept").map(|m| mime_type(&m)),
        content_type: text(object, "contentType").map(|m| mime_type(&m)),
        encode_request_url: object.get("encodeRequestUrl").and_then(Value::as_bool).unwrap_or(true),
        method: text(object, "method"),
        params: text(object, "params"),
        headers: object
            .get("requestHeader")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|h| Some((text_of(h, "field")?, text_of(h, "value").unwrap_or_default())))
            .collect(),
        request_id: text(object, "requestId"),
        response_id: text(object, "responseId"),
        source_id: text(object, "sourceId"),
        target_id: text(object, "targetId"),
        url: text(object, "url"),
        origin: text(object, "origin"),
        destination: text(object, "destination"),
    }
}

fn read_assert(object: &Map<String, Value>, path: &str, warnings: &mut Vec<String>) -> Assert {
    note_unknown(object, ASSERT_ELEMENTS, path, warnings);
    note_extensions(object, path, &[STOP_TEST_ON_FAIL_EXTENSION], warnings);
    let stop_extension = object
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e["url"] == STOP_TEST_ON_FAIL_EXTENSION)
        .and_then(|e| e["valueBoolean"].as_bool());
    Assert {
        label: text(object, "label"),
        description: text(object, "description"),
        direction: match object.get("direction").and_then(Value::as_str) {
            Some("request") => Direction::Request,
            _ => Direction::Response,
        },
        compare_to_source_id: text(object, "compareToSourceId"),
        compare_to_source_expression: text(object, "compareToSourceExpression"),
        compare_to_source_path: text(object, "compareToSourcePath"),
        content_type: text(object, "contentType").map(|m| mime_type(&m)),
        expression: text(object, "expression"),
        header_field: text(object, "headerField"),
        minimum_id: text(object, "minimumId"),
        navigation_links: object.get("navigationLinks").and_then(Value::as_bool),
        operator: text(object, "operator"),
        path: text(object, "path"),
        request_method: text(object, "requestMethod"),
        request_url: text(object, "requestURL"),
        resource: text(object, "resource"),
        response: text(object, "response"),
        response_code: text(object, "responseCode"),
        source_id: text(object, "sourceId"),
        validate_profile_id: text(object, "validateProfileId"),
        value: text(object, "value"),
        warning_only: object.get("warningOnly").and_then(Value::as_bool).unwrap_or(false),
        stop_test_on_fail: object
            .get("stopTestOnFail")
            .and_then(Value::as_bool)
            .or(stop_extension)
            .unwrap_or(false),
        unsupported_extensions: unsupported_in_assert(object),
    }
}

/// What makes an assert mean more than the engine can judge: extensions other than
/// `stopTestOnFail`, any modifier extension, and R4's `rule`/`ruleset` (external rules).
fn unsupported_in_assert(object: &Map<String, Value>) -> Vec<String> {
    let urls = |key: &str| -> Vec<String> {
        object
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| e["url"].as_str().unwrap_or("(no url)"))
            .filter(|url| *url != STOP_TEST_ON_FAIL_EXTENSION)
            .map(|url| format!("the extension {url}"))
            .collect()
    };
    let mut unsupported = urls("extension");
    unsupported.extend(urls("modifierExtension"));
    for element in ["rule", "ruleset"] {
        if object.contains_key(element) {
            unsupported.push(format!("a {element} (external rules)"));
        }
    }
    unsupported
}

/// `json` and `xml` as the FHIR MIME types; anything else as written.
pub fn mime_type(given: &str) -> String {
    match given {
        "json" => "application/fhir+json".to_owned(),
        "xml" => "application/fhir+xml".to_owned(),
        other => other.to_owned(),
    }
}

fn note_unknown(object: &Map<String, Value>, known: &[&str], path: &str, warnings: &mut Vec<String>) {
    for key in object.keys() {
        let name = key.strip_prefix('_').unwrap_or(key);
        if !known.contains(&name) {
            warnings.push(format!("{path}.{key} is not an element the engine knows; ignored"));
        }
    }
}

fn note_extensions(object: &Map<String, Value>, path: &str, understood: &[&str], warnings: &mut Vec<String>) {
    for extension in object.get("extension").and_then(Value::as_array).into_iter().flatten() {
        let url = extension["url"].as_str().unwrap_or("(no url)");
        if !understood.contains(&url) {
            warnings.push(format!("{path}: extension {url} is not understood; ignored"));
        }
    }
}

fn list<'a>(object: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    object.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_of(value: &Value, key: &str) -> Option<String> {
    value.as_object().and_then(|o| text(o, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_touchstone_conventions_leniently() {
        let script = from_json(&json!({
            "resourceType": "TestScript", "name": "t", "status": "active", "url": "http://x/t",
            "profile": [{"id": "p", "reference": "http://hl7.org/fhir/StructureDefinition/Patient"},
                        "http://example.org/StructureDefinition/other"],
            "test": [{"name": "one", "action": [
                {"operation": {"type": {"system": "http://example.org/codes", "code": "read"},
                               "resource": "Patient", "accept": "xml", "params": "/1", "shiny": 1}},
                {"assert": {"response": "okay", "extension": [
                    {"url": STOP_TEST_ON_FAIL_EXTENSION, "valueBoolean": true},
                    {"url": "http://example.org/unknown", "valueString": "x"}]}},
                {"assert": {"responseCode": "200", "stopTestOnFail": false, "warningOnly": true}}
            ]}]
        }))
        .unwrap();
        assert_eq!(script.profiles["p"], "http://hl7.org/fhir/StructureDefinition/Patient");
        assert!(
            script
                .profiles
                .contains_key("http://example.org/StructureDefinition/other")
        );
        let [Action::Operation(read), Action::Assert(first), Action::Assert(second)] = &script.tests[0].actions[..]
        else {
            panic!("three actions expected");
        };
        assert_eq!(read.kind.as_deref(), Some("read"));
        assert_eq!(read.accept.as_deref(), Some("application/fhir+xml"));
        assert!(first.stop_test_on_fail && !first.warning_only);
        assert!(!second.stop_test_on_fail && second.warning_only);
        assert_eq!(script.warnings.len(), 2, "{:?}", script.warnings);
        assert!(script.warnings.iter().any(|w| w.contains("shiny")));
        assert!(script.warnings.iter().any(|w| w.contains("http://example.org/unknown")));
    }

    #[test]
    fn other_resources_and_broken_text_are_refused_with_a_reason() {
        assert!(parse("{").unwrap_err().starts_with("not JSON"));
        assert!(parse(r#"{"resourceType": "Patient"}"#).unwrap_err().contains("Patient"));
        let xml = r#"<TestScript xmlns="http://hl7.org/fhir"><name value="x"/><status value="active"/></TestScript>"#;
        assert_eq!(parse(xml).unwrap().name, "x");
    }
}
