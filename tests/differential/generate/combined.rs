//! Queries beyond one parameter: `_id`, `_lastUpdated`, AND of parameters, chains, `_has` and
//! `_sort`.

use super::targets::*;
use super::{Generator, Query, escape};
use crate::rules::PREFIXES;
use crate::values::Val;
use std::collections::BTreeMap;

impl Generator<'_, '_> {
    // ---- _id, _lastUpdated -----------------------------------------------------------------

    pub(super) fn ids_and_last_updated(&mut self) {
        let types = [
            "Patient",
            "Observation",
            "Practitioner",
            "Organization",
            "Encounter",
            "ValueSet",
        ];
        for n in 0..7 {
            let t = *self.rng.pick(&types);
            let ids: Vec<String> = self.evaluator.corpus.of_type(t).map(|(id, _)| id.clone()).collect();
            if ids.is_empty() {
                continue;
            }
            let mut chosen: Vec<String> = (0..1 + n % 3).map(|_| self.rng.pick(&ids).clone()).collect();
            if n % 3 == 2 {
                chosen.push("no-such-id".into());
            }
            self.push(Query::new(t, "_id").with("_id", chosen.join(",")));
        }
        let mut stamps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in types {
            for (_, resource) in self.evaluator.corpus.of_type(t) {
                if let Some(stamp) = resource["meta"]["lastUpdated"].as_str() {
                    stamps.entry(t.to_owned()).or_default().push(stamp.to_owned());
                }
            }
        }
        let typed: Vec<(String, Vec<String>)> = stamps.into_iter().collect();
        if typed.is_empty() {
            return;
        }
        for (prefix, _) in PREFIXES {
            let (t, stamps) = self.rng.pick(&typed).clone();
            let stamp = self.rng.pick(&stamps).clone();
            // Whole seconds (a range of a thousand stored milliseconds), or the exact instant.
            // `ap` widens by a tenth of the time since the value: for a stamp seconds old, that
            // depends on each side's clock, so `ap` searches the day.
            let text = if prefix == "ap" {
                stamp[..10].to_owned()
            } else if self.rng.chance(60) {
                format!("{}Z", &stamp[..19])
            } else {
                stamp
            };
            self.push(Query::new(&t, format!("_lastUpdated {prefix}")).with("_lastUpdated", format!("{prefix}{text}")));
        }
    }

    // ---- AND -------------------------------------------------------------------------------

    pub(super) fn and_of_parameters(&mut self) {
        for n in 0..16 {
            let query = match n % 4 {
                // The same parameter twice: both values must be found (a name with two parts).
                0 => {
                    let Some((t, code, id, Val::Str(first))) = self.draw(STRINGS, |v| matches!(v, Val::Str(_))) else {
                        continue;
                    };
                    let column = self.evaluator.column(&t, &code);
                    let others = column.get(&id).cloned().unwrap_or_default();
                    let Val::Str(second) = self.rng.pick(&others).clone() else {
                        continue;
                    };
                    let a: String = first.chars().take(3).collect();
                    let b: String = second.chars().take(2).collect();
                    Query::new(&t, "AND")
                        .with(code.clone(), escape(&a))
                        .with(code, escape(&b))
                }
                1 => {
                    let Some((_, _, id, Val::Token { code: Some(c), .. })) = self
                        .draw(&[("Observation", "code")], |v| {
                            matches!(v, Val::Token { code: Some(_), .. })
                        })
                    else {
                        continue;
                    };
                    let column = self.evaluator.column("Observation", "date");
                    let Some(Val::Date { low, .. }) = column.get(&id).and_then(|v| v.first()).cloned() else {
                        continue;
                    };
                    let text = self.date_text(low);
                    Query::new("Observation", "AND")
                        .with("code", escape(&c))
                        .with("date", format!("ge{text}"))
                }
                2 => {
                    let Some((t, code, _, Val::Date { low, high })) =
                        self.draw(DATES, |v| matches!(v, Val::Date { .. }))
                    else {
                        continue;
                    };
                    let from = self.date_anchor(low, high) - 400 * 86_400_000_000;
                    let to = self.date_anchor(low, high) + 400 * 86_400_000_000;
                    let (from, to) = (self.date_text(from), self.date_text(to));
                    Query::new(&t, "AND")
                        .with(code.clone(), format!("ge{from}"))
                        .with(code, format!("lt{to}"))
                }
                _ => {
                    let Some((_, _, id, Val::Token { code: Some(gender), .. })) = self
                        .draw(&[("Patient", "gender")], |v| {
                            matches!(v, Val::Token { code: Some(_), .. })
                        })
                    else {
                        continue;
                    };
                    let column = self.evaluator.column("Patient", "birthdate");
                    let year = match column.get(&id).and_then(|v| v.first()) {
                        Some(Val::Date { low, .. }) => self.date_text(*low),
                        _ => "1970".into(),
                    };
                    Query::new("Patient", "AND")
                        .with("gender", gender)
                        .with("birthdate", format!("le{year}"))
                        .with("active:not", "false")
                }
            };
            self.push(query);
        }
    }

    // ---- chains and _has -------------------------------------------------------------------

    /// The first value of `code` of a random resource of `resource_type` that has one.
    pub(super) fn some_value(&mut self, resource_type: &str, code: &str) -> Option<Val> {
        let values = self.values(resource_type, code);
        (!values.is_empty()).then(|| self.rng.pick(&values).1.clone())
    }

    fn some_code(&mut self, resource_type: &str, code: &str) -> String {
        match self.some_value(resource_type, code) {
            Some(Val::Token { code: Some(c), .. }) => escape(&c),
            _ => "no-such-code".into(),
        }
    }

