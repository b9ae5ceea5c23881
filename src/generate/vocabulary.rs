//! The words the generator draws from: names, places, encounter kinds, LOINC measures with UCUM
//! units and plausible ranges, SNOMED conditions, and the date ranges of births and care.

// Some names carry accents so that accent-insensitive string search has work to do.
pub(super) const FAMILY_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "García",
    "Miller",
    "Davis",
    "Martínez",
    "Müller",
    "Dubois",
    "Lefèvre",
    "Nguyen",
    "Kowalski",
    "Søndergaard",
    "Rossi",
    "Schmidt",
    "O'Brien",
    "Núñez",
    "Andersson",
];
pub(super) const GIVEN_FEMALE: &[&str] = &[
    "Mary", "Emma", "Olivia", "Zoë", "Renée", "Chloé", "Sofía", "Ana", "Aiko", "Fatima", "Léa", "Ingrid",
];
pub(super) const GIVEN_MALE: &[&str] = &[
    "James",
    "Noah",
    "Liam",
    "José",
    "François",
    "Jürgen",
    "Mateo",
    "Björn",
    "Wei",
    "Omar",
    "Håkon",
    "Luca",
];
pub(super) const CITIES: &[&str] = &[
    "Boston",
    "Springfield",
    "Worcester",
    "Cambridge",
    "Lowell",
    "Québec",
    "Montréal",
    "Zürich",
    "São Paulo",
    "Köln",
];
pub(super) const STREETS: &[&str] = &[
    "Main Street",
    "Elm Street",
    "Rue de la Paix",
    "Hauptstraße",
    "Oak Avenue",
    "Calle Mayor",
];

/// Encounter classes (v3 ActCode) with a SNOMED type each, weighted towards ambulatory visits.
pub(super) const ENCOUNTER_KINDS: &[(&str, &str, &str, &str)] = &[
    ("AMB", "ambulatory", "185349003", "Encounter for check up"),
    ("AMB", "ambulatory", "162673000", "General examination of patient"),
    ("AMB", "ambulatory", "185345009", "Encounter for symptom"),
    ("AMB", "ambulatory", "390906007", "Follow-up encounter"),
    ("EMER", "emergency", "50849002", "Emergency room admission"),
    (
        "IMP",
        "inpatient encounter",
        "183452005",
        "Emergency hospital admission",
    ),
];

/// A LOINC observation: code, display, category, UCUM unit, and the range of plausible values
/// in tenths (values are written with one decimal).
pub(super) struct Measure {
    pub(super) code: &'static str,
    pub(super) display: &'static str,
    pub(super) vital: bool,
    pub(super) unit: &'static str,
    pub(super) tenths: (i64, i64),
}

pub(super) const MEASURES: &[Measure] = &[
    Measure {
        code: "8302-2",
        display: "Body height",
        vital: true,
        unit: "cm",
        tenths: (1450, 1980),
    },
    Measure {
        code: "29463-7",
        display: "Body weight",
        vital: true,
        unit: "kg",
        tenths: (450, 1300),
    },
    Measure {
        code: "39156-5",
        display: "Body mass index (BMI) [Ratio]",
        vital: true,
        unit: "kg/m2",
        tenths: (170, 400),
    },
    Measure {
        code: "8480-6",
        display: "Systolic blood pressure",
        vital: true,
        unit: "mm[Hg]",
        tenths: (950, 1750),
    },
    Measure {
        code: "8462-4",
        display: "Diastolic blood pressure",
        vital: true,
        unit: "mm[Hg]",
        tenths: (550, 1050),
    },
    Measure {
        code: "8867-4",
        display: "Heart rate",
        vital: true,
        unit: "/min",
        tenths: (500, 1150),
    },
    Measure {
        code: "9279-1",
        display: "Respiratory rate",
        vital: true,
        unit: "/min",
        tenths: (110, 240),
    },
    Measure {
        code: "8310-5",
        display: "Body temperature",
        vital: true,
        unit: "Cel",
        tenths: (358, 391),
    },
    Measure {
        code: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        vital: true,
        unit: "%",
        tenths: (900, 1000),
    },
    Measure {
        code: "2339-0",
        display: "Glucose [Mass/volume] in Blood",
        vital: false,
        unit: "mg/dL",
        tenths: (650, 2200),
    },
    Measure {
        code: "4548-4",
        display: "Hemoglobin A1c/Hemoglobin.total in Blood",
        vital: false,
        unit: "%",
        tenths: (45, 110),
    },
    Measure {
        code: "2093-3",
        display: "Cholesterol [Mass/volume] in Serum or Plasma",
        vital: false,
        unit: "mg/dL",
        tenths: (1400, 2900),
    },
    Measure {
        code: "2085-9",
        display: "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        vital: false,
        unit: "mg/dL",
        tenths: (300, 900),
    },
    Measure {
        code: "2571-8",
        display: "Triglyceride [Mass/volume] in Serum or Plasma",
        vital: false,
        unit: "mg/dL",
        tenths: (500, 3200),
    },
    Measure {
        code: "718-7",
        display: "Hemoglobin [Mass/volume] in Blood",
        vital: false,
        unit: "g/dL",
        tenths: (105, 175),
    },
    Measure {
        code: "2160-0",
        display: "Creatinine [Mass/volume] in Serum or Plasma",
        vital: false,
        unit: "mg/dL",
        tenths: (5, 16),
    },
];

/// SNOMED conditions; diabetes (44054006) is one of them.
pub(super) const CONDITIONS: &[(&str, &str)] = &[
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("15777000", "Prediabetes"),
    ("55822004", "Hyperlipidemia"),
    ("162864005", "Body mass index 30+ - obesity"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("444814009", "Viral sinusitis"),
    ("195967001", "Asthma"),
    ("49436004", "Atrial fibrillation"),
    ("233604007", "Pneumonia"),
    ("40055000", "Chronic sinusitis"),
];

/// Seconds since the epoch of 1930-01-01, 2020-12-31, 2015-01-01 and 2025-12-31.
pub(super) const BIRTH_FROM: i64 = -1_262_304_000;
pub(super) const BIRTH_TO: i64 = 1_609_372_800;
pub(super) const CARE_FROM: i64 = 1_420_070_400;
pub(super) const CARE_TO: i64 = 1_767_139_200;
