//! Resources the test writes besides the data, drawn from it: ValueSets for `:in` / `:not-in`
//! (lists of concepts, a whole code system, imports, excludes, an expansion) made of codes the
//! data holds, and Lists for `_list` whose entries point at resources of the data, at resources
//! written and then deleted, and at ids that were never there.

use super::Generator;
use crate::values::Val;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Token parameters whose codes the ValueSets are made of.
const CODE_SOURCES: &[(&str, &str)] = &[
    ("Observation", "code"),
    ("Condition", "code"),
    ("Procedure", "code"),
    ("Encounter", "type"),
    ("Immunization", "vaccine-code"),
    ("MedicationRequest", "code"),
    ("AllergyIntolerance", "code"),
    ("DiagnosticReport", "code"),
    ("Observation", "category"),
    ("Condition", "clinical-status"),
];

/// Every id the fixtures use starts so.
pub const PREFIX: &str = "differential-";

/// What the generator wrote, and what the queries need to know of it.
#[derive(Default)]
pub struct Fixtures {
    /// Written and kept.
    pub written: Vec<Value>,
    /// Written, then deleted.
    pub deleted: Vec<Value>,
    pub value_sets: Vec<ValueSetFixture>,
}

/// One generated ValueSet and the `(type, parameter)`s whose codes it was made of.
pub struct ValueSetFixture {
    pub id: String,
    pub url: String,
    pub version: Option<String>,
    pub params: Vec<(String, String)>,
}

/// `system → codes` of one parameter, from the values present.
type Codes = BTreeMap<String, BTreeSet<String>>;

impl Generator<'_, '_> {
    pub fn fixtures(mut self) -> Fixtures {
        let mut fixtures = Fixtures::default();
        self.value_sets(&mut fixtures);
        self.lists(&mut fixtures);
        fixtures
    }

    fn codes_of(&self, resource_type: &str, code: &str) -> Codes {
        let mut codes = Codes::new();
        for (_, value) in self.values(resource_type, code) {
            if let Val::Token {
                system: Some(s),
                code: Some(c),
                ..
            } = value
            {
                codes.entry(s).or_default().insert(c);
            }
        }
        codes
    }

    /// A code source, one of its systems (the more codes, the likelier) and up to `n` of its codes.
    fn some_codes(&mut self, n: usize) -> ((String, String), String, Vec<String>) {
        loop {
            let (t, code) = *self.rng.pick(CODE_SOURCES);
            let codes = self.codes_of(t, code);
            let systems: Vec<(&String, &BTreeSet<String>)> = codes.iter().collect();
            if systems.is_empty() {
                continue;
            }
            let (system, in_system) = *systems
                .iter()
                .max_by_key(|(_, c)| c.len() * (1 + self.rng.below(3)))
                .unwrap();
            let all: Vec<&String> = in_system.iter().collect();
            let mut chosen = BTreeSet::new();
            for _ in 0..n {
                chosen.insert((*self.rng.pick(&all)).clone());
            }
            return (
                (t.to_owned(), code.to_owned()),
                system.clone(),
                chosen.into_iter().collect(),
            );
        }
    }

