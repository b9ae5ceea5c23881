//! References between the entries of a transaction or batch Bundle — R4 http.html#trules.
//!
//! A transaction's entries name each other by `fullUrl` (`urn:uuid:…`, `urn:oid:…`, or an
//! absolute URL). Once the server has chosen each new resource's id, every place that used a
//! `fullUrl` is rewritten to the resource's `Type/id`: `Reference.reference` anywhere (nested
//! elements, extensions, contained resources), elements of the types `uri`, `url`, `canonical`,
//! `oid` and `uuid`, and `href`/`src` links in the narrative. The element types come from the R4
//! type model, so an `Identifier.value` that happens to equal a `fullUrl` (a string, not a uri) is
//! left alone.
//!
//! The walk is also used to find conditional references (`Patient?identifier=…`), which the
//! transaction resolves by searching, and, in a batch, references to other entries, which the
//! spec forbids there.

use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::structure::TypeModel;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Where a string sits in a resource, as far as rewriting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `Reference.reference`.
    Reference,
    /// An element of type `uri`, `url`, `canonical`, `oid` or `uuid`.
    Uri,
    /// `Narrative.div`, whose `href`/`src` attributes may hold references.
    Narrative,
}

/// Visits every string of `resource` in a slot that may hold a reference, with its FHIRPath-style
/// location (`Observation.subject.reference`). `visit` may change the string.
pub fn visit_slots(
    resource: &mut Map<String, Value>,
    visit: &mut dyn FnMut(Slot, &mut String, &str) -> Result<()>,
) -> Result<()> {
    let Some(type_name) = resource.get("resourceType").and_then(Value::as_str).map(str::to_owned) else {
        return Ok(());
    };
    let mut path = type_name.clone();
    walk_object(resource, &type_name, &mut path, visit)
}

