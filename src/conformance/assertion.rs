//! An assert's verdict, with a message that says what was expected and what came back. The
//! subject is the last exchange (or the one kept as `sourceId`), its response unless the assert's
//! `direction` is `request`; every check the assert names must hold.

use super::client::Exchange;
use super::locate;
use super::script::{Assert, Direction};
use super::state::State;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass(String),
    Fail(String),
    /// Not checked, with the reason (a profile the engine cannot validate against).
    Skip(String),
    /// The assert could not be evaluated (no response, a broken expression).
    Error(String),
}

/// What an assert looks at.
struct Subject<'a> {
    exchange: Option<&'a Exchange>,
    resource: Option<&'a Value>,
    direction: Direction,
}

impl Subject<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let exchange = self.exchange?;
        match self.direction {
            Direction::Request => exchange.request_header(name),
            Direction::Response => exchange.response_header(name),
        }
    }
}

pub fn evaluate(assert: &Assert, state: &State, profiles: &HashMap<String, String>) -> Verdict {
    match check(assert, state, profiles) {
        Ok(Ok(message)) => Verdict::Pass(message),
        Ok(Err(Outcome::Fail(message))) => Verdict::Fail(message),
        Ok(Err(Outcome::Skip(message))) => Verdict::Skip(message),
        Err(message) => Verdict::Error(message),
    }
}

enum Outcome {
    Fail(String),
    Skip(String),
}

type Checked = Result<Result<String, Outcome>, String>;

fn check(assert: &Assert, state: &State, profiles: &HashMap<String, String>) -> Checked {
    // An extension may change what the assert means (Touchstone's sub-tests turn an expression
    // into the list of resources to test): not understood, it is not judged at all.
    if let Some(extension) = assert.unsupported_extensions.first() {
        return Ok(Err(Outcome::Skip(format!(
            "the assert carries the extension {extension}, which the engine does not support"
        ))));
    }
    let subject = subject(assert, state)?;
    let mut passed = Vec::new();
    macro_rules! run {
        ($result:expr) => {
            match $result? {
                Ok(message) => passed.push(message),
                Err(outcome) => return Ok(Err(outcome)),
            }
        };
    }
    let operator = assert.operator.as_deref();
    if let Some(name) = &assert.response {
        let expected = response_code(name).ok_or_else(|| format!("'{name}' is not an assert response code"))?;
        let actual = status(&subject)?;
        run!(compare(
            "the response status",
            Some(&actual),
            &expected.to_string(),
            operator,
            state
        ));
    }
    if let Some(codes) = &assert.response_code {
        let actual = status(&subject)?;
        let operator = operator.or(codes.contains(',').then_some("in"));
        run!(compare("the response status", Some(&actual), codes, operator, state));
    }
    if let Some(expected) = &assert.content_type {
        let actual = subject.header("content-type").map(media_type);
        run!(compare_content_type(actual.as_deref(), expected));
    }
    if let Some(field) = &assert.header_field {
        let actual = subject.header(field).map(str::to_owned);
        let expected = assert.value.clone().unwrap_or_default();
        // A header named without a value: it must be there.
        let operator = if assert.value.is_none() {
            operator.or(Some("notEmpty"))
        } else {
            operator
        };
        run!(compare(
            &format!("the header {field}"),
            actual.as_ref(),
            &expected,
            operator,
            state
        ));
    }
    if let Some(expected) = &assert.resource {
        let actual = resource(&subject)?["resourceType"].as_str().map(str::to_owned);
        run!(compare("the resource type", actual.as_ref(), expected, operator, state));
    }
    if let Some(minimum) = &assert.minimum_id {
        let fixture = state
            .source(minimum)
            .ok_or_else(|| format!("minimumId '{minimum}' names no fixture"))?;
        let fixture = state.substitute_resource(fixture)?;
        run!(Ok::<_, String>(
            match contains_minimum(resource(&subject)?, &fixture, "") {
                None => Ok(format!("the resource has every element of {minimum}")),
                Some(missing) => Err(Outcome::Fail(format!("the resource lacks {missing} of {minimum}"))),
            }
        ));
    }
    if assert.navigation_links == Some(true) {
        run!(Ok::<_, String>(navigation_links(resource(&subject)?)));
    }
    if assert.expression.is_some() || assert.path.is_some() || assert.compare_to_source_id.is_some() {
        run!(check_values(assert, &subject, state));
    }
    if let Some(expected) = &assert.request_method {
        let actual = subject
            .exchange
            .map(|e| e.method.clone())
            .ok_or("no request was sent before this assert")?;
        run!(compare(
            "the request method",
            Some(&actual.to_ascii_lowercase()),
            &expected.to_ascii_lowercase(),
            operator,
            state
        ));
    }
    if let Some(expected) = &assert.request_url {
        let exchange = subject.exchange.ok_or("no request was sent before this assert")?;
        let expected = state.substitute(expected)?;
        let relative = exchange
            .url
            .strip_prefix(state.base.trim_end_matches('/'))
            .map(|r| r.trim_start_matches('/'));
        let actual = match relative {
            Some(relative) if !expected.starts_with("http") => relative.to_owned(),
            _ => exchange.url.clone(),
        };
        run!(compare(
            "the request URL",
            Some(&actual),
            expected.trim_start_matches('/'),
            operator,
            state
        ));
    }
    if let Some(profile_id) = &assert.validate_profile_id {
        run!(validate_profile(profile_id, profiles, resource(&subject)?));
    }
    if passed.is_empty() {
        return Err("the assert names nothing to check".to_owned());
    }
    Ok(Ok(passed.join("; ")))
}

