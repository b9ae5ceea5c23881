//! The known-failures lists of the conformance suites (`tests/*-known-failures.txt`): one case
//! per line, its name, a tab, the reason; `#` starts a comment line.

use std::collections::HashMap;
use std::path::Path;

/// The cases listed in `tests/<file>`, with their reasons (empty when the file is missing).
pub fn read(file: &str) -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(file);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once('\t').unwrap_or((l, ""));
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}
