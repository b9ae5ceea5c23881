//! Tests against material no one here wrote: the official R4 package and examples in ../shared.
//! Each test skips with a printed notice where ../shared is absent.

mod definitions;
mod search_index;
mod validation;
mod xml_round_trip;

use std::path::PathBuf;

/// `../shared/<relative>`, or `None` (after a notice) when it is not there.
pub fn shared(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("NOTICE: {} is absent; this test is skipped", path.display());
        None
    }
}
