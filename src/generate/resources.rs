//! The resources of a data set: the shared Organizations and Practitioners of a seed, and each
//! patient's Patient, Encounters, Observations and Conditions, drawn from a stream of its own.

use super::rng::Rng;
use super::vocabulary::*;
use crate::model::{Id, ResourceType};
use serde_json::{Map, Value, json};

/// Organizations every Patient's `managingOrganization` and Encounter's `serviceProvider` pick from.
pub(super) const ORGANIZATIONS: u64 = 20;
/// Practitioners every Encounter's participant picks from.
pub(super) const PRACTITIONERS: u64 = 50;
/// The identifier system of Patient MRNs (`MRN-<patient number>`).
pub const MRN_SYSTEM: &str = "https://example.org/mrn";

/// One generated resource, before the store stamps its `id` and `meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub resource_type: ResourceType,
    pub id: Id,
    pub resource: Map<String, Value>,
}

/// The Organizations and Practitioners every patient's resources point at, built once per seed.
pub struct Shared {
    organizations: Vec<Generated>,
    practitioners: Vec<Generated>,
}

impl Shared {
    pub fn new(seed: u64) -> Shared {
        // Stream 0 is no patient's (patients are numbered from 1).
        let mut rng = Rng::stream(seed, 0);
        let organizations = (1..=ORGANIZATIONS)
            .map(|n| {
                let city = *rng.pick(CITIES);
                let resource = json!({
                    "resourceType": "Organization",
                    "identifier": [{"system": "https://example.org/organization", "value": format!("ORG-{n}")}],
                    "active": true,
                    "type": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                        "display": "Healthcare Provider"
                    }]}],
                    "name": format!("{city} Health Centre {n}"),
                    "address": [{"city": city}]
                });
                generated("Organization", rng.uuid(), resource)
            })
            .collect();
        let practitioners = (1..=PRACTITIONERS)
            .map(|n| {
                let female = rng.below(2) == 0;
                let given = *rng.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE });
                let resource = json!({
                    "resourceType": "Practitioner",
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": format!("{}", 9_999_900_000u64 + n)}],
                    "active": true,
                    "name": [{"family": *rng.pick(FAMILY_NAMES), "given": [given], "prefix": ["Dr."]}],
                    "gender": if female { "female" } else { "male" }
                });
                generated("Practitioner", rng.uuid(), resource)
            })
            .collect();
        Shared {
            organizations,
            practitioners,
        }
    }

    pub fn resources(&self) -> impl Iterator<Item = Generated> + '_ {
        self.organizations.iter().chain(&self.practitioners).cloned()
    }
}

fn generated(resource_type: &str, id: Id, resource: Value) -> Generated {
    let Value::Object(resource) = resource else {
        unreachable!("every generated resource is a JSON object")
    };
    Generated {
        resource_type: ResourceType::parse(resource_type).expect("an R4 resource type"),
        id,
        resource,
    }
}

fn reference(of: &Generated) -> Value {
    json!({"reference": format!("{}/{}", of.resource_type, of.id)})
}

/// Patient number `n`'s resources: the Patient first, then its Encounters, each followed by its
/// Observations and Conditions. Depends only on (seed, n) and the seed's shared resources.
pub fn patient_resources(seed: u64, n: u64, shared: &Shared) -> Vec<Generated> {
    let mut rng = Rng::stream(seed, n);
    let female = rng.below(2) == 0;
    let given = *rng.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE });
    let family = *rng.pick(FAMILY_NAMES);
    let birth = rng.between(BIRTH_FROM, BIRTH_TO);
    let organization = rng.pick(&shared.organizations);
    let city = *rng.pick(CITIES);
    let patient = generated(
        "Patient",
        rng.uuid(),
        json!({
            "resourceType": "Patient",
            "identifier": [{
                "use": "usual",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": MRN_SYSTEM,
                "value": format!("MRN-{n}")
            }],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": format!("555-{:04}", rng.below(10_000)), "use": "home"}],
            "gender": if female { "female" } else { "male" },
            "birthDate": date(birth),
            "address": [{
                "line": [format!("{} {}", rng.between(1, 999), rng.pick(STREETS))],
                "city": city,
                "country": "US"
            }],
            "managingOrganization": reference(organization)
        }),
    );
    let subject = reference(&patient);
    let mut out = vec![patient];
    let encounters = rng.between(4, 12);
    let first_visit = birth.max(CARE_FROM);
    for _ in 0..encounters {
        let start = rng.between(first_visit, CARE_TO);
        let end = start + 60 * rng.between(15, 120);
        let (class, class_display, type_code, type_display) = *rng.pick(ENCOUNTER_KINDS);
        let encounter = generated(
            "Encounter",
            rng.uuid(),
            json!({
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": class,
                    "display": class_display
                },
                "type": [{"coding": [{"system": "http://snomed.info/sct", "code": type_code, "display": type_display}], "text": type_display}],
                "subject": subject,
                "participant": [{"individual": reference(rng.pick(&shared.practitioners))}],
                "period": {"start": date_time(start), "end": date_time(end)},
                "serviceProvider": reference(organization)
            }),
        );
        let context = reference(&encounter);
        out.push(encounter);
        // Two to six draws of a measure per visit, repeats dropped: about 3.6 Observations per
        // visit, 29 per patient.
        let mut chosen: Vec<&Measure> = Vec::new();
        for _ in 0..rng.between(2, 6) {
            let measure = rng.pick(MEASURES);
            if chosen.iter().any(|m| m.code == measure.code) {
                continue;
            }
            chosen.push(measure);
            let tenths = rng.between(measure.tenths.0, measure.tenths.1);
            let (category, category_display) = if measure.vital {
                ("vital-signs", "Vital Signs")
            } else {
                ("laboratory", "Laboratory")
            };
            let effective = start + 60 * rng.between(1, 14);
            out.push(generated(
                "Observation",
                rng.uuid(),
                json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                        "display": category_display
                    }]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": measure.code, "display": measure.display}], "text": measure.display},
                    "subject": subject,
                    "encounter": context,
                    "effectiveDateTime": date_time(effective),
                    "issued": date_time(effective + 300),
                    "valueQuantity": {
                        "value": decimal(tenths),
                        "unit": measure.unit,
                        "system": "http://unitsofmeasure.org",
                        "code": measure.unit
                    }
                }),
            ));
        }
        // About one visit in three records a diagnosis: 2–3 Conditions per patient.
        if rng.below(10) < 3 {
            let (code, display) = *rng.pick(CONDITIONS);
            let resolved = rng.below(3) == 0;
            out.push(generated(
                "Condition",
                rng.uuid(),
                json!({
                    "resourceType": "Condition",
                    "clinicalStatus": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": if resolved { "resolved" } else { "active" }
                    }]},
                    "verificationStatus": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed"
                    }]},
                    "category": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis"
                    }]}],
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}], "text": display},
                    "subject": subject,
                    "encounter": context,
                    "onsetDateTime": date_time(start),
                    "recordedDate": date_time(end)
                }),
            ));
        }
    }
    out
}

