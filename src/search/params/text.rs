//! Text search: `_text` over the narrative and `_content` over the whole resource (search.html#text).
//! R4 leaves their matching to the server. Here both index the distinct words of their text,
//! normalised as strings are (lower case, accents removed) and split at every character that is
//! not a letter or digit, as rows of the string table. A search value is split the same way and
//! every one of its words must start a word of the resource (`:contains`: occur inside one;
//! `:exact`: be one), so `_content=blood pres` finds "Blood pressure panel". Words, not the whole
//! text, are indexed so that a search is an index range scan per word rather than a scan of text.

use super::ParseFailure;
use super::string::{StringMatch, normalize};
use crate::search::IndexValue;
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

/// The words of every string and number in `resource` except its `meta`, narrative included.
pub fn content_words(resource: &Value, push: &mut impl FnMut(IndexValue)) {
    let mut words = BTreeSet::new();
    collect(resource, None, &mut words);
    emit(words, push);
}

fn collect(value: &Value, key: Option<&str>, words: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if key == Some("div") => add_words(&strip_markup(s), words),
        // The type name is in every resource of the type; it says nothing about this one.
        Value::String(_) if key == Some("resourceType") => {}
        Value::String(s) => add_words(s, words),
        Value::Number(n) => add_words(&n.to_string(), words),
        Value::Array(items) => items.iter().for_each(|item| collect(item, key, words)),
        Value::Object(object) => {
            for (k, v) in object {
                if k != "meta" {
                    collect(v, Some(k), words);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
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
