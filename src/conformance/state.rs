//! What a script run remembers: the fixtures (files read at the start, and responses kept by
//! `responseId`), the requests kept by `requestId`, the last exchange, and the variables, which
//! are evaluated when used (a variable on a response sees the response as it is then).

use super::client::Exchange;
use super::locate;
use super::script::Variable;
use super::variables;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

pub struct State {
    pub base: String,
    /// Static fixtures by id (JSON form), with the file they came from.
    pub fixtures: HashMap<String, Value>,
    /// Responses kept by `responseId` (usable as fixtures).
    pub responses: HashMap<String, Exchange>,
    /// The answers to `autocreate`, by fixture id: what `targetId` of that fixture names.
    pub created: HashMap<String, Exchange>,
    /// Requests kept by `requestId`.
    pub requests: HashMap<String, Exchange>,
    pub last: Option<Exchange>,
    pub variables: Vec<Variable>,
    /// `--var NAME=VALUE`: over any variable of the same name.
    pub given: HashMap<String, String>,
    pub now: DateTime<Utc>,
}

impl State {
    /// The resource a fixture id names: a response kept under it, else a static fixture.
    pub fn source(&self, id: &str) -> Option<&Value> {
        self.responses
            .get(id)
            .and_then(|e| e.response_resource.as_ref())
            .or_else(|| self.fixtures.get(id))
            .or_else(|| self.requests.get(id).and_then(|e| e.request_resource.as_ref()))
    }

    /// Whether `id` names a fixture, response or request at all.
    pub fn knows(&self, id: &str) -> bool {
        self.responses.contains_key(id)
            || self.fixtures.contains_key(id)
            || self.requests.contains_key(id)
            || self.created.contains_key(id)
    }

    /// `text` with every `${…}` replaced.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut depth = 0;
        self.substitute_at(text, &mut depth)
    }

    fn substitute_at(&self, text: &str, depth: &mut usize) -> Result<String, String> {
        *depth += 1;
        if *depth > 16 {
            return Err("variables refer to each other in a loop".to_owned());
        }
        let result = variables::substitute(text, self.now, &mut |name| self.variable(name, depth));
        *depth -= 1;
        result
    }

    /// A fixture body as text with its variables replaced, as JSON.
    pub fn substitute_resource(&self, resource: &Value) -> Result<Value, String> {
        let text = resource.to_string();
        if !text.contains("${") {
            return Ok(resource.clone());
        }
        // Replaced inside JSON strings: a value is escaped as JSON string content.
        let replaced = variables::substitute(&text, self.now, &mut |name| {
            let mut depth = 1;
            Ok(self.variable(name, &mut depth)?.map(|v| {
                let quoted = serde_json::to_string(&v).expect("a string serialises");
                quoted[1..quoted.len() - 1].to_owned()
            }))
        })?;
        serde_json::from_str(&replaced)
            .map_err(|e| format!("the fixture is not JSON once its variables are replaced: {e}"))
    }

    /// A variable's value now: `--var`, else what its expression, path or header finds, else its
    /// default. `None` for a name the script does not declare.
    fn variable(&self, name: &str, depth: &mut usize) -> Result<Option<String>, String> {
        if let Some(value) = self.given.get(name) {
            return Ok(Some(value.clone()));
        }
        let Some(variable) = self.variables.iter().find(|v| v.name == name) else {
            return Ok(None);
        };
        let found = self.evaluate(variable, depth)?;
        match (found, &variable.default_value) {
            (Some(value), _) => Ok(Some(value)),
            (None, Some(default)) => Ok(Some(self.substitute_at(default, depth)?)),
            (None, None) if variable.hint.is_some() => Err(format!(
                "variable '{name}' needs a value (hint: {}); give it with --var {name}=…",
                variable.hint.as_deref().unwrap_or_default()
            )),
            (None, None) => Err(format!("variable '{name}' found no value")),
        }
    }

    fn evaluate(&self, variable: &Variable, depth: &mut usize) -> Result<Option<String>, String> {
        if let Some(field) = &variable.header_field {
            // A kept request's header, or a response's (the last one when no sourceId).
            let value = match &variable.source_id {
                Some(id) => match self.responses.get(id) {
                    Some(response) => response.response_header(field),
                    None => self.requests.get(id).and_then(|request| request.request_header(field)),
                },
                None => self.last.as_ref().and_then(|e| e.response_header(field)),
            };
            return Ok(value.map(str::to_owned));
        }
        let resource = match &variable.source_id {
            Some(id) => self.source(id),
            None => self.last.as_ref().and_then(|e| e.response_resource.as_ref()),
        };
        let Some(resource) = resource else {
            return Ok(None);
        };
        let values = if let Some(expression) = &variable.expression {
            locate::expression_values(resource, &self.substitute_at(expression, depth)?)?
        } else if let Some(path) = &variable.path {
            locate::path_values(resource, &self.substitute_at(path, depth)?)?
        } else {
            return Ok(None);
        };
        Ok(values.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_variable_reads_the_request_or_response_its_source_names() {
        let exchange = Exchange {
            request_headers: vec![("Prefer".into(), "return=minimal".into())],
            response_headers: vec![("ETag".into(), "W/\"2\"".into())],
            ..Exchange::default()
        };
        let variable = |name: &str, field: &str, source: &str| Variable {
            name: name.into(),
            header_field: Some(field.into()),
            source_id: Some(source.into()),
            ..Variable::default()
        };
        let state = State {
            base: "http://x/fhir".into(),
            fixtures: HashMap::new(),
            responses: HashMap::from([("answer".to_owned(), exchange.clone())]),
            created: HashMap::new(),
            requests: HashMap::from([("asked".to_owned(), exchange)]),
            last: None,
            variables: vec![
                variable("prefer", "prefer", "asked"),
                variable("etag", "ETag", "answer"),
            ],
            given: HashMap::from([("given".to_owned(), "yes".to_owned())]),
            now: Utc::now(),
        };
        assert_eq!(
            state.substitute("${prefer} ${etag} ${given}").unwrap(),
            "return=minimal W/\"2\" yes"
        );
    }
}