    fn some_prefix(&mut self, resource_type: &str, code: &str) -> String {
        match self.some_value(resource_type, code) {
            Some(Val::Str(s)) => escape(&s.chars().take(4).collect::<String>()),
            _ => "zz".into(),
        }
    }

    pub(super) fn chains_and_has(&mut self) {
        let gender = self.some_code("Patient", "gender");
        let family = self.some_prefix("Patient", "family");
        let city = self.some_prefix("Patient", "address-city");
        let practitioner = self.some_prefix("Practitioner", "name");
        let organization = self.some_prefix("Organization", "name");
        let class = self.some_code("Encounter", "class");
        let identifier = match self.some_value("Patient", "identifier") {
            Some(Val::Token {
                system: Some(s),
                code: Some(c),
                ..
            }) => format!("{}|{}", escape(&s), escape(&c)),
            _ => "x|y".into(),
        };
        let birth = match self.some_value("Patient", "birthdate") {
            Some(Val::Date { low, .. }) => format!("ge{}", self.date_text(low)),
            _ => "ge1970".into(),
        };
        let chains = [
            ("Observation", "subject:Patient.gender", gender.clone()),
            ("Observation", "patient.family", family.clone()),
            ("Encounter", "subject:Patient.birthdate", birth.clone()),
            ("Condition", "subject.name", family.clone()),
            ("MedicationRequest", "requester:Practitioner.name", practitioner.clone()),
            ("Encounter", "service-provider.name", organization.clone()),
            ("Observation", "encounter.class", class.clone()),
            ("Patient", "organization.name", organization.clone()),
            ("Procedure", "subject:Patient.address-city", city),
            ("Observation", "subject:Patient.identifier", identifier),
        ];
        for (t, name, value) in chains {
            self.push(Query::new(t, "chain").with(name, value));
        }
        let observation_code = self.some_code("Observation", "code");
        let condition_code = self.some_code("Condition", "code");
        let vaccine = self.some_code("Immunization", "vaccine-code");
        let procedure = self.some_code("Procedure", "code");
        let has = [
            ("Patient", "_has:Observation:patient:code", observation_code.clone()),
            ("Patient", "_has:Condition:subject:code", condition_code),
            ("Practitioner", "_has:Encounter:practitioner:class", class),
            ("Encounter", "_has:Observation:encounter:code", observation_code),
            ("Organization", "_has:Patient:organization:gender", gender),
            ("Patient", "_has:Encounter:patient:date", birth),
            ("Patient", "_has:Immunization:patient:vaccine-code", vaccine),
            ("Encounter", "_has:Procedure:encounter:code", procedure),
            (
                "Organization",
                "_has:Encounter:service-provider:status",
                "finished".into(),
            ),
            (
                "Practitioner",
                "_has:MedicationRequest:requester:intent",
                "order".into(),
            ),
        ];
        for (t, name, value) in has {
            self.push(Query::new(t, "_has").with(name, value));
        }
    }

    // ---- _sort -----------------------------------------------------------------------------

    pub(super) fn sorts(&mut self) {
        let observation_code = self.some_code("Observation", "code");
        let patient = self.some_value("Observation", "subject");
        let patient = match patient {
            Some(Val::Reference(r)) => r,
            _ => "Patient/none".into(),
        };
        let condition_code = self.some_code("Condition", "clinical-status");
        let sorts: Vec<Query> = vec![
            Query::new("Patient", "_sort string").with("_sort", "family"),
            Query::new("Patient", "_sort string").with("_sort", "-name"),
            Query::new("Patient", "_sort date").with("_sort", "-birthdate"),
            Query::new("Patient", "_sort token,date").with("_sort", "gender,birthdate"),
            Query::new("Practitioner", "_sort string").with("_sort", "name,_id"),
            Query::new("Organization", "_sort string").with("_sort", "-name"),
            Query::new("Observation", "_sort date")
                .with("code", observation_code.clone())
                .with("_sort", "date"),
            Query::new("Observation", "_sort date")
                .with("code", observation_code.clone())
                .with("_sort", "-date"),
            Query::new("Observation", "_sort quantity")
                .with("code", observation_code)
                .with("_sort", "value-quantity"),
            Query::new("Observation", "_sort token")
                .with("subject", patient.clone())
                .with("_sort", "code"),
            Query::new("Observation", "_sort token")
                .with("subject", patient.clone())
                .with("_sort", "-status,_id"),
            Query::new("Condition", "_sort date")
                .with("clinical-status", condition_code)
                .with("_sort", "onset-date"),
            Query::new("Encounter", "_sort date")
                .with("subject", patient.clone())
                .with("_sort", "-date"),
            Query::new("Encounter", "_sort token")
                .with("subject", patient.clone())
                .with("_sort", "type,-date"),
            Query::new("Procedure", "_sort date").with("_sort", "-date"),
            Query::new("MedicationRequest", "_sort date").with("_sort", "authoredon"),
            Query::new("Immunization", "_sort date")
                .with("patient", patient)
                .with("_sort", "-date"),
            Query::new("ValueSet", "_sort uri").with("_sort", "url"),
            Query::new("Patient", "_sort _lastUpdated").with("_sort", "-_lastUpdated"),
            Query::new("Organization", "_sort _id").with("_sort", "-_id"),
            Query::new("RiskAssessment", "_sort number").with("_sort", "-probability"),
            Query::new("Location", "_sort string").with("_sort", "address-city,name"),
            // Several pages each: keyset paging over equal and distinct keys.
            Query::new("Observation", "_sort date").with("_sort", "-date"),
            Query::new("Observation", "_sort token,date").with("_sort", "code,-date"),
            Query::new("Encounter", "_sort date").with("_sort", "date"),
        ];
        for query in sorts {
            self.push(query);
        }
    }
}
