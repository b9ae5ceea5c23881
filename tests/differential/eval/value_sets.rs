//! What a ValueSet contains, for `:in` and `:not-in` (search.html#modifiers), read from the
//! in-memory copy of the server's ValueSets by the definitions of ValueSet.compose and
//! ValueSet.expansion (valueset.html). A value set is kept as the rule it states, not as a list
//! of codes, so that "every code of a system but these" is answered exactly.

use super::Evaluator;
use serde_json::Value;
use std::collections::BTreeSet;

/// Imports (`compose.include.valueSet`) nested deeper than this are taken as a cycle.
const MAX_DEPTH: usize = 8;

/// The codes a value set contains: those some `include` selects and no `exclude` does.
#[derive(Debug)]
pub struct ValueSetRule {
    include: Vec<Selection>,
    exclude: Vec<Selection>,
}

/// What one `include` or `exclude` entry (or an expansion) selects.
#[derive(Debug)]
enum Selection {
    /// These codes of one system.
    Codes(String, BTreeSet<String>),
    /// Every code of a system ("If there are no codes or filters, the entire code system is
    /// included").
    System(String),
    /// Every code of each of these value sets (the element's definition: "If multiple value
    /// sets are specified this includes the union of the contents").
    ValueSets(Vec<ValueSetRule>),
}

impl ValueSetRule {
    /// Whether the code `code` of `system` is in the value set.
    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.include.iter().any(|s| s.selects(system, code)) && !self.exclude.iter().any(|s| s.selects(system, code))
    }
}

impl Selection {
    fn selects(&self, system: &str, code: &str) -> bool {
        match self {
            Selection::Codes(s, codes) => s == system && codes.contains(code),
            Selection::System(s) => s == system,
            Selection::ValueSets(rules) => rules.iter().any(|r| r.contains(system, code)),
        }
    }
}

impl Evaluator<'_> {
    /// The value set `reference` names: `ValueSet/id` (relative, or absolute on the server's
    /// base) or a canonical URL, `|version` allowed (search.html#modifiers: "literal … or
    /// logical (a reference to ValueSet.url)").
    pub fn value_set(&self, reference: &str) -> Result<ValueSetRule, String> {
        self.value_set_at(reference, 0)
    }

    fn value_set_at(&self, reference: &str, depth: usize) -> Result<ValueSetRule, String> {
        if depth > MAX_DEPTH {
            return Err(format!("value set imports nest deeper than {MAX_DEPTH} at {reference}"));
        }
        let found = self.find_value_set(reference)?;
        // An expansion lists the codes outright (valueset.html#expansion); abstract entries are
        // there for navigation and are not codes of the value set.
        if let Some(contains) = found.pointer("/expansion/contains").and_then(Value::as_array) {
            let mut include = Vec::new();
            collect_contains(contains, &mut include);
            return Ok(ValueSetRule {
                include,
                exclude: Vec::new(),
            });
        }
        let compose = found
            .get("compose")
            .ok_or(format!("{reference} has neither an expansion nor a compose"))?;
        let selections = |key: &str| -> Result<Vec<Selection>, String> {
            let entries = compose.get(key).and_then(Value::as_array).into_iter().flatten();
            entries.map(|entry| self.selection(entry, depth)).collect()
        };
        Ok(ValueSetRule {
            include: selections("include")?,
            exclude: selections("exclude")?,
        })
    }

    fn selection(&self, entry: &Value, depth: usize) -> Result<Selection, String> {
        if entry.get("filter").is_some() {
            return Err("a filter needs the code system's hierarchy".into());
        }
        let system = entry.get("system").and_then(Value::as_str);
        let imports: Vec<&str> = entry
            .get("valueSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let concepts: BTreeSet<String> = entry
            .get("concept")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str().map(str::to_owned))
            .collect();
        match (system, imports.is_empty()) {
            (Some(_), false) => Err("a system together with value sets (their intersection) is not generated".into()),
            (Some(system), true) if concepts.is_empty() => Ok(Selection::System(system.to_owned())),
            (Some(system), true) => Ok(Selection::Codes(system.to_owned(), concepts)),
            (None, false) => Ok(Selection::ValueSets(
                imports
                    .iter()
                    .map(|i| self.value_set_at(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            )),
            (None, true) => Err("an include with neither a system nor a value set".into()),
        }
    }

    fn find_value_set(&self, reference: &str) -> Result<&Value, String> {
        let local = reference
            .strip_prefix(&self.base)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(reference);
        if let Some(id) = local.strip_prefix("ValueSet/") {
            return self.corpus.get("ValueSet", id).ok_or(format!("no ValueSet/{id}"));
        }
        let (url, version) = match reference.split_once('|') {
            Some((url, version)) => (url, Some(version)),
            None => (reference, None),
        };
        let mut found = self.corpus.of_type("ValueSet").map(|(_, v)| v).filter(|v| {
            v["url"].as_str() == Some(url) && version.is_none_or(|version| v["version"].as_str() == Some(version))
        });
        match (found.next(), found.next()) {
            (Some(value_set), None) => Ok(value_set),
            (None, _) => Err(format!("no ValueSet with url {reference}")),
            (Some(_), Some(_)) => Err(format!("several ValueSets have the url {reference}")),
        }
    }
}

fn collect_contains(contains: &[Value], out: &mut Vec<Selection>) {
    for entry in contains {
        if let (Some(system), Some(code), false) = (
            entry["system"].as_str(),
            entry["code"].as_str(),
            entry["abstract"].as_bool().unwrap_or(false),
        ) {
            out.push(Selection::Codes(system.to_owned(), BTreeSet::from([code.to_owned()])));
        }
        if let Some(nested) = entry["contains"].as_array() {
            collect_contains(nested, out);
        }
    }
}