/// `tenths / 10` as a JSON number written with one decimal (`172.0`, not `172`), as a device
/// would report it; built from text so no binary rounding shows.
fn decimal(tenths: i64) -> Value {
    let text = format!("{}.{}", tenths / 10, tenths % 10);
    Value::Number(text.parse().expect("a decimal literal"))
}

fn date(epoch_seconds: i64) -> String {
    instant(epoch_seconds).format("%Y-%m-%d").to_string()
}

fn date_time(epoch_seconds: i64) -> String {
    instant(epoch_seconds).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn instant(epoch_seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(epoch_seconds, 0).expect("generated dates lie between 1930 and 2026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn data_set(seed: u64, patients: u64) -> Vec<Generated> {
        let shared = Shared::new(seed);
        let mut all: Vec<Generated> = shared.resources().collect();
        for n in 1..=patients {
            all.extend(patient_resources(seed, n, &shared));
        }
        all
    }

    #[test]
    fn the_same_seed_gives_the_same_data_set_and_another_seed_another() {
        assert_eq!(data_set(7, 5), data_set(7, 5));
        let other = data_set(8, 5);
        assert_ne!(data_set(7, 5)[0].id, other[0].id);
        // A patient's resources do not depend on which patients came before it.
        let shared = Shared::new(7);
        assert_eq!(
            patient_resources(7, 3, &shared),
            patient_resources(7, 3, &Shared::new(7))
        );
    }

    #[test]
    fn about_forty_resources_per_patient_with_one_patient_each() {
        let shared = Shared::new(1);
        let patients = 500u64;
        let mut counts = crate::generate::Counts::default();
        for n in 1..=patients {
            let resources = patient_resources(1, n, &shared);
            assert_eq!(resources[0].resource_type.as_str(), "Patient");
            assert_eq!(
                resources[0].resource["identifier"][0]["value"],
                Value::String(format!("MRN-{n}"))
            );
            for r in &resources {
                counts.add(r.resource_type);
            }
        }
        assert_eq!(counts.0["Patient"], patients);
        let per_patient = counts.total() as f64 / patients as f64;
        assert!(
            (39.0..=41.0).contains(&per_patient),
            "{per_patient} per patient: {counts:?}"
        );
        assert!(counts.0["Condition"] > patients, "{counts:?}");
        assert!(counts.0["Encounter"] > 6 * patients, "{counts:?}");
    }

    #[test]
    fn every_resource_validates_indexes_and_refers_to_generated_ones() {
        let all = data_set(3, 30);
        let ids: HashSet<String> = all.iter().map(|g| format!("{}/{}", g.resource_type, g.id)).collect();
        assert_eq!(ids.len(), all.len(), "ids are unique");
        for g in &all {
            let value = Value::Object(g.resource.clone());
            crate::validate::validate(&value)
                .unwrap_or_else(|e| panic!("{}/{}: {e}\n{value:#}", g.resource_type, g.id));
            let rows = crate::search::index_rows(&value).unwrap_or_else(|e| panic!("{}: {e}", g.resource_type));
            assert!(!rows.is_empty(), "{} has index rows", g.resource_type);
            for reference in references(&value) {
                assert!(ids.contains(&reference), "{reference} was generated");
            }
        }
    }

    fn references(value: &Value) -> Vec<String> {
        match value {
            Value::Object(members) => members
                .iter()
                .flat_map(|(key, member)| match (key.as_str(), member) {
                    ("reference", Value::String(text)) => vec![text.clone()],
                    _ => references(member),
                })
                .collect(),
            Value::Array(items) => items.iter().flat_map(references).collect(),
            _ => Vec::new(),
        }
    }
}
