//! Rules beyond the schema, checked by walking the resource with the type model:
//! - nested resources (`contained`, Bundle entries, Parameters) are validated against their own
//!   type, and a contained resource may not contain resources itself;
//! - `Reference.reference` of another form than `Type/id` (optionally `/_history/vid`),
//!   `Type?query` (conditional, in transactions), an absolute URL, `urn:uuid:`/`urn:oid:`, or
//!   `#id` of a contained resource is a warning: R4 recommends these forms without requiring them
//!   (a TestScript's fixtures name files, `fixtures/patient.json`), so it never refuses a write;
//! - narrative XHTML is a well-formed `div` in the XHTML namespace using only the elements the
//!   FHIR narrative rules allow, with no event-handler attributes and no `javascript:` URLs.

use super::{Findings, issue};
use crate::error::{Issue, IssueCode};
use crate::model::id::is_valid_id;
use crate::model::structure::{TypeDef, TypeModel};
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// Elements the R4 narrative rules allow in XHTML (narrative.html#xhtml).
const XHTML_ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "b",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
];

pub(super) fn check(resource: &Value, resource_type: &str, root: &str, found: &mut Findings) {
    let model = TypeModel::r4();
    if let (Value::Object(object), Some(type_def)) = (resource, model.get(resource_type)) {
        walk(object, type_def, root, found);
    }
}

fn walk(object: &Map<String, Value>, type_def: &TypeDef, path: &str, found: &mut Findings) {
    let model = TypeModel::r4();
    for (key, value) in object {
        let (name, is_extra) = match key.strip_prefix('_') {
            Some(base) => (base, true),
            None => (key.as_str(), false),
        };
        let Some((_, element_type)) = type_def.resolve(name) else {
            continue;
        };
        let element_type = if is_extra { "Element" } else { element_type };
        let items: Vec<(String, &Value)> = match value {
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}.{key}[{i}]"), v))
                .collect(),
            single => vec![(format!("{path}.{key}"), single)],
        };
        for (item_path, item) in items {
            if item.is_null() {
                continue;
            }
            if element_type == "xhtml" {
                if let Some(text) = item.as_str() {
                    check_xhtml(text, &item_path, &mut found.errors);
                }
            } else if model.is_a(element_type, "Resource") {
                if key == "contained" && item.get("contained").is_some() {
                    found.errors.push(issue(
                        IssueCode::Structure,
                        "a contained resource may not contain resources itself",
                        format!("{item_path}.contained"),
                    ));
                }
                super::check(item, &item_path, found);
            } else if let (Value::Object(child), Some(child_type)) = (item, model.get(element_type))
                && !model.is_primitive(element_type)
            {
                if element_type == "Reference"
                    && let Some(Value::String(reference)) = child.get("reference")
                {
                    check_reference(reference, &format!("{item_path}.reference"), &mut found.warnings);
                }
                walk(child, child_type, &item_path, found);
            }
        }
    }
}

fn check_reference(reference: &str, path: &str, warnings: &mut Vec<Issue>) {
    let absolute = ["http://", "https://", "urn:uuid:", "urn:oid:"]
        .iter()
        .any(|p| reference.starts_with(p));
    let local = reference.starts_with('#');
    let relative = || {
        if let Some((resource_type, _query)) = reference.split_once('?') {
            return crate::model::ResourceType::parse(resource_type).is_some();
        }
        let parts: Vec<&str> = reference.split('/').collect();
        match parts.as_slice() {
            [t, id] => crate::model::ResourceType::parse(t).is_some() && is_valid_id(id),
            [t, id, "_history", version] => {
                crate::model::ResourceType::parse(t).is_some() && is_valid_id(id) && is_valid_id(version)
            }
            _ => false,
        }
    };
    if !(absolute || local || relative()) {
        warnings.push(issue(
            IssueCode::Value,
            format!(
                "reference '{reference}' is not Type/id, an absolute URL, urn:uuid:, urn:oid:, or #id of a contained resource; a server cannot resolve it"
            ),
            path.to_owned(),
        ));
    }
}