fn subject<'a>(assert: &Assert, state: &'a State) -> Result<Subject<'a>, String> {
    if let Some(id) = &assert.source_id {
        if let Some(exchange) = state.responses.get(id).or_else(|| state.requests.get(id)) {
            return Ok(Subject {
                exchange: Some(exchange),
                resource: side(exchange, assert.direction),
                direction: assert.direction,
            });
        }
        let resource = state
            .source(id)
            .ok_or_else(|| format!("sourceId '{id}' names no fixture or response"))?;
        return Ok(Subject {
            exchange: None,
            resource: Some(resource),
            direction: assert.direction,
        });
    }
    Ok(Subject {
        exchange: state.last.as_ref(),
        resource: state.last.as_ref().and_then(|e| side(e, assert.direction)),
        direction: assert.direction,
    })
}

fn side(exchange: &Exchange, direction: Direction) -> Option<&Value> {
    match direction {
        Direction::Request => exchange.request_resource.as_ref(),
        Direction::Response => exchange.response_resource.as_ref(),
    }
}

fn status(subject: &Subject<'_>) -> Result<String, String> {
    subject
        .exchange
        .map(|e| e.status.to_string())
        .ok_or_else(|| "no response to check: no operation ran before this assert".to_owned())
}

fn resource<'a>(subject: &Subject<'a>) -> Result<&'a Value, String> {
    subject.resource.ok_or_else(|| match subject.direction {
        Direction::Request => "the request carried no resource".to_owned(),
        Direction::Response => "the response carried no resource".to_owned(),
    })
}

/// TestScript's `assert.response` codes (R4 value set assert-response-code-types).
fn response_code(name: &str) -> Option<u16> {
    Some(match name {
        "okay" => 200,
        "created" => 201,
        "noContent" => 204,
        "notModified" => 304,
        "bad" => 400,
        "forbidden" => 403,
        "notFound" => 404,
        "methodNotAllowed" => 405,
        "conflict" => 409,
        "gone" => 410,
        "preconditionFailed" => 412,
        "unprocessable" => 422,
        _ => return None,
    })
}