    fn value_sets(&mut self, fixtures: &mut Fixtures) {
        let url = |name: &str| format!("http://example.org/fhir/ValueSet/{PREFIX}{name}");
        let concepts = |codes: &[String]| codes.iter().map(|c| json!({"code": c})).collect::<Vec<_>>();
        let mut add = |name: &str, version: Option<&str>, params: Vec<(String, String)>, body: Value| {
            let mut value_set = json!({"resourceType": "ValueSet", "id": format!("{PREFIX}{name}"),
                "url": url(name), "status": "active", "name": format!("Differential{name}")});
            if let Some(version) = version {
                value_set["version"] = json!(version);
            }
            value_set
                .as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            fixtures.value_sets.push(ValueSetFixture {
                id: format!("{PREFIX}{name}"),
                url: url(name),
                version: version.map(str::to_owned),
                params,
            });
            fixtures.written.push(value_set);
        };

        // Listed concepts of two systems, one code that nothing has.
        let (p0, s0, mut c0) = self.some_codes(4);
        let (p1, s1, c1) = self.some_codes(2);
        c0.push("no-such-code".into());
        add(
            "concepts",
            Some("1"),
            vec![p0.clone(), p1.clone()],
            json!({"compose": {"include": [
                {"system": s0, "concept": concepts(&c0)}, {"system": s1, "concept": concepts(&c1)}]}}),
        );
        // A whole code system.
        let (p2, s2, _) = self.some_codes(1);
        add(
            "system",
            None,
            vec![p2],
            json!({"compose": {"include": [{"system": s2}]}}),
        );
        // Another value set imported, and concepts of its own.
        let (p3, s3, c3) = self.some_codes(2);
        add(
            "import",
            None,
            vec![p0, p1, p3],
            json!({"compose": {"include": [
                {"valueSet": [url("concepts")]}, {"system": s3, "concept": concepts(&c3)}]}}),
        );
        // Listed concepts less some of them.
        let (p4, s4, c4) = self.some_codes(6);
        let excluded = &c4[..c4.len() / 2];
        add(
            "exclude",
            None,
            vec![p4.clone()],
            json!({"compose": {
                "include": [{"system": s4, "concept": concepts(&c4)}],
                "exclude": [{"system": s4, "concept": concepts(excluded)}]}}),
        );
        // Not a whole code system less some of its codes: the server refuses those (README).
        // An expansion, nested, and no compose.
        let (p6, s6, c6) = self.some_codes(4);
        let mut contains: Vec<Value> = c6.iter().map(|c| json!({"system": s6, "code": c})).collect();
        if contains.len() > 1 {
            let nested = contains.pop().unwrap();
            contains[0]["contains"] = json!([nested]);
        }
        add(
            "expansion",
            None,
            vec![p6.clone()],
            json!({"expansion": {"timestamp": "2024-01-01T00:00:00Z", "contains": contains}}),
        );
        // Two imports less a third value set.
        add(
            "import-exclude",
            None,
            vec![p6, p4],
            json!({"compose": {
                "include": [{"valueSet": [url("expansion")]}, {"valueSet": [url("exclude")]}],
                "exclude": [{"valueSet": [url("concepts")]}]}}),
        );
    }

    /// A random resource of `resource_type` as `Type/id`.
    fn some_reference(&mut self, resource_type: &str) -> Option<String> {
        let ids: Vec<&String> = self.evaluator.corpus.of_type(resource_type).map(|(id, _)| id).collect();
        (!ids.is_empty()).then(|| format!("{resource_type}/{}", self.rng.pick(&ids)))
    }

    /// A copy of a random resource of `resource_type` under a new id, to be deleted.
    fn doomed_copy(&mut self, resource_type: &str, fixtures: &mut Fixtures) -> Option<String> {
        let source = self.some_reference(resource_type)?;
        let (_, id) = source.split_once('/')?;
        let mut copy = self.evaluator.corpus.get(resource_type, id)?.clone();
        let new_id = format!("{PREFIX}gone-{}", resource_type.to_lowercase());
        copy["id"] = json!(new_id);
        copy.as_object_mut()?.remove("meta");
        fixtures.deleted.push(copy);
        Some(format!("{resource_type}/{new_id}"))
    }

    fn lists(&mut self, fixtures: &mut Fixtures) {
        let list = |name: &str, items: Vec<Value>| {
            let entries: Vec<Value> = items.into_iter().map(|item| json!({"item": item})).collect();
            json!({"resourceType": "List", "id": format!("{PREFIX}{name}"), "status": "current",
                "mode": "working", "entry": entries})
        };
        let reference = |r: &str| json!({"reference": r});

        let mut patients: Vec<Value> = (0..5)
            .filter_map(|_| self.some_reference("Patient"))
            .map(|r| reference(&r))
            .collect();
        patients.extend(self.doomed_copy("Patient", fixtures).map(|r| reference(&r)));
        patients.push(reference("Patient/no-such-patient"));
        fixtures.written.push(list("patients", patients));

        let mut mixed = Vec::new();
        for (t, n) in [("Observation", 3), ("Condition", 2), ("Encounter", 1), ("Patient", 1)] {
            for _ in 0..n {
                mixed.extend(self.some_reference(t).map(|r| reference(&r)));
            }
        }
        if let Some(r) = self.some_reference("Observation") {
            mixed.push(reference(&format!("{}/{r}", self.evaluator.base)));
        }
        if let Some(r) = self.some_reference("Condition") {
            mixed.push(reference(&format!("{r}/_history/1")));
        }
        mixed.extend(self.doomed_copy("Observation", fixtures).map(|r| reference(&r)));
        mixed.push(json!({"display": "an entry without a reference"}));
        fixtures.written.push(list("mixed", mixed));

        let gone: Vec<Value> = (0..3)
            .filter_map(|_| self.some_reference("Patient"))
            .map(|r| reference(&r))
            .collect();
        fixtures.deleted.push(list("gone", gone));
    }
}
