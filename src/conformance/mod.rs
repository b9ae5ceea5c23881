//! Touchstone-style conformance testing (`fhir-server conformance`): FHIR TestScripts run against
//! any FHIR R4 server, each leaving an R4 TestReport. It is an HTTP client of the server under
//! test and shares nothing with the server's request path; it uses the project's FHIRPath engine,
//! XML reader and writer, and validator.
//!
//! Layout, in the order a run uses them:
//! - `mod.rs`: the scripts under the `PATH` arguments and their report names, the run, exit codes.
//! - [`script`]: a TestScript read leniently (JSON or XML); what the engine ignores is a warning.
//! - [`state`]: fixtures, kept responses and requests, and variables evaluated when used;
//!   [`variables`]: `${…}` substitution and Touchstone's built-ins.
//! - [`operation`]: an operation as an HTTP request; [`client`]: the exchange itself, and tokens
//!   (given, or by SMART Backend Services through the `oauth2` crate).
//! - [`assertion`]: an assert's verdict; [`locate`]: FHIRPath `expression` and XPath/JSON `path`.
//! - [`engine`]: one script run (fixtures, setup, tests, teardown); [`report`]: TestReport,
//!   summary, JUnit XML.

pub mod assertion;
pub mod client;
pub mod engine;
pub mod locate;
pub mod operation;
pub mod report;
pub mod script;
pub mod state;
pub mod variables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything `fhir-server conformance` was asked to do.
pub struct Options {
    pub base: String,
    pub token: Option<String>,
    pub backend_services: Option<client::BackendServices>,
    /// `--var NAME=VALUE`.
    pub vars: HashMap<String, String>,
    pub report_dir: PathBuf,
    pub junit: Option<PathBuf>,
    /// Also POST each TestReport to the server under test.
    pub post_report: bool,
    pub paths: Vec<PathBuf>,
}

/// All scripts passed.
pub const EXIT_PASS: u8 = 0;
/// A test failed or erred, or a script proved nothing (`pending`: every test skipped).
pub const EXIT_FAIL: u8 = 1;
/// Bad usage, or a script that cannot be read (the others still ran).
pub const EXIT_USAGE: u8 = 2;

/// A script found under a `PATH`, and the name of its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub file: PathBuf,
    pub report_name: String,
}

/// The TestScripts under `paths` (files, or directories searched recursively; other resources
/// there, such as fixtures, are passed over), and the files that look like scripts but cannot be
/// read, with the reason.
pub fn discover(paths: &[PathBuf]) -> (Vec<Found>, Vec<(PathBuf, String)>) {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files);
            files.sort();
            for file in files {
                let text = match std::fs::read_to_string(&file) {
                    Ok(text) => text,
                    Err(e) => {
                        unreadable.push((file, e.to_string()));
                        continue;
                    }
                };
                if !looks_like_script(&text) {
                    continue;
                }
                if let Err(e) = script::parse(&text) {
                    unreadable.push((file, e));
                    continue;
                }
                let relative = file.strip_prefix(path).unwrap_or(&file);
                found.push(Found {
                    report_name: report_name(relative),
                    file,
                });
            }
        } else if path.is_file() {
            let name = path.file_name().map(PathBuf::from).unwrap_or_else(|| path.clone());
            found.push(Found {
                report_name: report_name(&name),
                file: path.clone(),
            });
        } else {
            unreadable.push((path.clone(), "no such file or directory".to_owned()));
        }
    }
    // Scripts found under two PATHs may share a relative path: the later report gets a suffix.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in &mut found {
        let count = seen.entry(item.report_name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            let stem = item.report_name.trim_end_matches(".json").to_owned();
            item.report_name = format!("{stem}-{count}.json");
        }
    }
    (found, unreadable)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        // Not through symbolic links: a link back up the tree would never end.
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(&path, files);
        } else if kind.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("xml"))
        {
            files.push(path);
        }
    }
}

/// A TestScript by its root: `"resourceType": "TestScript"` or `<TestScript`.
fn looks_like_script(text: &str) -> bool {
    let head = text.trim_start();
    if head.starts_with('<') {
        return head
            .split('>')
            .find(|tag| !tag.trim_start().starts_with("<?") && !tag.trim_start().starts_with("<!--"))
            .is_some_and(|tag| tag.trim_start().starts_with("<TestScript"));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => json["resourceType"] == "TestScript",
        // Broken JSON that names itself a TestScript is a script that cannot be read.
        Err(_) => text.contains("\"TestScript\""),
    }
}

