//! The committed generated definitions are exactly what the generator makes from the official
//! R4 package.

#[test]
fn committed_definitions_match_a_fresh_generation() {
    let Some(package) = crate::shared("fhir-r4/hl7.fhir.r4.core-4.0.1") else {
        return;
    };
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = fhir_server::definitions::generate(&package).expect("the generator reads the package");
    assert!(!files.is_empty());
    for file in files {
        let committed = std::fs::read_to_string(root.join(file.path)).unwrap_or_default();
        assert!(
            committed == file.content,
            "{} differs from a fresh generation: run `cargo run -- definitions generate --package {} --out .`",
            file.path,
            package.display()
        );
    }
}
