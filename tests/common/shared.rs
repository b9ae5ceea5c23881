//! The material no one here wrote, in `../shared` beside the checkout: HL7's FHIR R4 package and
//! examples, test cases, Synthea-style Bundles. A test that needs it and finds it absent is
//! skipped with a notice on a developer's machine, and fails under CI (`CI=true`), which always
//! has it: a suite that passes by skipping proves nothing.

use std::path::PathBuf;

/// `../shared/<relative>`, or `None` (after a notice) when it is absent outside CI.
pub fn shared(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(relative);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is required under CI=true but absent", path.display());
    }
    eprintln!("NOTICE: {} is absent; this test is skipped", path.display());
    None
}
