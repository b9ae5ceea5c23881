//! One script run, in TestScript's order: fixtures read (and `autocreate`d), setup, each test,
//! teardown (always), then `autodelete`. A failed setup skips the tests; an operation that gets
//! no response, or a failed assert with `stopTestOnFail`, ends its test; teardown runs whatever
//! happened before it.

use super::assertion::{self, Verdict};
use super::client::{Client, Exchange, parse_resource};
use super::operation;
use super::script::{Action, Operation, Script};
use super::state::State;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// One action's result as TestReport codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip,
    Fail,
    Warning,
    Error,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Skip => "skip",
            Outcome::Fail => "fail",
            Outcome::Warning => "warning",
            Outcome::Error => "error",
        }
    }

    fn failed(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Error)
    }
}

#[derive(Debug, Clone)]
pub struct ActionResult {
    pub is_assert: bool,
    pub label: String,
    pub outcome: Outcome,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<ActionResult>,
}

impl TestResult {
    /// Failed when any action failed or erred; skipped when nothing was judged (every action
    /// skipped, or asserts of which none passed: a skipped check is no evidence); else passed.
    pub fn outcome(&self) -> Outcome {
        let asserts: Vec<Outcome> = self.actions.iter().filter(|a| a.is_assert).map(|a| a.outcome).collect();
        if self.actions.iter().any(|a| a.outcome.failed()) {
            Outcome::Fail
        } else if self.actions.iter().all(|a| a.outcome == Outcome::Skip)
            || (!asserts.is_empty() && !asserts.iter().any(|o| matches!(o, Outcome::Pass | Outcome::Warning)))
        {
            Outcome::Skip
        } else {
            Outcome::Pass
        }
    }
}

/// What a script's run produced, for its TestReport and the summary.
#[derive(Debug, Clone)]
pub struct ScriptResult {
    pub setup: Vec<ActionResult>,
    pub tests: Vec<TestResult>,
    pub teardown: Vec<ActionResult>,
}

impl ScriptResult {
    pub fn failed(&self) -> bool {
        self.setup.iter().chain(&self.teardown).any(|a| a.outcome.failed())
            || self.tests.iter().any(|t| t.outcome() == Outcome::Fail)
    }

    /// The TestReport's `result`: `fail`, `pass` when some test passed and none failed, and
    /// `pending` when nothing was shown either way (every test skipped, or none at all).
    pub fn result(&self) -> &'static str {
        if self.failed() {
            "fail"
        } else if self.tests.iter().any(|t| t.outcome() == Outcome::Pass)
            || (self.tests.is_empty() && self.setup.iter().any(|a| a.outcome == Outcome::Pass))
        {
            "pass"
        } else {
            "pending"
        }
    }
}

pub struct Run<'a> {
    pub client: &'a Client,
    pub script: &'a Script,
    pub dir: &'a Path,
    pub state: State,
}