fn media_type(header: &str) -> String {
    header.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn compare_content_type(actual: Option<&str>, expected: &str) -> Result<Result<String, Outcome>, String> {
    let Some(actual) = actual else {
        return Ok(Err(Outcome::Fail(format!(
            "expected content type {expected}, got none"
        ))));
    };
    let family = |m: &str| {
        if m.contains("json") {
            "json"
        } else if m.contains("xml") {
            "xml"
        } else {
            "other"
        }
    };
    let expected = media_type(expected);
    let matches = actual == expected || (family(&expected) != "other" && family(actual) == family(&expected));
    Ok(if matches {
        Ok(format!("content type {actual}"))
    } else {
        Err(Outcome::Fail(format!("expected content type {expected}, got {actual}")))
    })
}

/// `actual` against `expected` by `operator` (`equals` when absent); `expected` may hold
/// variables.
fn compare(
    what: &str,
    actual: Option<&String>,
    expected: &str,
    operator: Option<&str>,
    state: &State,
) -> Result<Result<String, Outcome>, String> {
    let expected = state.substitute(expected)?;
    let operator = operator.unwrap_or("equals");
    let shown = actual.map(|a| format!("'{a}'")).unwrap_or_else(|| "nothing".to_owned());
    let holds = match (operator, actual) {
        ("empty", actual) => actual.is_none_or(String::is_empty),
        ("notEmpty", actual) => actual.is_some_and(|a| !a.is_empty()),
        (_, None) => false,
        ("equals", Some(a)) => *a == expected,
        ("notEquals", Some(a)) => *a != expected,
        ("in", Some(a)) => expected.split(',').any(|e| e.trim() == a),
        ("notIn", Some(a)) => !expected.split(',').any(|e| e.trim() == a),
        ("greaterThan", Some(a)) => order(a, &expected) == std::cmp::Ordering::Greater,
        ("lessThan", Some(a)) => order(a, &expected) == std::cmp::Ordering::Less,
        ("contains", Some(a)) => a.contains(&expected),
        ("notContains", Some(a)) => !a.contains(&expected),
        (other, _) => return Err(format!("'{other}' is not an operator the engine knows")),
    };
    let expectation = match operator {
        "empty" | "notEmpty" => format!("{what} {operator}"),
        _ => format!("{what} {operator} '{expected}'"),
    };
    Ok(if holds {
        Ok(format!("{expectation}: got {shown}"))
    } else {
        Err(Outcome::Fail(format!("expected {expectation}, got {shown}")))
    })
}

/// Numbers by value, anything else as text.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// `expression` or `path` on the subject, against `value` or what `compareToSource…` finds.
fn check_values(assert: &Assert, subject: &Subject<'_>, state: &State) -> Result<Result<String, Outcome>, String> {
    let operator = assert.operator.as_deref();
    let what = assert
        .expression
        .as_deref()
        .or(assert.path.as_deref())
        .unwrap_or("the compared value");
    if operator == Some("eval")
        || (assert.value.is_none()
            && assert.compare_to_source_id.is_none()
            && assert.expression.is_some()
            && !matches!(operator, Some("empty" | "notEmpty")))
    {
        let expression = state.substitute(
            assert
                .expression
                .as_deref()
                .ok_or("operator eval needs an expression")?,
        )?;
        let holds = locate::expression_holds(resource(subject)?, &expression)?;
        return Ok(if holds {
            Ok(format!("{expression} is true"))
        } else {
            Err(Outcome::Fail(format!("expected {expression} to be true, it is not")))
        });
    }
    // Without an expression or path of its own, the assert compares what the source's
    // expression (or path) finds in the subject with what it finds in the source.
    let own_expression = assert.expression.as_ref().or(assert
        .compare_to_source_expression
        .as_ref()
        .filter(|_| assert.path.is_none()));
    let own_path = assert.path.as_ref().or(assert
        .compare_to_source_path
        .as_ref()
        .filter(|_| assert.expression.is_none()));
    let actual = match (own_expression, own_path) {
        (Some(expression), _) => Some(locate::expression_values(
            resource(subject)?,
            &state.substitute(expression)?,
        )?),
        (None, Some(path)) => Some(locate::path_values(resource(subject)?, &state.substitute(path)?)?),
        (None, None) => None,
    };
    let expected = match &assert.compare_to_source_id {
        Some(id) => {
            let source = state
                .source(id)
                .ok_or_else(|| format!("compareToSourceId '{id}' names no fixture or response"))?;
            let source = state.substitute_resource(source)?;
            let found = match (&assert.compare_to_source_expression, &assert.compare_to_source_path) {
                (Some(e), _) => locate::expression_values(&source, &state.substitute(e)?)?,
                (None, Some(p)) => locate::path_values(&source, &state.substitute(p)?)?,
                (None, None) => {
                    return Err("compareToSourceId needs compareToSourceExpression or compareToSourcePath".to_owned());
                }
            };
            found.into_iter().next().unwrap_or_default()
        }
        None => assert.value.clone().unwrap_or_default(),
    };
    let actual = actual.and_then(|values| values.into_iter().next());
    compare(what, actual.as_ref(), &expected, operator, state)
}

/// The first element of `minimum` (a fixture) missing from `actual`, by path; `id`, `meta` and
/// `text` are the server's to set.
fn contains_minimum(actual: &Value, minimum: &Value, path: &str) -> Option<String> {
    match (actual, minimum) {
        (Value::Object(a), Value::Object(m)) => m
            .iter()
            .filter(|(key, _)| !(path.is_empty() && matches!(key.as_str(), "id" | "meta" | "text")))
            .find_map(|(key, wanted)| {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match a.get(key) {
                    None => Some(at),
                    Some(found) => contains_minimum(found, wanted, &at),
                }
            }),
        (Value::Array(a), Value::Array(m)) => m
            .iter()
            .enumerate()
            .find(|(_, wanted)| !a.iter().any(|found| contains_minimum(found, wanted, path).is_none()))
            .map(|(n, _)| format!("{path}[{n}]")),
        (a, m) if a == m => None,
        (Value::String(a), Value::Number(m)) if *a == m.to_string() => None,
        (Value::Number(a), Value::String(m)) if a.to_string() == *m => None,
        _ => Some(path.to_owned()),
    }
}

fn navigation_links(bundle: &Value) -> Result<String, Outcome> {
    if bundle["resourceType"] != "Bundle" {
        return Err(Outcome::Fail(
            "expected a Bundle with navigation links, got no Bundle".to_owned(),
        ));
    }
    let links: Vec<&str> = bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["url"].as_str().is_some_and(|u| !u.is_empty()))
        .filter_map(|l| l["relation"].as_str())
        .collect();
    if links.contains(&"self") {
        Ok(format!("navigation links: {}", links.join(", ")))
    } else {
        Err(Outcome::Fail(format!(
            "expected a self link among the Bundle's links, got [{}]",
            links.join(", ")
        )))
    }
}

