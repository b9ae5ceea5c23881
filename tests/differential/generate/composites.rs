//! Composite parameters (search.html#composite): a value per component, taken from one item of
//! a resource (so it should find that resource) or from two different items of one resource (so
//! it must not find it by them), with prefixes on number, date and quantity components, OR by
//! commas, and `:missing`.

use super::{Generator, Query, escape};
use crate::defs::{Defs, Kind};
use crate::rules::PREFIXES;
use crate::values::Val;

const COMPOSITES: &[(&str, &str)] = &[
    ("Observation", "code-value-quantity"),
    ("Observation", "code-value-quantity"),
    ("Observation", "code-value-quantity"),
    ("Observation", "component-code-value-quantity"),
    ("Observation", "component-code-value-quantity"),
    ("Observation", "component-code-value-quantity"),
    ("Observation", "combo-code-value-quantity"),
    ("Observation", "combo-code-value-quantity"),
    ("Observation", "code-value-concept"),
    ("Observation", "component-code-value-concept"),
    ("Observation", "combo-code-value-concept"),
    ("Observation", "code-value-string"),
    ("PlanDefinition", "context-type-value"),
    ("Library", "context-type-value"),
    ("ActivityDefinition", "context-type-value"),
    ("MessageDefinition", "context-type-value"),
    ("CapabilityStatement", "context-type-value"),
    ("MolecularSequence", "chromosome-window-coordinate"),
    ("MolecularSequence", "referenceseqid-window-coordinate"),
    ("MolecularSequence", "referenceseqid-variant-coordinate"),
];

/// Composites for `:missing` besides those above: ones no resource has a complete value of.
/// R4 defines some so that they cannot have one: `code-value-date` asks for `value.as(DateTime)`,
/// the System type, which a FHIR `dateTime` is not (FHIRPath); `relationship` takes the type
/// of its `code` component from the reference parameter `relatesto` and that of its `target`
/// from the token parameter `relation`. The examples' `context-type-quantity` values are all
/// Ranges, which R4 gives no quantity search rule; Group characteristics are coded by text only
/// or have Reference values.
const ALSO_MISSING: &[(&str, &str)] = &[
    ("Observation", "code-value-date"),
    ("DocumentReference", "relationship"),
    ("Library", "context-type-quantity"),
    ("Measure", "context-type-quantity"),
    ("Group", "characteristic-value"),
    ("MolecularSequence", "chromosome-variant-coordinate"),
    ("ValueSet", "context-type-value"),
];

fn kinds(resource_type: &str, code: &str) -> Vec<Kind> {
    Defs::r4()
        .get(resource_type, code)
        .map(|def| def.components.iter().map(|(kind, _)| *kind).collect())
        .unwrap_or_default()
}

/// Whether a component value can be written as a search value (a token needs a code).
fn searchable(value: &Val) -> bool {
    match value {
        Val::Token { code, .. } => code.is_some(),
        Val::RefIdentifier { .. } | Val::Composite(_) => false,
        _ => true,
    }
}

/// Whether every component of a composite item has a value that can be searched for.
fn complete(value: &Val) -> bool {
    matches!(value, Val::Composite(parts) if parts.iter().all(|p| p.iter().any(searchable)))
}

impl Generator<'_, '_> {
    /// A search value for one component value; `prefix` goes on ordered types.
    fn component_text(&mut self, value: &Val, prefix: &str) -> String {
        match value {
            Val::Token {
                system: Some(s),
                code: Some(c),
                ..
            } if self.rng.chance(70) => format!("{}|{}", escape(s), escape(c)),
            Val::Token { code: Some(c), .. } => escape(c),
            Val::Quantity {
                value, system, code, ..
            } => {
                let number = format!("{prefix}{}", self.number_text(prefix, *value));
                match (system, code) {
                    (Some(s), Some(c)) if self.rng.chance(40) => format!("{number}|{}|{}", escape(s), escape(c)),
                    (_, Some(c)) if self.rng.chance(30) => format!("{number}||{}", escape(c)),
                    _ => number,
                }
            }
            Val::Number(x) => format!("{prefix}{}", self.number_text(prefix, *x)),
            Val::Date { low, high } => {
                let at = self.date_anchor(*low, *high);
                format!("{prefix}{}", self.date_text(at))
            }
            Val::Str(s) => {
                let cut: String = s.chars().take(1 + self.rng.below(6)).collect();
                escape(&cut)
            }
            Val::Reference(r) => match self.evaluator.local_target(r) {
                Some((t, id)) if self.rng.chance(50) => format!("{t}/{id}"),
                Some((_, id)) => id,
                None => escape(r),
            },
            Val::Uri(u) => escape(u),
            Val::RefIdentifier { .. } | Val::Composite(_) | Val::Token { .. } => String::new(),
        }
    }

