//! The codes of a ValueSet, for the token modifiers `:in` and `:not-in` (search.html#modifiers).
//! The server has no terminology service, so it takes what a ValueSet states outright: its
//! `expansion.contains` when it has one, else its `compose` — included concepts, whole code
//! systems, other value sets (imports), less excluded concepts and systems. A `filter` would need
//! the code system's hierarchy and properties, so it is refused with a clear message rather than
//! answered wrongly; so is a whole code system less some of its codes, which the list of codes
//! a search is made of cannot say.
//!
//! Expansion is pure: value sets are looked up in a map the caller fills. `expand` says which
//! ones it lacks; the caller fetches them from the store and asks again.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// A code of a system, or (`None`) every code of it.
pub type Code = (String, Option<String>);

/// Expansions larger than this are refused: each code is a term of the SQL query.
pub const MAX_CODES: usize = 10_000;
/// How deep imports (`compose.include.valueSet`) may nest.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, PartialEq)]
pub enum Expansion {
    Codes(Vec<Code>),
    /// These value sets (by the reference used for them) must be looked up first.
    Needs(Vec<String>),
    /// The value set cannot be expanded here; the text says why.
    Fails(String),
}

/// Expands the value set `reference` (a canonical URL, possibly `|version`, or `ValueSet/id`).
/// `known` holds the value sets looked up so far (`None`: there is no such value set).
pub fn expand(reference: &str, known: &HashMap<String, Option<Value>>) -> Expansion {
    let mut needs = BTreeSet::new();
    match expand_one(reference, known, 0, &mut needs) {
        Ok(_) if !needs.is_empty() => Expansion::Needs(needs.into_iter().collect()),
        Ok(codes) if codes.len() > MAX_CODES => Expansion::Fails(format!(
            "the value set {reference} has more than {MAX_CODES} codes, too many to search by"
        )),
        Ok(codes) => Expansion::Codes(codes.into_iter().collect()),
        Err(why) => Expansion::Fails(why),
    }
}

fn expand_one(
    reference: &str,
    known: &HashMap<String, Option<Value>>,
    depth: usize,
    needs: &mut BTreeSet<String>,
) -> Result<BTreeSet<Code>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("value set imports nest deeper than {MAX_DEPTH} at {reference}"));
    }
    let value_set = match known.get(reference) {
        None => {
            needs.insert(reference.to_owned());
            return Ok(BTreeSet::new());
        }
        Some(None) => return Err(format!("there is no ValueSet {reference} on this server")),
        Some(Some(value_set)) => value_set,
    };
    if let Some(contains) = value_set.pointer("/expansion/contains").and_then(Value::as_array) {
        let mut codes = BTreeSet::new();
        collect_contains(contains, &mut codes);
        return Ok(codes);
    }
    let Some(compose) = value_set.get("compose") else {
        return Err(format!(
            "the ValueSet {reference} has neither an expansion nor a compose"
        ));
    };
    let mut codes = BTreeSet::new();
    for include in array(compose, "include") {
        codes.extend(include_codes(include, reference, known, depth, needs)?);
    }
    for exclude in array(compose, "exclude") {
        let excluded = include_codes(exclude, reference, known, depth, needs)?;
        // "Every code of a system but these" has no form in a list of codes: searching by the
        // whole system would find the excluded codes too.
        if let Some((system, _)) = excluded
            .iter()
            .find(|(system, code)| code.is_some() && codes.contains(&(system.clone(), None)))
        {
            return Err(format!(
                "the ValueSet {reference} excludes single codes from the whole code system {system}, which this server cannot expand"
            ));
        }
        codes.retain(|(system, code)| {
            !excluded.contains(&(system.clone(), code.clone())) && !excluded.contains(&(system.clone(), None))
        });
    }
    Ok(codes)
}