fn check_xhtml(text: &str, path: &str, issues: &mut Vec<Issue>) {
    let mut problem = |message: String| issues.push(issue(IssueCode::Value, message, path.to_owned()));
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return problem(format!("the narrative is not well-formed XHTML: {e}")),
        };
        let (start, opens) = match &event {
            Event::Start(s) => (Some(s), true),
            Event::Empty(s) => (Some(s), false),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                (None, false)
            }
            Event::Eof => break,
            Event::Text(t) if depth == 0 && !t.as_ref().trim().is_empty() => {
                return problem("text outside the narrative's div".into());
            }
            // Outside the div only white space and comments may stand: anything else (an entity
            // reference, CDATA, a DOCTYPE, a processing instruction) would break the XML the
            // narrative is copied into.
            Event::GeneralRef(_) | Event::CData(_) | Event::DocType(_) | Event::PI(_) | Event::Decl(_)
                if depth == 0 =>
            {
                return problem("only the narrative's div may stand at its top level".into());
            }
            _ => (None, false),
        };
        let Some(start) = start else { continue };
        let name = start.local_name().as_ref().to_owned();
        if depth == 0 {
            if seen_root || name != "div" {
                return problem("the narrative must be a single <div> element".into());
            }
            seen_root = true;
            if attribute(start, "xmlns").as_deref() != Some("http://www.w3.org/1999/xhtml") {
                problem(
                    "the narrative div must be in the XHTML namespace (xmlns=\"http://www.w3.org/1999/xhtml\")".into(),
                );
            }
        }
        if !XHTML_ELEMENTS.contains(&name.as_str()) {
            problem(format!("<{name}> is not allowed in narrative"));
        }
        for attr in start.attributes().flatten() {
            let key = attr.key.as_ref().to_ascii_lowercase();
            let value = attr.value.trim().to_ascii_lowercase();
            if key.starts_with("on") {
                problem(format!("the event attribute '{key}' is not allowed in narrative"));
            }
            if matches!(key.as_str(), "href" | "src") && value.starts_with("javascript:") {
                problem("javascript: URLs are not allowed in narrative".into());
            }
        }
        if opens {
            depth += 1;
        }
    }
    if !seen_root {
        problem("the narrative must be a <div> element".into());
    }
}

fn attribute(start: &BytesStart<'_>, name: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xhtml_problems(text: &str) -> usize {
        let mut issues = Vec::new();
        check_xhtml(text, "Patient.text.div", &mut issues);
        issues.len()
    }

    #[test]
    fn narrative_must_be_safe_xhtml() {
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>ok <b>x</b></p></div>"#),
            0
        );
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>"#),
            1
        );
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>"#),
            1
        );
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href=" JavaScript:alert(1)">a</a></div>"#),
            1
        );
        assert_eq!(xhtml_problems(r#"<div><p>no namespace</p></div>"#), 1);
        assert_eq!(
            xhtml_problems(r#"<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>"#),
            1
        );
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed</div>"#),
            1
        );
    }

    #[test]
    fn nothing_but_white_space_and_comments_around_the_div() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml">x</div>"#;
        for trailer in ["&amp;", "<![CDATA[x]]>", "<!DOCTYPE a>", "<?pi x?>"] {
            assert_eq!(xhtml_problems(&format!("{div}{trailer}")), 1, "{trailer} after the div");
        }
        assert_eq!(xhtml_problems(&format!("{div} <!-- a comment --> ")), 0);
        assert_eq!(
            xhtml_problems(r#"<div xmlns="http://www.w3.org/1999/xhtml">a &amp; b &#169;</div>"#),
            0
        );
    }

    #[test]
    fn reference_formats() {
        let mut issues = Vec::new();
        for good in [
            "Patient/1",
            "Patient/1/_history/2",
            "http://x.org/fhir/Patient/1",
            "urn:uuid:abc",
            "#c1",
            "Patient?identifier=a|b",
        ] {
            check_reference(good, "r", &mut issues);
        }
        assert!(issues.is_empty(), "{issues:?}");
        for bad in ["Patient", "Foo/1", "Patient/a_b", "patient/1", "Patient/1/2"] {
            check_reference(bad, "r", &mut issues);
        }
        assert_eq!(issues.len(), 5);
    }
}