impl Run<'_> {
    pub async fn execute(mut self) -> ScriptResult {
        let mut setup = Vec::new();
        let mut created = Vec::new();
        let mut setup_ok = self.load_fixtures(&mut setup).await;
        if setup_ok {
            setup_ok = self.autocreate(&mut setup, &mut created).await;
        }
        // `autodelete` without `autocreate`: the fixture's resource, by its type and id, once the
        // script is done (whatever created it).
        for fixture in self.script.fixtures.iter().filter(|f| f.autodelete && !f.autocreate) {
            let resource = self.state.fixtures.get(&fixture.id);
            if let Some((t, id)) = resource.and_then(|r| Some((r["resourceType"].as_str()?, r["id"].as_str()?))) {
                let url = format!("{}/{t}/{id}", self.state.base.trim_end_matches('/'));
                created.push((format!("autodelete {}", fixture.id), url));
            }
        }
        if setup_ok {
            setup_ok = self.run_actions(&self.script.setup, &mut setup, true).await;
        }
        let mut tests = Vec::new();
        for test in &self.script.tests {
            let mut actions = Vec::new();
            if setup_ok {
                self.run_actions(&test.actions, &mut actions, false).await;
            } else {
                skip_all(&test.actions, "setup failed", &mut actions);
            }
            tests.push(TestResult {
                name: test.name.clone(),
                description: test.description.clone(),
                actions,
            });
        }
        let mut teardown = Vec::new();
        for action in &self.script.teardown {
            if let Action::Operation(op) = action {
                let result = self.operate(op).await;
                teardown.push(result);
            }
        }
        for (label, url) in created {
            let result = match self.client.send("DELETE", &url, Vec::new(), None).await {
                Ok(e) => done(false, &label, Outcome::Pass, format!("DELETE {url} → {}", e.status)),
                Err(e) => done(false, &label, Outcome::Error, format!("DELETE {url}: {e}")),
            };
            teardown.push(result);
        }
        ScriptResult { setup, tests, teardown }
    }

    /// Reads every fixture: a file beside the script (JSON or XML), or `Type/id` from the server.
    async fn load_fixtures(&mut self, results: &mut Vec<ActionResult>) -> bool {
        let mut ok = true;
        for fixture in &self.script.fixtures {
            let Some(reference) = &fixture.reference else { continue };
            match self.load_fixture(reference).await {
                Ok(resource) => {
                    self.state.fixtures.insert(fixture.id.clone(), resource);
                }
                Err(message) => {
                    ok = false;
                    results.push(done(false, &format!("fixture {}", fixture.id), Outcome::Error, message));
                }
            }
        }
        ok
    }

    async fn load_fixture(&self, reference: &str) -> Result<Value, String> {
        for candidate in fixture_files(reference) {
            let path = self.dir.join(&candidate);
            if let Ok(text) = std::fs::read_to_string(&path) {
                // JSON of any shape (a JSON Patch document is an array), or a resource in XML.
                let parsed = if text.trim_start().starts_with('<') {
                    parse_resource(&text, Some("application/fhir+xml"))
                } else {
                    serde_json::from_str(&text).ok()
                };
                return parsed.ok_or_else(|| format!("{}: not JSON, nor a FHIR resource in XML", path.display()));
            }
        }
        if reference.split('/').count() == 2 && !reference.contains('.') {
            let url = format!("{}/{}", self.state.base.trim_end_matches('/'), reference);
            let exchange = self
                .client
                .send(
                    "GET",
                    &url,
                    vec![("Accept".into(), "application/fhir+json".into())],
                    None,
                )
                .await?;
            if exchange.status == 200
                && let Some(resource) = exchange.response_resource
            {
                return Ok(resource);
            }
            return Err(format!(
                "fixture {reference}: no file beside the script, and GET {url} answered {}",
                exchange.status
            ));
        }
        Err(format!("fixture {reference}: no such file beside the script"))
    }

    /// Creates the `autocreate` fixtures (PUT when they have an id), remembering what to delete.
    async fn autocreate(&mut self, results: &mut Vec<ActionResult>, created: &mut Vec<(String, String)>) -> bool {
        let mut ok = true;
        for fixture in &self.script.fixtures {
            let Some(resource) = self.state.fixtures.get(&fixture.id) else {
                continue;
            };
            if !fixture.autocreate {
                continue;
            }
            let label = format!("autocreate {}", fixture.id);
            let operation = Operation {
                kind: Some(
                    if resource.get("id").is_some() {
                        "update"
                    } else {
                        "create"
                    }
                    .to_owned(),
                ),
                source_id: Some(fixture.id.clone()),
                encode_request_url: true,
                label: Some(label.clone()),
                headers: vec![("Prefer".to_owned(), "return=representation".to_owned())],
                ..Operation::default()
            };
            let result = self.operate(&operation).await;
            let stored = self.state.last.as_ref().filter(|e| (200..300).contains(&e.status));
            // What the server made of the fixture names it for `targetId`; the fixture itself
            // stays what the file says, for asserts to compare with.
            if let Some(exchange) = stored {
                self.state.created.insert(fixture.id.clone(), exchange.clone());
            }
            match stored {
                Some(exchange) => {
                    if fixture.autodelete
                        && let Some(url) = stored_url(exchange, &self.state.base)
                    {
                        created.push((format!("autodelete {}", fixture.id), url));
                    }
                    results.push(result);
                }
                None => {
                    ok = false;
                    let status = self.state.last.as_ref().map(|e| e.status.to_string());
                    results.push(done(
                        false,
                        &label,
                        Outcome::Error,
                        format!("the fixture was not created: {}", status.unwrap_or(result.message)),
                    ));
                }
            }
        }
        ok
    }

    /// Runs `actions` in order; `false` when the run should not go on (in setup: any failure).
    async fn run_actions(&mut self, actions: &[Action], results: &mut Vec<ActionResult>, is_setup: bool) -> bool {
        for (n, action) in actions.iter().enumerate() {
            let (result, stop) = match action {
                Action::Operation(op) => {
                    let result = self.operate(op).await;
                    let stop = result.outcome == Outcome::Error;
                    (result, stop)
                }
                Action::Assert(assert) => {
                    let label = assert
                        .label
                        .clone()
                        .or_else(|| assert.description.clone())
                        .unwrap_or_else(|| format!("assert {}", n + 1));
                    let (outcome, message) = match assertion::evaluate(assert, &self.state, &self.script.profiles) {
                        Verdict::Pass(m) => (Outcome::Pass, m),
                        Verdict::Fail(m) if assert.warning_only => (Outcome::Warning, m),
                        Verdict::Fail(m) => (Outcome::Fail, m),
                        Verdict::Skip(m) => (Outcome::Skip, m),
                        Verdict::Error(m) => (Outcome::Error, m),
                    };
                    let stop = outcome.failed() && (assert.stop_test_on_fail || is_setup);
                    (done(true, &label, outcome, message), stop)
                }
            };
            results.push(result);
            if stop {
                skip_all(&actions[n + 1..], "an earlier action of this test failed", results);
                return false;
            }
        }
        true
    }

    async fn operate(&mut self, op: &Operation) -> ActionResult {
        let label = op
            .label
            .clone()
            .or_else(|| op.kind.clone())
            .unwrap_or_else(|| "operation".to_owned());
        // A failure to build or send leaves no exchange behind: asserts must not judge the one
        // before it.
        self.state.last = None;
        let request = match operation::build(op, &self.state) {
            Ok(request) => request,
            Err(message) => return done(false, &label, Outcome::Error, message),
        };
        let mut summary = format!("{} {}", request.method, request.url);
        if op.origin.is_some() || op.destination.is_some() {
            summary.push_str(&format!(
                " (origin {}, destination {}: both the one server under test)",
                op.origin.as_deref().unwrap_or("-"),
                op.destination.as_deref().unwrap_or("-")
            ));
        }
        match self
            .client
            .send(&request.method, &request.url, request.headers, request.body)
            .await
        {
            Ok(exchange) => {
                let message = format!("{summary} → {}", exchange.status);
                self.keep(op, exchange);
                done(false, &label, Outcome::Pass, message)
            }
            Err(message) => {
                self.state.last = None;
                done(false, &label, Outcome::Error, format!("{summary}: {message}"))
            }
        }
    }

    fn keep(&mut self, op: &Operation, exchange: Exchange) {
        if let Some(id) = &op.response_id {
            self.state.responses.insert(id.clone(), exchange.clone());
        }
        if let Some(id) = &op.request_id {
            self.state.requests.insert(id.clone(), exchange.clone());
        }
        self.state.last = Some(exchange);
    }
}