/// `dir/sub/x.xml` → `dir__sub__x.json`.
pub fn report_name(relative: &Path) -> String {
    let text = relative.to_string_lossy().replace('\\', "/");
    let stem = text
        .strip_suffix(".json")
        .or_else(|| text.strip_suffix(".xml"))
        .or_else(|| text.strip_suffix(".JSON"))
        .or_else(|| text.strip_suffix(".XML"))
        .unwrap_or(&text);
    format!("{}.json", stem.trim_start_matches("./").replace('/', "__"))
}

/// Runs every script and writes the reports; returns the exit code.
pub async fn run(options: &Options) -> u8 {
    let token = match (&options.token, &options.backend_services) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(config)) => match client::backend_services_token(config).await {
            Ok(token) => Some(token),
            Err(e) => {
                eprintln!("conformance: {e}");
                return EXIT_USAGE;
            }
        },
        (None, None) => None,
    };
    let client = match client::Client::new(token, &options.base) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("conformance: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&options.report_dir) {
        eprintln!("conformance: {}: {e}", options.report_dir.display());
        return EXIT_USAGE;
    }
    let (found, unreadable) = discover(&options.paths);
    let mut runs = Vec::new();
    let mut problems = unreadable;
    for item in &found {
        let parsed = std::fs::read_to_string(&item.file)
            .map_err(|e| e.to_string())
            .and_then(|text| script::parse(&text));
        let script = match parsed {
            Ok(script) => script,
            Err(e) => {
                problems.push((item.file.clone(), e));
                continue;
            }
        };
        let dir = item.file.parent().unwrap_or(Path::new("."));
        let run = engine::Run {
            client: &client,
            script: &script,
            dir,
            state: engine::initial_state(&script, &options.base, &options.vars),
        };
        let result = run.execute().await;
        print!(
            "{}",
            report::summary(&item.file.display().to_string(), &script, &result)
        );
        let test_report = report::test_report(&script, &result, &options.base);
        let target = options.report_dir.join(&item.report_name);
        let text = serde_json::to_string_pretty(&test_report).expect("a JSON value serialises");
        if let Err(e) = std::fs::write(&target, text + "\n") {
            problems.push((target, e.to_string()));
        }
        if options.post_report {
            post_report(&client, &options.base, &test_report).await;
        }
        runs.push((item.file.display().to_string(), result));
    }
    for (file, why) in &problems {
        println!("{}\n  UNREADABLE  {why}", file.display());
    }
    let tests: usize = runs.iter().map(|(_, r)| r.tests.len()).sum();
    let count = |outcome: engine::Outcome| {
        runs.iter()
            .flat_map(|(_, r)| &r.tests)
            .filter(|t| t.outcome() == outcome)
            .count()
    };
    let failed_scripts = runs.iter().filter(|(_, r)| r.result() != "pass").count();
    println!(
        "\n{} scripts ({} not passed, {} unreadable), {tests} tests: {} passed, {} failed, {} skipped",
        runs.len(),
        failed_scripts,
        problems.len(),
        count(engine::Outcome::Pass),
        count(engine::Outcome::Fail),
        count(engine::Outcome::Skip),
    );
    if let Some(path) = &options.junit
        && let Err(e) = std::fs::write(path, report::junit(&runs))
    {
        eprintln!("conformance: {}: {e}", path.display());
        return EXIT_USAGE;
    }
    if !problems.is_empty() {
        EXIT_USAGE
    } else if failed_scripts > 0 {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}

async fn post_report(client: &client::Client, base: &str, report: &serde_json::Value) {
    let url = format!("{}/TestReport", base.trim_end_matches('/'));
    let headers = vec![("Content-Type".to_owned(), "application/fhir+json".to_owned())];
    match client.send("POST", &url, headers, Some(report.to_string())).await {
        Ok(e) if (200..300).contains(&e.status) => {}
        Ok(e) => eprintln!("conformance: POST {url} answered {}", e.status),
        Err(e) => eprintln!("conformance: POST {url}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_follow_the_relative_path() {
        assert_eq!(report_name(Path::new("read.json")), "read.json");
        assert_eq!(report_name(Path::new("a/b/read.xml")), "a__b__read.json");
        assert!(looks_like_script(r#"{"resourceType": "TestScript"}"#));
        assert!(!looks_like_script(r#"{"resourceType": "Patient"}"#));
        assert!(looks_like_script(
            "<?xml version=\"1.0\"?>\n<TestScript xmlns=\"http://hl7.org/fhir\">"
        ));
        assert!(looks_like_script(r#"{"resourceType": "TestScript", "#));
    }
}
