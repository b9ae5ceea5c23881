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
            "the assert carries {extension}, which the engine does not support"
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
    // The script's own `value`, its variables replaced (values found in resources never are).
    let value = match &assert.value {
        Some(value) => Some(state.substitute(value)?),
        None => None,
    };
    if let Some(name) = &assert.response {
        let expected = response_code(name).ok_or_else(|| format!("'{name}' is not an assert response code"))?;
        let actual = status(&subject)?;
        run!(compare(
            "the response status",
            &[actual],
            &expected.to_string(),
            operator
        ));
    }
    if let Some(codes) = &assert.response_code {
        let actual = status(&subject)?;
        let operator = operator.or(codes.contains(',').then_some("in"));
        run!(compare(
            "the response status",
            &[actual],
            &state.substitute(codes)?,
            operator
        ));
    }
    if let Some(expected) = &assert.content_type {
        exchange(&subject)?;
        let actual = subject.header("content-type").map(media_type);
        run!(compare_content_type(actual.as_deref(), expected));
    }
    if let Some(field) = &assert.header_field {
        exchange(&subject)?;
        let actual: Vec<String> = subject.header(field).map(str::to_owned).into_iter().collect();
        // A header named without a value: it must be there.
        let operator = if value.is_none() {
            operator.or(Some("notEmpty"))
        } else {
            operator
        };
        let expected = needed(value.as_deref(), operator)?;
        run!(compare(&format!("the header {field}"), &actual, expected, operator));
    }
    if let Some(expected) = &assert.resource {
        let actual: Vec<String> = resource(&subject)?["resourceType"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect();
        run!(compare("the resource type", &actual, expected, operator));
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
        run!(check_values(assert, value.as_deref(), &subject, state));
    }
    if let Some(expected) = &assert.request_method {
        let actual = exchange(&subject)?.method.to_ascii_lowercase();
        run!(compare(
            "the request method",
            &[actual],
            &expected.to_ascii_lowercase(),
            operator
        ));
    }
    if let Some(expected) = &assert.request_url {
        let exchange = exchange(&subject)?;
        let expected = state.substitute(expected)?;
        // Compared as sent and as written alike: percent-decoded.
        let sent = percent_decode(&exchange.url);
        let relative = sent
            .strip_prefix(state.base.trim_end_matches('/'))
            .map(|r| r.trim_start_matches('/'));
        let actual = match relative {
            Some(relative) if !expected.starts_with("http") => relative.to_owned(),
            _ => sent.clone(),
        };
        let expected = percent_decode(expected.trim_start_matches('/'));
        run!(compare("the request URL", &[actual], &expected, operator));
    }
    if let Some(profile_id) = &assert.validate_profile_id {
        run!(validate_profile(profile_id, profiles, resource(&subject)?));
    }
    if passed.is_empty() {
        return Err("the assert names nothing to check".to_owned());
    }
    Ok(Ok(passed.join("; ")))
}

/// The exchange an assert on headers, status or the request needs.
fn exchange<'a>(subject: &Subject<'a>) -> Result<&'a Exchange, String> {
    subject.exchange.ok_or_else(|| {
        "no exchange to check: no operation ran before this assert, or its sourceId names a fixture".to_owned()
    })
}

/// The value an operator compares with; only `empty` and `notEmpty` need none.
fn needed<'v>(value: Option<&'v str>, operator: Option<&str>) -> Result<&'v str, String> {
    match (value, operator) {
        (Some(value), _) => Ok(value),
        (None, Some("empty" | "notEmpty")) => Ok(""),
        (None, operator) => Err(format!(
            "operator {} needs a value to compare with, and the assert gives none",
            operator.unwrap_or("equals")
        )),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// The values found against `expected` by `operator` (`equals` when absent). A path or an
/// expression may find several values: the positive operators look at the first (XPath's string
/// value of a node-set), the negative ones (`notEquals`, `notIn`, `notContains`) must hold for
/// every value, `empty` means nothing (or only empty text) was found.
fn compare(
    what: &str,
    actual: &[String],
    expected: &str,
    operator: Option<&str>,
) -> Result<Result<String, Outcome>, String> {
    let operator = operator.unwrap_or("equals");
    let shown = match actual {
        [] => "nothing".to_owned(),
        [one] => format!("'{one}'"),
        many => format!("'{}' (and {} more)", many[0], many.len() - 1),
    };
    let first = actual.first();
    let in_list = |a: &String| expected.split(',').any(|e| e.trim() == a);
    let holds = match operator {
        "empty" => actual.iter().all(String::is_empty),
        "notEmpty" => actual.iter().any(|a| !a.is_empty()),
        "equals" => first.is_some_and(|a| a == expected),
        "in" => first.is_some_and(in_list),
        "greaterThan" => first.is_some_and(|a| order(a, expected) == std::cmp::Ordering::Greater),
        "lessThan" => first.is_some_and(|a| order(a, expected) == std::cmp::Ordering::Less),
        "contains" => first.is_some_and(|a| a.contains(expected)),
        "notEquals" => !actual.is_empty() && actual.iter().all(|a| a != expected),
        "notIn" => !actual.is_empty() && !actual.iter().any(in_list),
        "notContains" => !actual.is_empty() && actual.iter().all(|a| !a.contains(expected)),
        other => return Err(format!("'{other}' is not an operator the engine knows")),
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
fn check_values(
    assert: &Assert,
    value: Option<&str>,
    subject: &Subject<'_>,
    state: &State,
) -> Result<Result<String, Outcome>, String> {
    let operator = assert.operator.as_deref();
    let what = assert
        .expression
        .as_deref()
        .or(assert.path.as_deref())
        .unwrap_or("the compared value");
    // An expression with nothing to compare it with is a test of its truth (`eval`).
    let is_test = operator == Some("eval")
        || (value.is_none() && assert.compare_to_source_id.is_none() && assert.expression.is_some());
    if is_test && !matches!(operator, Some("empty" | "notEmpty")) {
        if !matches!(operator, None | Some("eval" | "equals")) {
            return Err(format!(
                "operator {} needs a value or a compareToSourceId to compare the expression with",
                operator.unwrap_or_default()
            ));
        }
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
        (Some(expression), _) => locate::expression_values(resource(subject)?, &state.substitute(expression)?)?,
        (None, Some(path)) => locate::path_values(resource(subject)?, &state.substitute(path)?)?,
        (None, None) => return Err("the assert has no expression or path to evaluate".to_owned()),
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
            found
                .into_iter()
                .next()
                .ok_or_else(|| format!("nothing to compare with: the source {id} has no such value"))?
        }
        None => needed(value, operator)?.to_owned(),
    };
    compare(what, &actual, &expected, operator)
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
    // The server's validator: the type's structure (JSON Schema) and the rules beside it, not
    // every invariant of the profile; the message says so.
    Ok(match crate::validate::validate(resource) {
        Ok(()) => Ok(format!(
            "structurally valid against {url} (schema and rules; invariants not checked)"
        )),
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
