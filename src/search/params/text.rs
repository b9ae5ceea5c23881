//! Text search: `_text` over the narrative and `_content` over the whole resource (search.html#text).
//! R4 leaves their matching to the server. Here both index the distinct words of their text,
//! normalised as strings are (lower case, accents removed) and split at every character that is
//! not a letter or digit, as rows of the string table. A search value is split the same way and
//! every one of its words must start a word of the resource (`:contains`: occur inside one;
//! `:exact`: be one), so `_content=blood pres` finds "Blood pressure panel". Words, not the whole
//! text, are indexed so that a search is an index range scan per word rather than a scan of text.

use super::ParseFailure;
use super::string::{StringMatch, normalize};
use crate::search::index_row::IndexValue;
use serde_json::Value;
use std::collections::BTreeSet;

/// Longer "words" (base64 data, long identifiers) are not worth indexing.
const MAX_WORD_CHARS: usize = 64;
/// A resource's distinct words beyond this many are left out, so one huge resource cannot
/// swamp the index.
const MAX_WORDS: usize = 4096;

/// The words of the narrative (`text.div`) of `resource`.
pub fn narrative_words(resource: &Value, push: &mut impl FnMut(IndexValue)) {
    let mut words = BTreeSet::new();
    if let Some(div) = resource.pointer("/text/div").and_then(Value::as_str) {
        add_words(&strip_markup(div), &mut words);
    }
    emit(words, push);
}

/// The words of every string and number in `resource`, narrative included, except what is not
/// its text: the type name and `meta`; ids and `reference`s (split into words, a UUID is five
/// meaningless "words"; `_id` and the reference parameters search them); the `url` naming an
/// extension; and dates and times (`date` parameters search them by range, and as words they are
/// numbers without meaning). Without these a resource has about half the words, and `_content`
/// was four fifths of all index rows.
pub fn content_words(resource: &Value, push: &mut impl FnMut(IndexValue)) {
    let mut words = BTreeSet::new();
    collect(resource, None, &mut words);
    emit(words, push);
}

fn collect(value: &Value, key: Option<&str>, words: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if key == Some("div") => add_words(&strip_markup(s), words),
        Value::String(s) if is_date_or_time(s) => {}
        Value::String(s) => add_words(s, words),
        Value::Number(n) => add_words(&n.to_string(), words),
        Value::Array(items) => items.iter().for_each(|item| collect(item, key, words)),
        Value::Object(object) => {
            let extension = matches!(key, Some("extension" | "modifierExtension"));
            for (k, v) in object {
                let skipped = match k.as_str() {
                    "meta" | "resourceType" | "id" | "reference" => true,
                    "url" => extension,
                    _ => false,
                };
                if !skipped {
                    collect(v, Some(k), words);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// A FHIR date, dateTime or instant with at least a month (`2020-01`, `2020-01-02T10:00:00Z`).
fn is_date_or_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 7 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5..7].iter().all(u8::is_ascii_digit)
}

fn emit(words: BTreeSet<String>, push: &mut impl FnMut(IndexValue)) {
    for word in words {
        push(IndexValue::String {
            exact: word.clone(),
            normalized: word,
        });
    }
}

fn add_words(text: &str, words: &mut BTreeSet<String>) {
    for word in split_words(text) {
        if words.len() >= MAX_WORDS {
            return;
        }
        if word.chars().count() <= MAX_WORD_CHARS {
            words.insert(word);
        }
    }
}

/// The normalised words of `text`.
fn split_words(text: &str) -> Vec<String> {
    normalize(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The text of XHTML: tags removed (each counts as a word break), the common entities decoded.
fn strip_markup(xhtml: &str) -> String {
    let mut text = String::with_capacity(xhtml.len());
    let mut in_tag = false;
    for c in xhtml.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The words a value asks for, each as a match on one word row; all of them must match.
pub fn parse(value: &str, modifier: Option<&str>) -> Result<Vec<StringMatch>, ParseFailure> {
    let words = split_words(&super::unescape(value));
    if words.is_empty() {
        return Err(ParseFailure::Invalid("a text search needs at least one word".into()));
    }
    let to_match: fn(String) -> StringMatch = match modifier {
        None => StringMatch::StartsWith,
        Some("contains") => StringMatch::Contains,
        Some("exact") => StringMatch::Exact,
        Some(_) => return Err(ParseFailure::UnsupportedModifier),
    };
    Ok(words.into_iter().map(to_match).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(f: fn(&Value, &mut dyn FnMut(IndexValue)), resource: &Value) -> Vec<String> {
        let mut out = Vec::new();
        f(resource, &mut |v| {
            if let IndexValue::String { normalized, .. } = v {
                out.push(normalized)
            }
        });
        out
    }

    fn narrative(resource: &Value, push: &mut dyn FnMut(IndexValue)) {
        narrative_words(resource, &mut |v| push(v));
    }

    fn content(resource: &Value, push: &mut dyn FnMut(IndexValue)) {
        content_words(resource, &mut |v| push(v));
    }

    #[test]
    fn narrative_words_come_from_the_div_without_markup() {
        let patient = json!({"resourceType": "Patient",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>Peter</b>Chalmers &amp; Zoë</div>"},
            "name": [{"family": "Hidden"}]});
        assert_eq!(words(narrative, &patient), vec!["chalmers", "peter", "zoe"]);
        let content_words = words(content, &patient);
        assert!(content_words.contains(&"hidden".to_owned()));
        assert!(content_words.contains(&"peter".to_owned()));
        assert!(!content_words.contains(&"patient".to_owned()), "{content_words:?}");
        assert!(!content_words.contains(&"div".to_owned()), "markup is not text");
    }

    #[test]
    fn content_words_leave_out_ids_references_extension_urls_and_dates() {
        let observation = json!({"resourceType": "Observation", "id": "3e2c4e95-a59a",
            "extension": [{"url": "http://example.org/fhir/StructureDefinition/shift", "valueString": "Night"}],
            "subject": {"reference": "Patient/777056d8-6c9a", "display": "Ann Lee"},
            "effectiveDateTime": "1975-12-30T03:19:20+00:00", "issued": "2020-01",
            "code": {"coding": [{"id": "c1", "system": "http://loinc.org", "code": "72166-2"}]},
            "valueQuantity": {"value": 7.5, "unit": "kg"}, "note": [{"text": "Seen in 1975"}]});
        assert_eq!(
            words(content, &observation),
            vec![
                "1975", "2", "5", "72166", "7", "ann", "in", "kg", "lee", "loinc", "night", "org", "http", "seen"
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_word_of_a_value_is_asked_for() {
        assert_eq!(
            parse("Blood  pres", None).unwrap(),
            vec![
                StringMatch::StartsWith("blood".into()),
                StringMatch::StartsWith("pres".into())
            ]
        );
        assert!(matches!(parse(" - ", None), Err(ParseFailure::Invalid(_))));
        assert!(matches!(
            parse("x", Some("below")),
            Err(ParseFailure::UnsupportedModifier)
        ));
    }
}