/// The codes one `compose.include` (or `exclude`) entry names.
fn include_codes(
    include: &Value,
    reference: &str,
    known: &HashMap<String, Option<Value>>,
    depth: usize,
    needs: &mut BTreeSet<String>,
) -> Result<BTreeSet<Code>, String> {
    if include.get("filter").is_some() {
        return Err(format!(
            "the ValueSet {reference} selects codes by a filter, which needs a terminology service this server does not have"
        ));
    }
    let system = include.get("system").and_then(Value::as_str);
    let imports: Vec<&str> = array(include, "valueSet").iter().filter_map(|v| v.as_str()).collect();
    if !imports.is_empty() && system.is_some() {
        return Err(format!(
            "the ValueSet {reference} intersects a code system with other value sets, which this server cannot expand"
        ));
    }
    let mut codes = BTreeSet::new();
    for import in imports {
        codes.extend(expand_one(import, known, depth + 1, needs)?);
    }
    if let Some(system) = system {
        let concepts = array(include, "concept");
        if concepts.is_empty() {
            codes.insert((system.to_owned(), None));
        }
        for concept in concepts {
            if let Some(code) = concept.get("code").and_then(Value::as_str) {
                codes.insert((system.to_owned(), Some(code.to_owned())));
            }
        }
    }
    Ok(codes)
}

fn collect_contains(contains: &[Value], codes: &mut BTreeSet<Code>) {
    for entry in contains {
        if let (Some(system), Some(code)) = (
            entry.get("system").and_then(Value::as_str),
            entry.get("code").and_then(Value::as_str),
        ) {
            codes.insert((system.to_owned(), Some(code.to_owned())));
        }
        collect_contains(array(entry, "contains"), codes);
    }
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(system: &str, code: Option<&str>) -> Code {
        (system.to_owned(), code.map(str::to_owned))
    }

    #[test]
    fn compose_includes_imports_and_excludes() {
        let vitals = json!({"resourceType": "ValueSet", "url": "http://x/vs/vitals",
            "compose": {"include": [
                {"system": "http://loinc.org", "concept": [{"code": "8480-6"}, {"code": "8462-4"}, {"code": "8302-2"}]},
                {"valueSet": ["http://x/vs/more"]}],
              "exclude": [{"system": "http://loinc.org", "concept": [{"code": "8302-2"}]}]}});
        let more = json!({"resourceType": "ValueSet", "expansion": {"contains": [
            {"system": "http://snomed.info/sct", "code": "1", "contains": [{"system": "http://snomed.info/sct", "code": "2"}]}]}});
        let mut known = HashMap::new();
        known.insert("http://x/vs/vitals".to_owned(), Some(vitals));
        assert_eq!(
            expand("http://x/vs/vitals", &known),
            Expansion::Needs(vec!["http://x/vs/more".into()])
        );
        known.insert("http://x/vs/more".to_owned(), Some(more));
        assert_eq!(
            expand("http://x/vs/vitals", &known),
            Expansion::Codes(vec![
                code("http://loinc.org", Some("8462-4")),
                code("http://loinc.org", Some("8480-6")),
                code("http://snomed.info/sct", Some("1")),
                code("http://snomed.info/sct", Some("2")),
            ])
        );
    }

    #[test]
    fn single_codes_excluded_from_a_whole_system_are_refused() {
        let mut known = HashMap::new();
        known.insert(
            "a".to_owned(),
            Some(json!({"compose": {"include": [{"system": "http://loinc.org"}],
                "exclude": [{"system": "http://loinc.org", "concept": [{"code": "8302-2"}]}]}})),
        );
        assert!(matches!(expand("a", &known), Expansion::Fails(why) if why.contains("whole code system")));
        known.insert(
            "b".to_owned(),
            Some(
                json!({"compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "1-8"}]},
                {"system": "http://snomed.info/sct"}],
                "exclude": [{"system": "http://loinc.org"}]}}),
            ),
        );
        assert_eq!(
            expand("b", &known),
            Expansion::Codes(vec![code("http://snomed.info/sct", None)]),
            "a whole system excluded is no problem"
        );
    }

    #[test]
    fn whole_systems_filters_and_missing_sets() {
        let mut known = HashMap::new();
        known.insert(
            "a".to_owned(),
            Some(json!({"compose": {"include": [{"system": "http://hl7.org/fhir/administrative-gender"}]}})),
        );
        known.insert(
            "b".to_owned(),
            Some(json!({"compose": {"include": [{"system": "http://snomed.info/sct",
                "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}]}})),
        );
        known.insert("c".to_owned(), None);
        assert_eq!(
            expand("a", &known),
            Expansion::Codes(vec![code("http://hl7.org/fhir/administrative-gender", None)])
        );
        assert!(matches!(expand("b", &known), Expansion::Fails(why) if why.contains("filter")));
        assert!(matches!(expand("c", &known), Expansion::Fails(why) if why.contains("no ValueSet")));
    }
}