    /// A value for a whole composite: component `k` from `items[k]`'s values.
    fn composite_text(&mut self, kinds: &[Kind], items: &[&Vec<Vec<Val>>]) -> String {
        let ordered = |k: &Kind| matches!(k, Kind::Number | Kind::Date | Kind::Quantity);
        let mut parts = Vec::new();
        for (k, kind) in kinds.iter().enumerate() {
            let values: Vec<&Val> = items[k][k].iter().filter(|v| searchable(v)).collect();
            let value = (*self.rng.pick(&values)).clone();
            let prefix = if ordered(kind) && self.rng.chance(60) {
                self.rng.pick(&PREFIXES).0
            } else {
                ""
            };
            parts.push(self.component_text(&value, prefix));
        }
        parts.join("$")
    }

    /// A resource's complete composite item of a random parameter: `(type, code, id, parts)`.
    fn composite_item(&mut self) -> Option<(String, String, String, Vec<Vec<Val>>)> {
        let (t, code, id, value) = self.draw(COMPOSITES, complete)?;
        let Val::Composite(parts) = value else { return None };
        Some((t, code, id, parts))
    }

    pub(super) fn composites(&mut self) {
        let category = |t: &str, code: &str| {
            let names: Vec<String> = kinds(t, code).iter().map(|k| format!("{k:?}").to_lowercase()).collect();
            format!("composite {}", names.join("$"))
        };
        for pair in COMPOSITES {
            for _ in 0..2 {
                let Some((t, code, _, Val::Composite(parts))) = self.draw(&[*pair], complete) else {
                    continue;
                };
                let value = self.composite_text(&kinds(&t, &code), &vec![&parts; parts.len()]);
                self.push(Query::new(&t, category(&t, &code)).with(code, value));
            }
        }
        // The code of one item with the value of another item of the same resource.
        let several = [
            ("Observation", "component-code-value-quantity"),
            ("Observation", "combo-code-value-quantity"),
            ("Observation", "component-code-value-concept"),
        ];
        for _ in 0..12 {
            let Some((t, code, id, _)) = self.draw(&several, complete) else {
                continue;
            };
            let items: Vec<Vec<Vec<Val>>> = self.evaluator.column(&t, &code)[&id]
                .iter()
                .filter(|v| complete(v))
                .filter_map(|v| match v {
                    Val::Composite(parts) => Some(parts.clone()),
                    _ => None,
                })
                .collect();
            if items.len() < 2 {
                continue;
            }
            let first = self.rng.below(items.len());
            let second = (first + 1 + self.rng.below(items.len() - 1)) % items.len();
            let value = self.composite_text(&kinds(&t, &code), &[&items[first], &items[second]]);
            self.push(Query::new(&t, "composite across items").with(code, value));
        }
        for _ in 0..6 {
            let Some((t, code, _, parts)) = self.composite_item() else {
                continue;
            };
            let kinds = kinds(&t, &code);
            let first = self.composite_text(&kinds, &vec![&parts; parts.len()]);
            let candidates: Vec<(String, Val)> = self
                .values(&t, &code)
                .into_iter()
                .filter(|(_, v)| complete(v))
                .collect();
            let Val::Composite(other) = self.rng.pick(&candidates).1.clone() else {
                continue;
            };
            let other = self.composite_text(&kinds, &vec![&other; other.len()]);
            self.push(Query::new(&t, "composite OR").with(code, format!("{first},{other}")));
        }
        let mut missing: Vec<(&str, &str)> = ALSO_MISSING.to_vec();
        for _ in 0..5 {
            missing.push(*self.rng.pick(COMPOSITES));
        }
        for (n, (t, code)) in missing.into_iter().enumerate() {
            let value = if n % 2 == 0 { "true" } else { "false" };
            self.push(Query::new(t, "composite:missing").with(format!("{code}:missing"), value));
        }
    }
}
