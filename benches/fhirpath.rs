//! FHIRPath cost: an expression is parsed once and evaluated many times.
//! `cargo bench --bench fhirpath` compares evaluating a parsed expression with parsing it anew,
//! and times the index rows of a resource (every search parameter of its type evaluated with the
//! R4 model), the FHIRPath work of every write.

use criterion::{Criterion, criterion_group, criterion_main};
use fhir_server::fhirpath::{Context, Expression};
use serde_json::Value;
use std::hint::black_box;

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fhir-r4/examples-4.0.1")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn fhirpath(c: &mut Criterion) {
    let patient = example("Patient-example.json");
    let observation = example("Observation-example.json");
    let cases = [
        ("Patient.birthDate", &patient),
        ("Patient.name.given", &patient),
        ("Patient.name.where(use = 'official').family", &patient),
        ("Observation.value.ofType(Quantity).value", &observation),
    ];
    for (source, resource) in cases {
        let expression = Expression::parse(source).unwrap();
        let context = Context::new();
        assert!(
            !expression.evaluate(resource, &context).unwrap().is_empty(),
            "{source} finds something"
        );
        c.bench_function(&format!("evaluate {source}"), |b| {
            b.iter(|| {
                expression
                    .evaluate(black_box(resource), &context)
                    .map(|items| items.len())
            })
        });
        c.bench_function(&format!("parse+evaluate {source}"), |b| {
            b.iter(|| {
                let parsed = Expression::parse(black_box(source)).unwrap();
                parsed.evaluate(black_box(resource), &context).map(|items| items.len())
            })
        });
    }
}

fn index_rows(c: &mut Criterion) {
    for name in ["Observation-example.json", "Patient-example.json"] {
        let resource = example(name);
        assert!(!fhir_server::search::extract::index_rows(&resource).unwrap().is_empty());
        c.bench_function(&format!("index rows of {name}"), |b| {
            b.iter(|| fhir_server::search::extract::index_rows(black_box(&resource)).map(|rows| rows.len()))
        });
    }
}

criterion_group!(benches, fhirpath, index_rows);
criterion_main!(benches);
