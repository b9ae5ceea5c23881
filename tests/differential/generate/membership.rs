//! Membership: `:in` / `:not-in` against the generated ValueSets (by canonical URL, with its
//! version, and as `ValueSet/id`, relative and absolute), `_list` against the generated and the
//! example Lists, and more `:identifier` on references.

use super::fixtures::{Fixtures, PREFIX};
use super::targets::IDENTIFIED_REFERENCES;
use super::{Generator, Query, escape};
use crate::values::Val;

/// Lists of the examples: of Conditions, of AllergyIntolerances, of many Patients (most absent
/// here), of contained resources only, and empty.
const EXAMPLE_LISTS: &[(&str, &str)] = &[
    ("Condition", "example"),
    ("AllergyIntolerance", "current-allergies"),
    ("Patient", "long"),
    ("Condition", "genetic"),
    ("Condition", "f201"),
    ("Patient", "example-empty"),
];

impl Generator<'_, '_> {
    pub(super) fn value_set_searches(&mut self, fixtures: &Fixtures) {
        let base = self.evaluator.base.clone();
        for (n, fixture) in fixtures.value_sets.iter().enumerate() {
            for (k, (t, code)) in fixture.params.iter().enumerate() {
                let reference = match (n + k) % 3 {
                    0 => fixture.url.clone(),
                    1 => format!("ValueSet/{}", fixture.id),
                    _ => format!("{base}/ValueSet/{}", fixture.id),
                };
                self.push(Query::new(t, "token:in").with(format!("{code}:in"), escape(&reference)));
                // `url|version` as clients write it: a `|` needs no escape in a uri.
                let reference = match &fixture.version {
                    Some(version) => format!("{}|{version}", escape(&fixture.url)),
                    None if k % 2 == 0 => format!("ValueSet/{}", fixture.id),
                    None => escape(&fixture.url),
                };
                self.push(Query::new(t, "token:not-in").with(format!("{code}:not-in"), reference));
            }
        }
        // Two value sets OR-ed, and `:in` with another parameter.
        for _ in 0..4 {
            let first = self.rng.pick(&fixtures.value_sets);
            let second = self.rng.pick(&fixtures.value_sets);
            let (t, code) = self.rng.pick(&first.params).clone();
            let value = format!("{},ValueSet/{}", escape(&first.url), second.id);
            self.push(Query::new(&t, "token:in OR").with(format!("{code}:in"), value));
        }
        // In one value set and not in another.
        for _ in 0..3 {
            let first = self.rng.pick(&fixtures.value_sets);
            let second = self.rng.pick(&fixtures.value_sets);
            let (t, code) = self.rng.pick(&first.params).clone();
            self.push(
                Query::new(&t, "token:in AND")
                    .with(format!("{code}:in"), escape(&first.url))
                    .with(format!("{code}:not-in"), format!("ValueSet/{}", second.id)),
            );
        }
    }

    pub(super) fn list_searches(&mut self) {
        let lists = |name: &str| format!("{PREFIX}{name}");
        let queries = [
            ("Patient", lists("patients")),
            ("Observation", lists("patients")),
            ("Observation", lists("mixed")),
            ("Condition", lists("mixed")),
            ("Encounter", lists("mixed")),
            ("Patient", lists("mixed")),
            ("Patient", lists("gone")),
            ("Patient", format!("{},{}", lists("patients"), lists("mixed"))),
            ("Condition", format!("example,{}", lists("mixed"))),
            ("Patient", "no-such-list".to_owned()),
        ];
        for (t, value) in queries {
            self.push(Query::new(t, "_list").with("_list", value));
        }
        for (t, id) in EXAMPLE_LISTS {
            self.push(Query::new(t, "_list").with("_list", *id));
        }
        if let Some(Val::Token { code: Some(gender), .. }) = self.some_value("Patient", "gender") {
            self.push(
                Query::new("Patient", "_list AND")
                    .with("_list", lists("patients"))
                    .with("gender", gender),
            );
        }
    }

    /// `:identifier` with alternatives, one of which no reference has.
    pub(super) fn more_identifiers(&mut self) {
        let identified = |v: &Val| matches!(v, Val::RefIdentifier { value: Some(_), .. });
        for _ in 0..4 {
            let Some((t, code, _, Val::RefIdentifier { system, value: Some(v) })) =
                self.draw(IDENTIFIED_REFERENCES, identified)
            else {
                continue;
            };
            let token = match system {
                Some(system) => format!("{}|{}", escape(&system), escape(&v)),
                None => escape(&v),
            };
            self.push(
                Query::new(&t, "reference:identifier OR")
                    .with(format!("{code}:identifier"), format!("{token},no-such-value")),
            );
        }
    }
}