fn done(is_assert: bool, label: &str, outcome: Outcome, message: String) -> ActionResult {
    ActionResult {
        is_assert,
        label: label.to_owned(),
        outcome,
        message,
    }
}

fn skip_all(actions: &[Action], why: &str, results: &mut Vec<ActionResult>) {
    for action in actions {
        let (is_assert, label) = match action {
            Action::Operation(op) => (false, op.label.clone().or_else(|| op.kind.clone())),
            Action::Assert(a) => (true, a.label.clone().or_else(|| a.description.clone())),
        };
        results.push(done(
            is_assert,
            label.as_deref().unwrap_or("action"),
            Outcome::Skip,
            format!("not run: {why}"),
        ));
    }
}

/// The files a fixture reference may name: the path itself, and for `Type/id` the usual
/// layouts of example packages (`Type-id.json`, `fixtures/Type/id.json`, …).
fn fixture_files(reference: &str) -> Vec<String> {
    let mut files = vec![reference.to_owned()];
    if let Some((t, id)) = reference.split_once('/')
        && !reference.contains('.')
        && !id.contains('/')
    {
        for ext in ["json", "xml"] {
            files.push(format!("fixtures/{t}-{id}.{ext}"));
            files.push(format!("{t}-{id}.{ext}"));
            files.push(format!("fixtures/{t}/{id}.{ext}"));
            files.push(format!("{}-{id}.{ext}", t.to_ascii_lowercase()));
        }
    }
    files
}

