//! Validation cost per resource: `cargo bench --bench validation`.
//! Validators are compiled on first use, so each benchmark warms its type up first.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fhir-r4/examples-4.0.1")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn validation(c: &mut Criterion) {
    for name in [
        "Patient-example.json",
        "Observation-example.json",
        "Observation-bp.json",
    ] {
        let resource = example(name);
        fhir_server::validate::validate(&resource).expect("the example is valid");
        c.bench_function(&format!("validate {name}"), |b| {
            b.iter(|| fhir_server::validate::validate(black_box(&resource)))
        });
    }
}

criterion_group!(benches, validation);
criterion_main!(benches);
