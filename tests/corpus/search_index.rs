//! Index rows can be extracted from every official R4 example: every search parameter expression
//! of every type evaluates without error, and the rows are plentiful.

#[test]
fn every_official_example_yields_index_rows() {
    let examples = crate::validation::examples();
    if examples.is_empty() {
        return;
    }
    let mut total = 0usize;
    let mut failures = Vec::new();
    for (name, example) in &examples {
        match fhir_server::search::index_rows(example) {
            Ok(rows) => total += rows.len(),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} examples fail extraction:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{} index rows from {} examples", total, examples.len());
    assert!(
        total > 10 * examples.len(),
        "only {total} rows from {} examples",
        examples.len()
    );
}
