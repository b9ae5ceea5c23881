//! String functions: searching, slicing, case, replacement, regular expressions (through
//! `regex-automata`, which runs in linear time, so a hostile pattern cannot stall the server),
//! `split`/`join`/`trim`, and the `encode`/`decode`/`escape`/`unescape` families.

use super::{boolean, only};
use crate::fhirpath::EvalError;
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::value::Item;
use regex_automata::meta::Regex;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Compiled patterns: expressions are evaluated many times with the same literal pattern.
    static REGEX_CACHE: RefCell<HashMap<(String, bool), Regex>> = RefCell::new(HashMap::new());
}

/// Compiles `pattern` with `.` matching newlines (FHIRPath's single-line mode); `full` anchors it.
fn regex(pattern: &str, full: bool) -> Result<Regex, EvalError> {
    let key = (pattern.to_owned(), full);
    if let Some(found) = REGEX_CACHE.with(|cache| cache.borrow().get(&key).cloned()) {
        return Ok(found);
    }
    let source = if full {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_owned()
    };
    let compiled = Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().dot_matches_new_line(true))
        .build(&source)
        .map_err(|e| error(format!("invalid regular expression: {e}")))?;
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
    });
    Ok(compiled)
}

fn replace_matches(text: &str, pattern: &str, substitution: &str) -> Result<String, EvalError> {
    if pattern.is_empty() {
        return Ok(text.to_owned());
    }
    let re = regex(pattern, false)?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Some(m) = caps.get_match() else { continue };
        out.push_str(&text[last..m.start()]);
        caps.interpolate_string_into(text, substitution, &mut out);
        last = m.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8], url: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let c = BASE64[(n >> (18 - 6 * i) & 63) as usize];
                out.push(match (url, c) {
                    (true, b'+') => '-',
                    (true, b'/') => '_',
                    _ => c as char,
                });
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'-' => 62,
            b'_' => 63,
            _ => BASE64.iter().position(|b| *b == c)? as u32,
        };
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let entity = rest.find(';').map(|end| &rest[1..end]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (decoded, entity) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &rest[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_json(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Resolves JSON backslash escapes; other characters (quotes included) pass through.
fn unescape_json(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            other => other,
        });
    }
    Some(out)
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn strings(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        if func == Func::Join {
            let separator = self.string_arg(args, 0, env)?.unwrap_or_default();
            let mut parts = Vec::with_capacity(focus.len());
            for item in &focus {
                match item.to_system() {
                    Some(Item::String(s)) => parts.push(s.into_owned()),
                    _ => return Err(error("join() needs strings")),
                }
            }
            return Ok(vec![Item::string(parts.join(&separator))]);
        }
        let text = match only(&focus)? {
            None => return Ok(Vec::new()),
            Some(Item::String(s)) => s,
            Some(other) => {
                return Err(error(format!(
                    "{}() needs a string, found {}",
                    func.name(),
                    other.type_name().1
                )));
            }
        };
        let string = |s: String| Ok(vec![Item::string(s)]);
        // Functions whose first argument is a string return empty when that argument is empty.
        macro_rules! arg {
            ($i:expr) => {
                match self.string_arg(args, $i, env)? {
                    Some(value) => value,
                    None => return Ok(Vec::new()),
                }
            };
        }
        match func {
            Func::IndexOf | Func::LastIndexOf => {
                let needle = arg!(0);
                let found = if func == Func::IndexOf {
                    text.find(&needle)
                } else {
                    text.rfind(&needle)
                };
                let index = found.map(|at| text[..at].chars().count() as i64).unwrap_or(-1);
                Ok(vec![Item::Integer(index)])
            }
            Func::Substring => {
                let Some(start) = self.integer_arg(args, 0, env)? else {
                    return Ok(Vec::new());
                };
                let length = self.integer_arg(args, 1, env)?;
                let count = text.chars().count() as i64;
                if start < 0 || start >= count {
                    return Ok(Vec::new());
                }
                let take = length.map(|l| l.max(0)).unwrap_or(count) as usize;
                string(text.chars().skip(start as usize).take(take).collect())
            }
            Func::StartsWith => boolean(text.starts_with(&arg!(0))),
            Func::EndsWith => boolean(text.ends_with(&arg!(0))),
            Func::Contains => boolean(text.contains(&arg!(0))),
            Func::Upper => string(text.to_uppercase()),
            Func::Lower => string(text.to_lowercase()),
            Func::Replace => {
                let (pattern, substitution) = (arg!(0), arg!(1));
                string(text.replace(&pattern, &substitution))
            }
            Func::Matches | Func::MatchesFull => {
                let pattern = arg!(0);
                boolean(regex(&pattern, func == Func::MatchesFull)?.is_match(text.as_ref()))
            }
            Func::ReplaceMatches => {
                let (pattern, substitution) = (arg!(0), arg!(1));
                string(replace_matches(&text, &pattern, &substitution)?)
            }
            Func::Length => Ok(vec![Item::Integer(text.chars().count() as i64)]),
            Func::ToChars => Ok(text.chars().map(|c| Item::string(c.to_string())).collect()),
            Func::Trim => string(text.trim().to_owned()),
            Func::Split => {
                let separator = arg!(0);
                Ok(text
                    .split(separator.as_str())
                    .map(|part| Item::string(part.to_owned()))
                    .collect())
            }
            Func::Encode | Func::Decode | Func::Escape | Func::Unescape => {
                let format = arg!(0);
                let result = match (func, format.as_str()) {
                    (Func::Encode, "base64") => Some(base64_encode(text.as_bytes(), false)),
                    (Func::Encode, "urlbase64") => Some(base64_encode(text.as_bytes(), true)),
                    (Func::Encode, "hex") => Some(text.bytes().map(|b| format!("{b:02x}")).collect()),
                    (Func::Decode, "base64" | "urlbase64") => {
                        base64_decode(&text).and_then(|bytes| String::from_utf8(bytes).ok())
                    }
                    (Func::Decode, "hex") => (0..text.len())
                        .step_by(2)
                        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .and_then(|bytes| String::from_utf8(bytes).ok()),
                    (Func::Escape, "html") => Some(escape_html(&text)),
                    (Func::Escape, "json") => Some(escape_json(&text)),
                    (Func::Unescape, "html") => Some(unescape_html(&text)),
                    (Func::Unescape, "json") => unescape_json(&text),
                    _ => return Err(error(format!("unknown format '{format}' for {}()", func.name()))),
                };
                Ok(result.map(Item::string).into_iter().collect())
            }
            _ => unreachable!("not a string function"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_encode(b"subjects?_d", false), "c3ViamVjdHM/X2Q=");
        assert_eq!(base64_encode(b"subjects?_d", true), "c3ViamVjdHM_X2Q=");
        assert_eq!(base64_decode("dGVzdA==").unwrap(), b"test");
    }

    #[test]
    fn replace_matches_substitutes_groups() {
        assert_eq!(replace_matches("abc123", "[0-9]", "-").unwrap(), "abc---");
        assert_eq!(
            replace_matches("2019-01-31", "(\\d+)-(\\d+)-(\\d+)", "$3/$2/$1").unwrap(),
            "31/01/2019"
        );
        assert_eq!(replace_matches("abc", "", "x").unwrap(), "abc");
    }

    #[test]
    fn html_escapes_round_trip() {
        assert_eq!(escape_html("\"1<2\""), "&quot;1&lt;2&quot;");
        assert_eq!(unescape_html("&quot;1&lt;2&quot; &amp &#65;"), "\"1<2\" &amp A");
    }
}