/// The core profile of a resource type through the project's validator; other profiles are
/// skipped with the reason.
fn validate_profile(
    profile_id: &str,
    profiles: &HashMap<String, String>,
    resource: &Value,
) -> Result<Result<String, Outcome>, String> {
    let url = profiles
        .get(profile_id)
        .ok_or_else(|| format!("validateProfileId '{profile_id}' names no profile of the script"))?;
    let Some(core_type) = url.strip_prefix("http://hl7.org/fhir/StructureDefinition/") else {
        return Ok(Err(Outcome::Skip(format!(
            "{url} is not a core R4 profile; the engine validates against core profiles only"
        ))));
    };
    if crate::model::ResourceType::parse(core_type).is_none() {
        return Ok(Err(Outcome::Skip(format!(
            "{url} is not the profile of a resource type"
        ))));
    }
    if resource["resourceType"].as_str() != Some(core_type) {
        return Ok(Err(Outcome::Fail(format!(
            "expected a {core_type} for {url}, got {}",
            resource["resourceType"].as_str().unwrap_or("no resource type")
        ))));
    }
    Ok(match crate::validate::validate(resource) {
        Ok(()) => Ok(format!("valid against {url}")),
        Err(e) => {
            let problems: Vec<String> = e
                .issues
                .iter()
                .take(5)
                .map(|i| format!("{} ({})", i.diagnostics, i.expression.as_deref().unwrap_or("")))
                .collect();
            Err(Outcome::Fail(format!(
                "not valid against {url}: {}",
                problems.join("; ")
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimum_content_is_a_structural_subset() {
        let actual = json!({"resourceType": "Patient", "id": "x", "name": [{"family": "A", "given": ["B", "C"]}], "gender": "male"});
        assert_eq!(
            contains_minimum(
                &actual,
                &json!({"resourceType": "Patient", "id": "other", "name": [{"given": ["C"]}]}),
                ""
            ),
            None
        );
        assert_eq!(
            contains_minimum(&actual, &json!({"resourceType": "Patient", "birthDate": "2000"}), ""),
            Some("birthDate".to_owned())
        );
        assert_eq!(
            contains_minimum(&actual, &json!({"name": [{"family": "Z"}]}), ""),
            Some("name[0]".to_owned())
        );
    }
}
