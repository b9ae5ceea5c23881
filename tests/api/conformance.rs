//! The TestScript engine (`fhir-server conformance`) against a real server: the project's suite in
//! `conformance-tests/` passes whole, with and without authorization (tokens by SMART Backend
//! Services); scripts written to fail are reported failing exactly where written; every public
//! script in `../shared/testscripts` gets a TestReport; and scripts and reports can be stored on
//! the server.

use crate::harness::TestApp;
use fhir_server::config::ServeConfig;
use fhir_server::conformance::{self, Options, client::BackendServices};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

crate::on_both_backends!(
    the_suite_passes_without_authorization,
    verdicts_fail_exactly_where_the_script_says,
    a_script_that_cannot_be_read_is_bad_usage_and_the_others_run,
    every_public_script_gets_a_valid_report,
    scripts_are_stored_and_read_back_unchanged,
);

crate::on_both_backends!(with super::with_suite_clients;
    the_whole_suite_passes_with_a_backend_services_token,
    the_command_line_keeps_its_contract,
);

fn repository(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A fresh directory for one run's reports.
fn report_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "conformance-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(app: &TestApp, paths: Vec<PathBuf>) -> Options {
    Options {
        base: app.base.clone(),
        token: None,
        backend_services: None,
        vars: HashMap::new(),
        report_dir: report_dir(),
        junit: None,
        post_report: false,
        paths,
    }
}

/// The reports of a run, by file name.
fn reports(dir: &Path) -> HashMap<String, Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let report = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (path.file_name().unwrap().to_string_lossy().into_owned(), report)
        })
        .collect()
}