/// The URL of what a write stored (its Location, else its type and id), to delete afterwards.
fn stored_url(exchange: &Exchange, base: &str) -> Option<String> {
    let (t, id) = match &exchange.response_resource {
        Some(resource) if resource["id"].is_string() && resource["resourceType"] != "OperationOutcome" => (
            resource["resourceType"].as_str()?.to_owned(),
            resource["id"].as_str()?.to_owned(),
        ),
        _ => {
            let (t, id, _) = operation::location_parts(exchange.response_header("location")?)?;
            (t, id)
        }
    };
    Some(format!("{}/{t}/{id}", base.trim_end_matches('/')))
}

/// The script's variables and fixtures (none yet), ready to run.
pub fn initial_state(script: &Script, base: &str, given: &HashMap<String, String>) -> State {
    State {
        base: base.to_owned(),
        fixtures: HashMap::new(),
        responses: HashMap::new(),
        created: HashMap::new(),
        requests: HashMap::new(),
        last: None,
        variables: script.variables.clone(),
        given: given.clone(),
        now: chrono::Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(is_assert: bool, outcome: Outcome) -> ActionResult {
        done(is_assert, "a", outcome, String::new())
    }

    fn test(actions: Vec<ActionResult>) -> TestResult {
        TestResult {
            name: "t".into(),
            description: None,
            actions,
        }
    }

    #[test]
    fn a_skipped_check_is_no_evidence() {
        let operation = || action(false, Outcome::Pass);
        assert_eq!(
            test(vec![operation(), action(true, Outcome::Pass)]).outcome(),
            Outcome::Pass
        );
        assert_eq!(
            test(vec![operation(), action(true, Outcome::Skip)]).outcome(),
            Outcome::Skip
        );
        assert_eq!(
            test(vec![operation(), action(true, Outcome::Warning)]).outcome(),
            Outcome::Pass
        );
        assert_eq!(
            test(vec![
                operation(),
                action(true, Outcome::Skip),
                action(true, Outcome::Fail)
            ])
            .outcome(),
            Outcome::Fail
        );
        assert_eq!(
            test(vec![operation()]).outcome(),
            Outcome::Pass,
            "an operation alone passes"
        );
        let script = |tests: Vec<TestResult>| ScriptResult {
            setup: Vec::new(),
            tests,
            teardown: Vec::new(),
        };
        assert_eq!(
            script(vec![test(vec![operation(), action(true, Outcome::Skip)])]).result(),
            "pending"
        );
        assert_eq!(
            script(vec![test(vec![operation(), action(true, Outcome::Pass)])]).result(),
            "pass"
        );
        assert_eq!(script(Vec::new()).result(), "pending");
    }
}
