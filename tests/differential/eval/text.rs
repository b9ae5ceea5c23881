//! `_text` and `_content` (search.html#text). R4 leaves how they match to the server; this
//! server documents (README, Search) that they match words: the text is normalised as strings
//! are, split at every character that is not a letter or digit, and every word of a search value
//! must start a word of the text (`:contains`: occur in one; `:exact`: be one). `_text` reads the
//! narrative; `_content` every string and number of the resource, the narrative as text, except
//! its `meta`, the type name, `id` and `reference` members, an extension's `url`, and dates and
//! times (strings that start `YYYY-MM`). Words longer than `MAX_WORD_CHARS` are not kept, and a resource
//! with more than `MAX_WORDS` distinct words keeps only some of them (which ones is the server's
//! business, so the generator leaves such resources' types out).

use crate::rules::{split_escaped, unescape};
use crate::values::normalize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The server's documented limits on the words it keeps.
pub const MAX_WORD_CHARS: usize = 64;
pub const MAX_WORDS: usize = 4096;

/// One word of a search value, and how it must meet a word of the text.
#[derive(Debug, Clone)]
pub enum WordSearch {
    Prefix(String),
    Contains(String),
    Exact(String),
}

impl WordSearch {
    pub fn matches(&self, words: &BTreeSet<String>) -> bool {
        match self {
            WordSearch::Prefix(p) => words
                .range(p.clone()..)
                .next()
                .is_some_and(|w| w.starts_with(p.as_str())),
            WordSearch::Contains(part) => words.iter().any(|w| w.contains(part.as_str())),
            WordSearch::Exact(word) => words.contains(word),
        }
    }
}

/// A text search value: comma-separated alternatives, each a list of words that must all match.
pub fn parse(value: &str, modifier: Option<&str>) -> Result<Vec<Vec<WordSearch>>, String> {
    let make: fn(String) -> WordSearch = match modifier {
        None => WordSearch::Prefix,
        Some("contains") => WordSearch::Contains,
        Some("exact") => WordSearch::Exact,
        Some(other) => return Err(format!("text search with :{other} is not evaluated")),
    };
    split_escaped(value, ',')
        .iter()
        .map(|part| {
            let words: Vec<WordSearch> = words(&unescape(part)).map(make).collect();
            if words.is_empty() {
                Err(format!("no word in {part:?}"))
            } else {
                Ok(words)
            }
        })
        .collect()
}

/// The normalised words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> {
    normalize(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
}

/// The words of the narrative, for `_text`.
pub fn narrative_words(resource: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(div) = resource.pointer("/text/div").and_then(Value::as_str) {
        keep(&xhtml_text(div), &mut out);
    }
    out
}

/// The words of the whole resource, for `_content`.
pub fn content_words(resource: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(resource, None, &mut out);
    out
}

fn walk(value: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
    match (value, key) {
        (Value::String(div), Some("div")) => keep(&xhtml_text(div), out),
        (Value::String(s), _) if starts_like_a_date(s) => {}
        (Value::String(s), _) => keep(s, out),
        (Value::Number(n), _) => keep(&n.to_string(), out),
        (Value::Array(items), _) => items.iter().for_each(|item| walk(item, key, out)),
        (Value::Object(object), _) => {
            let in_extension = key == Some("extension") || key == Some("modifierExtension");
            for (k, v) in object {
                let left_out =
                    ["meta", "resourceType", "id", "reference"].contains(&k.as_str()) || (in_extension && k == "url");
                if !left_out {
                    walk(v, Some(k), out);
                }
            }
        }
        (Value::Bool(_) | Value::Null, _) => {}
    }
}

/// `YYYY-MM…`: a date, dateTime or instant with at least a month.
fn starts_like_a_date(s: &str) -> bool {
    let chars: Vec<char> = s.chars().take(7).collect();
    chars.len() == 7
        && chars
            .iter()
            .enumerate()
            .all(|(i, c)| if i == 4 { *c == '-' } else { c.is_ascii_digit() })
}

fn keep(text: &str, out: &mut BTreeSet<String>) {
    out.extend(words(text).filter(|w| w.chars().count() <= MAX_WORD_CHARS));
}

/// The character data of an XHTML fragment: elements, comments and attributes (quoted values
/// may hold `>`) are word breaks; character references are decoded.
fn xhtml_text(xhtml: &str) -> String {
    let mut text = String::with_capacity(xhtml.len());
    let mut rest = xhtml;
    while let Some(c) = rest.chars().next() {
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.split_once("-->").map_or("", |(_, after)| after);
            text.push(' ');
        } else if c == '<' {
            let mut quote = None;
            let end = rest
                .char_indices()
                .find(|&(_, ch)| match quote {
                    Some(q) if ch == q => {
                        quote = None;
                        false
                    }
                    Some(_) => false,
                    None if ch == '"' || ch == '\'' => {
                        quote = Some(ch);
                        false
                    }
                    None => ch == '>',
                })
                .map_or(rest.len(), |(i, _)| i + 1);
            rest = &rest[end..];
            text.push(' ');
        } else if c == '&'
            && let Some((name, after)) = rest[1..].split_once(';')
            && let Some(decoded) = entity(name)
        {
            text.push(decoded);
            rest = after;
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    text
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn narrative_text_leaves_markup_out_and_decodes_references() {
        let patient = json!({"resourceType": "Patient", "text": {"div":
            "<div title=\"a > b\"><b>Peter</b>Chalmers &amp; Zo&#235; <!-- hidden --></div>"}});
        let words: Vec<String> = narrative_words(&patient).into_iter().collect();
        assert_eq!(words, ["chalmers", "peter", "zoe"]);
    }
}