/// Every folder of the suite but `authorization/`, which needs a server with authorization on.
fn suite_without_authorization() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repository("conformance-tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("authorization") && !p.ends_with("fixtures"))
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

async fn the_suite_passes_without_authorization(app: TestApp) {
    let mut run = options(&app, vec![repository("conformance-tests")]);
    run.paths = suite_without_authorization();
    run.junit = Some(report_dir().with_extension("xml"));
    let junit_file = run.junit.clone().unwrap();
    assert_eq!(conformance::run(&run).await, conformance::EXIT_PASS);
    let found = reports(&run.report_dir);
    assert!(found.len() >= 9, "a report per script: {:?}", found.keys());
    for (name, report) in &found {
        assert_eq!(report["result"], "pass", "{name}: {report:#}");
        assert_eq!(report["score"], 100.0, "{name}");
        fhir_server::validate::validate(report).unwrap_or_else(|e| panic!("{name} is not valid R4: {e:?}"));
    }
    // Reports are named by the script's path under its PATH (`crud/conditional.json`, under
    // `conformance-tests/crud`, is `conditional.json`; scripts in subfolders get `a__b.json`).
    assert!(found.contains_key("conditional.json"), "{:?}", found.keys());
    let junit = std::fs::read_to_string(junit_file).unwrap();
    assert!(junit.contains("<testsuites>") && !junit.contains("<failure"), "{junit}");
    // The suite can run again on the same server: it cleans up after itself.
    let mut again = options(&app, suite_without_authorization());
    again.report_dir = report_dir();
    assert_eq!(conformance::run(&again).await, conformance::EXIT_PASS);
}

/// Registers `suite` (may do everything) and `reader` (Patients only) with the built-in
/// authorization server.
fn with_suite_clients(config: &mut ServeConfig) {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "suite-clients-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::auth::fixture("client-jwks.json")).unwrap()).unwrap();
    let clients = json!([
        {"client_id": "suite", "jwks": jwks, "scope": "system/*.cruds"},
        {"client_id": "reader", "jwks": jwks, "scope": "system/Patient.rs"},
    ]);
    std::fs::write(dir.join("clients.json"), clients.to_string()).unwrap();
    config.auth_clients_file = Some(dir.join("clients.json"));
    config.auth_signing_key = Some(dir.join("signing-key.pem"));
}

fn client(app: &TestApp, id: &str, scope: &str) -> BackendServices {
    BackendServices {
        token_url: app.url("auth/token"),
        client_id: id.to_owned(),
        key_pem: std::fs::read_to_string(crate::auth::fixture("client-ec384.pem")).unwrap(),
        kid: Some("client-ec".to_owned()),
        scope: scope.to_owned(),
    }
}

async fn the_whole_suite_passes_with_a_backend_services_token(app: TestApp) {
    // Without a token, the server refuses the suite.
    let unauthorised = options(&app, suite_without_authorization());
    assert_eq!(conformance::run(&unauthorised).await, conformance::EXIT_FAIL);
    let reader = conformance::client::backend_services_token(&client(&app, "reader", "system/Patient.rs"))
        .await
        .unwrap();
    let mut run = options(&app, vec![repository("conformance-tests")]);
    run.backend_services = Some(client(&app, "suite", "system/*.cruds"));
    run.vars.insert("readerToken".to_owned(), reader);
    assert_eq!(conformance::run(&run).await, conformance::EXIT_PASS);
    let found = reports(&run.report_dir);
    assert_eq!(found["authorization__scopes.json"]["result"], "pass");
    assert_eq!(found["crud__conditional.json"]["result"], "pass");
    // A client the server does not know gets no token: bad usage, nothing runs.
    let mut stranger = options(&app, vec![repository("conformance-tests")]);
    stranger.backend_services = Some(client(&app, "stranger", "system/*.rs"));
    assert_eq!(conformance::run(&stranger).await, conformance::EXIT_USAGE);
}

/// The result of action `n` of the test named `test` (its operation's or assert's).
fn action(report: &Value, test: &str, n: usize) -> (String, String) {
    let test = report["test"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == test)
        .unwrap_or_else(|| panic!("no test {test}"));
    let action = &test["action"][n];
    let result = action.get("assert").or_else(|| action.get("operation")).unwrap();
    (
        result["result"].as_str().unwrap().to_owned(),
        result["message"].as_str().unwrap().to_owned(),
    )
}

async fn verdicts_fail_exactly_where_the_script_says(app: TestApp) {
    let run = options(&app, vec![repository("tests/fixtures/conformance/verdicts.json")]);
    assert_eq!(conformance::run(&run).await, conformance::EXIT_FAIL);
    let report = &reports(&run.report_dir)["verdicts.json"];
    assert_eq!(report["result"], "fail");
    let (result, message) = action(report, "wrong-status", 1);
    assert_eq!(result, "fail");
    assert!(message.contains("'404'") && message.contains("got '200'"), "{message}");
    assert_eq!(
        action(report, "wrong-status", 2).0,
        "pass",
        "a failed assert does not stop the test"
    );
    let (result, message) = action(report, "wrong-header", 1);
    assert_eq!(result, "fail");
    assert!(
        message.contains("text/plain") && message.contains("application/fhir+json"),
        "{message}"
    );
    assert_eq!(action(report, "false-expression", 1).0, "fail");
    assert_eq!(action(report, "false-expression", 2).0, "pass");
    let (result, message) = action(report, "missing-resource", 1);
    assert_eq!(result, "fail");
    assert!(message.contains("OperationOutcome"), "{message}");
    assert_eq!(action(report, "stop-on-fail", 1).0, "fail");
    assert_eq!(
        action(report, "stop-on-fail", 2).0,
        "skip",
        "stopTestOnFail skips the rest"
    );
    assert_eq!(action(report, "warning-only", 1).0, "warning");
    for n in 0..5 {
        assert_eq!(action(report, "variables-flow", n).0, "pass", "{report:#}");
    }
    assert_eq!(report["score"], 28.57, "2 of 7 tests pass");
    // Teardown ran after the failures: both Patients are deleted.
    let teardown = report["teardown"]["action"].as_array().unwrap();
    assert_eq!(teardown.len(), 2);
    assert!(
        teardown.iter().all(|a| a["operation"]["result"] == "pass"),
        "{teardown:?}"
    );
    app.get("Patient/verdict-1").await.assert_outcome(410, "deleted");
    assert_eq!(app.get("Patient?name=Verdict").await.json()["total"], 0);
}

async fn a_script_that_cannot_be_read_is_bad_usage_and_the_others_run(app: TestApp) {
    let dir = report_dir().with_extension("scripts");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("broken.json"), r#"{"resourceType": "TestScript", "name": "#).unwrap();
    std::fs::copy(
        repository("conformance-tests/capabilities.json"),
        dir.join("sub/capabilities.json"),
    )
    .unwrap();
    std::fs::write(dir.join("sub/not-a-script.json"), r#"{"resourceType": "Patient"}"#).unwrap();
    let run = options(&app, vec![dir.clone()]);
    assert_eq!(conformance::run(&run).await, conformance::EXIT_USAGE);
    let written = reports(&run.report_dir);
    assert_eq!(written.keys().collect::<Vec<_>>(), ["sub__capabilities.json"]);
    assert_eq!(written["sub__capabilities.json"]["result"], "pass");
}

async fn every_public_script_gets_a_valid_report(app: TestApp) {
    let Some(public) = crate::shared::shared("testscripts") else {
        return;
    };
    let mut run = options(&app, vec![public.clone()]);
    run.post_report = true;
    // Scripts that need data they do not create (the mCODE profiles) fail: reported, not hidden.
    assert_eq!(conformance::run(&run).await, conformance::EXIT_FAIL);
    let (found, unreadable) = conformance::discover(&[public]);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let written = reports(&run.report_dir);
    assert_eq!(written.len(), found.len());
    assert!(found.len() >= 39, "{} scripts", found.len());
    for item in &found {
        let report = &written[&item.report_name];
        fhir_server::validate::validate(report).unwrap_or_else(|e| panic!("{}: not valid R4: {e:?}", item.report_name));
        assert!(["pass", "fail", "pending"].contains(&report["result"].as_str().unwrap()));
    }
    assert!(written.contains_key("fhir-crucible__read_testscript.json"));
    assert_eq!(
        written["fhir-crucible__multipleMCODE__UsMCODECancerPatientReadProfile.json"]["result"], "pass",
        "its read of a missing Patient is expected to be 404"
    );
    // --post-report stored each report on the server.
    let stored = app.get("TestReport?_summary=count").await.json();
    assert_eq!(stored["total"], found.len());
}

/// Every TestScript of the public set and of the suite, as JSON and as XML, can be stored and
/// reads back unchanged, though their fixtures are referenced by file path.
async fn scripts_are_stored_and_read_back_unchanged(app: TestApp) {
    let mut paths = vec![repository("conformance-tests")];
    paths.extend(crate::shared::shared("testscripts"));
    let (found, _) = conformance::discover(&paths);
    assert!(found.len() >= 10);
    for (n, item) in found.iter().enumerate() {
        let text = std::fs::read_to_string(&item.file).unwrap();
        let mut script: Value = if text.trim_start().starts_with('<') {
            fhir_server::xml::from_xml(&text).unwrap()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        let id = format!("stored-{n}");
        script["id"] = json!(id);
        let stored = app.put(&format!("TestScript/{id}"), &script).await;
        assert!(
            matches!(stored.status, 200 | 201),
            "{}: {}",
            item.file.display(),
            stored.text
        );
        let mut read = app.get(&format!("TestScript/{id}")).await.json();
        read.as_object_mut().unwrap().remove("meta");
        assert_eq!(read, script, "{}", item.file.display());
        let xml = fhir_server::xml::to_xml(&script).unwrap();
        let xml_id = format!("stored-xml-{n}");
        let xml = xml.replacen(
            &format!("<id value=\"{id}\"/>"),
            &format!("<id value=\"{xml_id}\"/>"),
            1,
        );
        let stored = app
            .send(
                app.client
                    .put(app.url(&format!("TestScript/{xml_id}")))
                    .header("content-type", "application/fhir+xml")
                    .body(xml),
            )
            .await;
        assert!(
            matches!(stored.status, 200 | 201),
            "{} as XML: {}",
            item.file.display(),
            stored.text
        );
        let mut read = app.get(&format!("TestScript/{xml_id}")).await.json();
        read.as_object_mut().unwrap().remove("meta");
        script["id"] = json!(xml_id);
        assert_eq!(read, script, "{} as XML", item.file.display());
    }
}

/// `fhir-server conformance` as outside tools call it: its flags and exit codes.
async fn the_command_line_keeps_its_contract(app: TestApp) {
    let token = conformance::client::backend_services_token(&client(&app, "suite", "system/*.cruds"))
        .await
        .unwrap();
    let base = app.base.clone();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_fhir-server"))
                .arg("conformance")
                .args(args)
                .output()
                .unwrap()
        })
    };
    let path = |p: &str| repository(p).display().to_string();
    let reports = report_dir();
    let junit = report_dir().with_extension("xml");
    let mut args = vec![
        "--base".to_owned(),
        base.clone(),
        "--token".to_owned(),
        token.clone(),
        "--var".to_owned(),
        "unused=1".to_owned(),
        "--report-dir".to_owned(),
        reports.display().to_string(),
        "--junit".to_owned(),
        junit.display().to_string(),
    ];
    args.push(path("conformance-tests/crud/create-read-vread.json"));
    let passed = run(args).await.unwrap();
    let stdout = String::from_utf8_lossy(&passed.stdout).into_owned();
    assert_eq!(passed.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS  read") && !stdout.contains(&token), "{stdout}");
    assert!(reports.join("create-read-vread.json").exists());
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuite"));
    let by_client = vec![
        "--base".to_owned(),
        base.clone(),
        "--client-id".to_owned(),
        "suite".to_owned(),
        "--client-key".to_owned(),
        crate::auth::fixture("client-ec384.pem").display().to_string(),
        "--client-kid".to_owned(),
        "client-ec".to_owned(),
        "--token-url".to_owned(),
        app.url("auth/token"),
        "--scope".to_owned(),
        "system/*.cruds".to_owned(),
        "--report-dir".to_owned(),
        report_dir().display().to_string(),
        path("tests/fixtures/conformance/verdicts.json"),
    ];
    let failed = run(by_client).await.unwrap();
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    let bad_var = vec![
        "--base".to_owned(),
        base.clone(),
        "--var".to_owned(),
        "no-equals".to_owned(),
        path("conformance-tests"),
    ];
    assert_eq!(run(bad_var).await.unwrap().status.code(), Some(2));
    let missing = vec![
        "--base".to_owned(),
        base,
        "--report-dir".to_owned(),
        report_dir().display().to_string(),
        "/no/such/script.json".to_owned(),
    ];
    assert_eq!(run(missing).await.unwrap().status.code(), Some(2));
}