fn walk_object(
    object: &mut Map<String, Value>,
    type_name: &str,
    path: &mut String,
    visit: &mut dyn FnMut(Slot, &mut String, &str) -> Result<()>,
) -> Result<()> {
    let model = TypeModel::r4();
    // A resource inside a resource (contained, Bundle.entry.resource) names its own type.
    let own_type = object.get("resourceType").and_then(Value::as_str).map(str::to_owned);
    let type_name = own_type.as_deref().unwrap_or(type_name);
    let Some(definition) = model.get(type_name) else {
        return Ok(());
    };
    for (key, child) in object.iter_mut() {
        if key == "resourceType" {
            continue;
        }
        // `_birthDate` holds the extensions of a primitive: an Element.
        let (element_type, slot) = match key.strip_prefix('_') {
            Some(_) => ("Element", None),
            None => match definition.resolve(key) {
                Some((_, element_type)) => (element_type, slot_of(type_name, key, element_type)),
                None => continue,
            },
        };
        let len = path.len();
        path.push('.');
        path.push_str(key);
        match (slot, child) {
            (Some(slot), Value::String(text)) => visit(slot, text, path)?,
            (Some(slot), Value::Array(items)) => {
                for (index, item) in items.iter_mut().enumerate() {
                    if let Value::String(text) = item {
                        let item_len = path.len();
                        path.push_str(&format!("[{index}]"));
                        visit(slot, text, path)?;
                        path.truncate(item_len);
                    }
                }
            }
            (None, Value::Object(inner)) => walk_object(inner, element_type, path, visit)?,
            (None, Value::Array(items)) => {
                for (index, item) in items.iter_mut().enumerate() {
                    if let Value::Object(inner) = item {
                        let item_len = path.len();
                        path.push_str(&format!("[{index}]"));
                        walk_object(inner, element_type, path, visit)?;
                        path.truncate(item_len);
                    }
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
    Ok(())
}

fn slot_of(parent_type: &str, key: &str, element_type: &str) -> Option<Slot> {
    match element_type {
        "string" if parent_type == "Reference" && key == "reference" => Some(Slot::Reference),
        "uri" | "url" | "canonical" | "oid" | "uuid" => Some(Slot::Uri),
        "xhtml" => Some(Slot::Narrative),
        _ => None,
    }
}

/// Each rewritten `fullUrl`, and what it now stands for (`Patient/123`).
#[derive(Debug, Default, Clone)]
pub struct Assigned {
    targets: HashMap<String, String>,
}

impl Assigned {
    pub fn insert(&mut self, full_url: &str, target: String) {
        self.targets.insert(full_url.to_owned(), target);
    }

    pub fn get(&self, full_url: &str) -> Option<&str> {
        self.targets.get(full_url).map(String::as_str)
    }

    pub fn contains(&self, full_url: &str) -> bool {
        self.targets.contains_key(full_url)
    }
}

/// Whether `text` is a reference to an entry only a Bundle can resolve.
pub fn is_bundle_local(text: &str) -> bool {
    text.starts_with("urn:uuid:") || text.starts_with("urn:oid:")
}

/// Rewrites the references of `resource` (the entry whose `fullUrl` is `own_full_url`) that
/// `assigned` or `conditional` (a conditional reference → `Type/id`) settle. A `urn:uuid:`
/// or `urn:oid:` reference that no entry has as `fullUrl` is a `400`.
pub fn rewrite(
    resource: &mut Map<String, Value>,
    own_full_url: Option<&str>,
    assigned: &Assigned,
    conditional: &HashMap<String, String>,
) -> Result<()> {
    // A relative reference in an entry with an absolute fullUrl is relative to that fullUrl's
    // base: `Patient/1` in `http://a/fhir/Observation/2` means `http://a/fhir/Patient/1`.
    let own_base = own_full_url.and_then(absolute_base);
    visit_slots(resource, &mut |slot, text, path| {
        match slot {
            Slot::Reference => {
                let (target, fragment) = match text.split_once('#') {
                    Some((target, fragment)) if !target.is_empty() => (target, Some(fragment)),
                    _ => (text.as_str(), None),
                };
                let resolved = assigned
                    .get(target)
                    .or_else(|| {
                        own_base
                            .as_ref()
                            .and_then(|base| assigned.get(&format!("{base}/{target}")))
                    })
                    .or_else(|| conditional.get(target).map(String::as_str));
                match resolved {
                    Some(resolved) => {
                        *text = match fragment {
                            Some(fragment) => format!("{resolved}#{fragment}"),
                            None => resolved.to_owned(),
                        };
                    }
                    None if is_bundle_local(target) => {
                        return Err(Error::new(
                            ErrorKind::Invalid,
                            IssueCode::NotFound,
                            format!(
                                "the reference '{target}' names no entry of the Bundle (no entry has it as fullUrl)"
                            ),
                        )
                        .at(path));
                    }
                    None => {}
                }
            }
            Slot::Uri => {
                if let Some(resolved) = assigned.get(text) {
                    *text = resolved.to_owned();
                }
            }
            Slot::Narrative => {
                if let Some(rewritten) = rewrite_links(text, assigned) {
                    *text = rewritten;
                }
            }
        }
        Ok(())
    })
}

/// Every conditional reference (`Type?query`) among the `Reference.reference`s of `resource`.
pub fn conditional_references(resource: &mut Map<String, Value>) -> Vec<String> {
    let mut found = Vec::new();
    let _ = visit_slots(resource, &mut |slot, text, _| {
        if slot == Slot::Reference && super::condition::Condition::parse_url(text).is_some() {
            found.push(text.clone());
        }
        Ok(())
    });
    found
}

/// The first `Reference.reference` of `resource` that names another entry of the Bundle (a key
/// of `assigned`), with its location.
pub fn first_reference_to(resource: &mut Map<String, Value>, assigned: &Assigned) -> Option<(String, String)> {
    let mut found = None;
    let _ = visit_slots(resource, &mut |slot, text, path| {
        if found.is_none() && slot == Slot::Reference && assigned.contains(text.split('#').next().unwrap_or(text)) {
            found = Some((text.clone(), path.to_owned()));
        }
        Ok(())
    });
    found
}

/// `http://a/fhir` for `http://a/fhir/Observation/2` (the base of an absolute RESTful URL).
fn absolute_base(full_url: &str) -> Option<String> {
    if !(full_url.starts_with("http://") || full_url.starts_with("https://")) {
        return None;
    }
    let mut parts = full_url.trim_end_matches('/').rsplitn(3, '/');
    let _id = parts.next()?;
    let _type = parts.next()?;
    parts.next().map(str::to_owned)
}

/// `div` with each `href="…"` / `src="…"` that names a rewritten fullUrl replaced; `None` when
/// nothing changed.
fn rewrite_links(div: &str, assigned: &Assigned) -> Option<String> {
    let mut out = String::with_capacity(div.len());
    let mut rest = div;
    let mut changed = false;
    while let Some(at) = find_link_attribute(rest) {
        let (before, from_quote) = rest.split_at(at);
        let quote = from_quote.as_bytes()[0] as char;
        let value_and_after = &from_quote[1..];
        let Some(end) = value_and_after.find(quote) else {
            break;
        };
        let value = &value_and_after[..end];
        out.push_str(before);
        out.push(quote);
        match assigned.get(value) {
            Some(target) => {
                out.push_str(target);
                changed = true;
            }
            None => out.push_str(value),
        }
        out.push(quote);
        rest = &value_and_after[end + 1..];
    }
    if !changed {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

/// The position of the opening quote of the next `href=` or `src=` attribute value in `text`.
fn find_link_attribute(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find('=') {
        let at = from + found;
        let name_end = text[..at].trim_end();
        let is_link = ["href", "src"].iter().any(|name| {
            name_end.ends_with(name)
                && name_end[..name_end.len() - name.len()]
                    .chars()
                    .last()
                    .is_some_and(char::is_whitespace)
        });
        let after = text[at + 1..].trim_start();
        let quote_at = text.len() - after.len();
        if is_link && (after.starts_with('"') || after.starts_with('\'')) {
            return Some(quote_at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn assigned() -> Assigned {
        let mut a = Assigned::default();
        a.insert("urn:uuid:p1", "Patient/abc".into());
        a.insert("http://other/fhir/Practitioner/7", "Practitioner/xyz".into());
        a
    }

    #[test]
    fn rewrites_references_everywhere_but_strings_that_are_not_uris() {
        let mut resource = object(json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:p1"},
            "performer": [{"reference": "Practitioner/7"}, {"reference": "urn:uuid:p1#frag"}],
            "extension": [{"url": "http://x", "valueReference": {"reference": "urn:uuid:p1"}}],
            "_status": {"extension": [{"url": "http://y", "valueUri": "urn:uuid:p1"}]},
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "urn:uuid:p1"}]}],
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:p1"}],
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:p1\">p</a> <img src='urn:uuid:other'/></div>"}
        }));
        rewrite(
            &mut resource,
            Some("http://other/fhir/Observation/1"),
            &assigned(),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(resource["subject"]["reference"], "Patient/abc");
        assert_eq!(
            resource["performer"][0]["reference"], "Practitioner/xyz",
            "relative to an absolute fullUrl"
        );
        assert_eq!(resource["performer"][1]["reference"], "Patient/abc#frag");
        assert_eq!(resource["extension"][0]["valueReference"]["reference"], "Patient/abc");
        assert_eq!(resource["_status"]["extension"][0]["valueUri"], "Patient/abc");
        assert_eq!(resource["contained"][0]["target"][0]["reference"], "Patient/abc");
        assert_eq!(
            resource["identifier"][0]["value"], "urn:uuid:p1",
            "Identifier.value is a string"
        );
        assert_eq!(
            resource["text"]["div"],
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"Patient/abc\">p</a> <img src='urn:uuid:other'/></div>"
        );
    }

    #[test]
    fn an_unknown_urn_reference_is_refused_with_its_location() {
        let mut resource = object(json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:nobody"}
        }));
        let e = rewrite(&mut resource, None, &assigned(), &HashMap::new()).unwrap_err();
        assert_eq!(e.issues[0].expression.as_deref(), Some("Observation.subject.reference"));
        assert!(e.issues[0].diagnostics.contains("urn:uuid:nobody"));
    }

    #[test]
    fn finds_conditional_references_and_references_to_other_entries() {
        let mut resource = object(json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient?identifier=http://x|1"},
            "performer": [{"reference": "urn:uuid:p1"}]
        }));
        assert_eq!(
            conditional_references(&mut resource),
            vec!["Patient?identifier=http://x|1".to_owned()]
        );
        assert_eq!(
            first_reference_to(&mut resource, &assigned()),
            Some((
                "urn:uuid:p1".to_owned(),
                "Observation.performer[0].reference".to_owned()
            ))
        );
        let mut conditional = HashMap::new();
        conditional.insert("Patient?identifier=http://x|1".to_owned(), "Patient/9".to_owned());
        rewrite(&mut resource, None, &assigned(), &conditional).unwrap();
        assert_eq!(resource["subject"]["reference"], "Patient/9");
    }

    #[test]
    fn the_base_of_an_absolute_full_url() {
        assert_eq!(
            absolute_base("http://a/fhir/Patient/1").as_deref(),
            Some("http://a/fhir")
        );
        assert_eq!(absolute_base("urn:uuid:1"), None);
    }
}
