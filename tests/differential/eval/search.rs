//! Search values: one comma-separated part of a parameter's value parsed by the rules of its
//! type (search.html#ptypes), and whether it matches one value of a resource.

use super::Evaluator;
use super::value_sets::ValueSetRule;
use crate::defs::Kind;
use crate::rules::{
    NumberSearch, Prefix, date_matches, number_matches, number_search, split_escaped, split_prefix, unescape,
};
use crate::values::{Val, date_range, normalize};
use fhir_server::fhirpath::Expression;
use std::rc::Rc;

/// One typed search value.
#[derive(Debug, Clone)]
pub(super) enum Search {
    StartsWith(String),
    Exact(String),
    Contains(String),
    Code(String),
    SystemCode(String, String),
    NoSystemCode(String),
    System(String),
    Text(String),
    Date(Prefix, i64, i64),
    Number(NumberSearch),
    Quantity(NumberSearch, Option<String>, Option<String>),
    /// A local target: `Type/id`, or an id (of any type unless a type modifier says one).
    Local(Option<String>, String),
    Url(String),
    /// `:identifier` on a reference: a token search (`Code` … `System`) on `Reference.identifier`.
    RefIdentifier(Box<Search>),
    /// `:of-type`: an Identifier whose type has the coding `(system, code)` and whose value is given.
    OfType(String, String, String),
    UriEquals(String),
    UriBelow(String),
    UriAbove(String),
    /// `:in` (and, negated around the whole condition, `:not-in`): a code of this value set.
    InValueSet(Rc<ValueSetRule>),
}

impl Evaluator<'_> {
    pub(super) fn parse_search(&self, kind: Kind, modifier: Option<&str>, value: &str) -> Result<Search, String> {
        Ok(match (kind, modifier) {
            (Kind::String, None) => Search::StartsWith(normalize(&unescape(value))),
            (Kind::String, Some("exact")) => Search::Exact(unescape(value)),
            (Kind::String, Some("contains")) => Search::Contains(normalize(&unescape(value))),
            (Kind::Token, Some("text")) => Search::Text(normalize(&unescape(value))),
            (Kind::Token, None) => token_search(value)?,
            (Kind::Token, Some("in")) => Search::InValueSet(Rc::new(self.value_set(&unescape(value))?)),
            (Kind::Token, Some("of-type")) => match split_escaped(value, '|').as_slice() {
                [system, code, id] => Search::OfType(unescape(system), unescape(code), unescape(id)),
                _ => return Err(format!("bad :of-type {value}")),
            },
            (Kind::Reference, Some("identifier")) => Search::RefIdentifier(Box::new(token_search(value)?)),
            (Kind::Date, None) => date_search(value)?,
            (Kind::Number, None) => Search::Number(number_search(value)?),
            (Kind::Quantity, None) => {
                let parts = split_escaped(value, '|');
                let given = |s: &String| (!s.is_empty()).then(|| unescape(s));
                match parts.as_slice() {
                    [n] => Search::Quantity(number_search(n)?, None, None),
                    [n, system, code] => Search::Quantity(number_search(n)?, given(system), given(code)),
                    _ => return Err(format!("bad quantity {value}")),
                }
            }
            (Kind::Reference, type_modifier) => {
                let value = unescape(value);
                if let Some((t, id)) = self.local_target(&value) {
                    Search::Local(Some(t), id)
                } else if !value.contains(['/', ':', '#']) {
                    Search::Local(type_modifier.map(str::to_owned), value)
                } else {
                    Search::Url(value)
                }
            }
            (Kind::Uri, None) => Search::UriEquals(unescape(value)),
            (Kind::Uri, Some("below")) => Search::UriBelow(unescape(value)),
            (Kind::Uri, Some("above")) => Search::UriAbove(unescape(value)),
            (kind, modifier) => return Err(format!("{kind:?} with modifier {modifier:?} is not evaluated")),
        })
    }

    /// One value of a composite parameter: its components' values joined by `$`, each parsed by
    /// the rules of its component's type (search.html#composite). Composites take no modifier.
    pub(super) fn parse_composite(
        &self,
        components: &[(Kind, Expression)],
        modifier: Option<&str>,
        value: &str,
    ) -> Result<Vec<Search>, String> {
        if let Some(modifier) = modifier {
            return Err(format!("composite with modifier :{modifier} is not evaluated"));
        }
        let parts = split_escaped(value, '$');
        if parts.len() != components.len() {
            return Err(format!("{value} has {} parts, not {}", parts.len(), components.len()));
        }
        parts
            .iter()
            .zip(components)
            .map(|(part, (kind, _))| self.parse_search(*kind, None, part))
            .collect()
    }

    pub(super) fn matches(&self, search: &Search, value: &Val) -> bool {
        match (search, value) {
            (Search::StartsWith(prefix), Val::Str(s)) => normalize(s).starts_with(prefix.as_str()),
            (Search::Exact(text), Val::Str(s)) => s == text,
            (Search::Contains(text), Val::Str(s)) => normalize(s).contains(text.as_str()),
            (Search::Code(c), Val::Token { code, .. }) => code.as_deref() == Some(c),
            (Search::SystemCode(s, c), Val::Token { system, code, .. }) => {
                system.as_deref() == Some(s) && code.as_deref() == Some(c)
            }
            (Search::NoSystemCode(c), Val::Token { system, code, .. }) => {
                system.is_none() && code.as_deref() == Some(c)
            }
            (Search::System(s), Val::Token { system, .. }) => system.as_deref() == Some(s),
            // `:text` is a string search (starts-with, normalised) on the displays and texts.
            (Search::Text(t), Val::Token { texts, .. }) => texts.iter().any(|x| x.starts_with(t.as_str())),
            (Search::Date(prefix, low, high), Val::Date { low: tl, high: th }) => {
                date_matches(*prefix, *low, *high, *tl, *th, self.now)
            }
            (Search::Number(n), Val::Number(x)) => number_matches(n, *x),
            (
                Search::Quantity(n, system, code),
                Val::Quantity {
                    value,
                    system: s,
                    code: c,
                    unit,
                },
            ) => {
                number_matches(n, *value)
                    && match (system, code) {
                        (Some(system), Some(code)) => s.as_ref() == Some(system) && c.as_ref() == Some(code),
                        (Some(system), None) => s.as_ref() == Some(system),
                        // `number||code`: the code or the unit as displayed.
                        (None, Some(code)) => c.as_ref() == Some(code) || unit.as_ref() == Some(code),
                        (None, None) => true,
                    }
            }
            (Search::Local(wanted_type, wanted_id), Val::Reference(r)) => self
                .local_target(r)
                .is_some_and(|(t, id)| id == *wanted_id && wanted_type.as_ref().is_none_or(|w| *w == t)),
            (Search::Url(url), Val::Reference(r)) => r == url,
            (Search::RefIdentifier(token), Val::RefIdentifier { system, value }) => self.matches(
                token,
                &Val::Token {
                    system: system.clone(),
                    code: value.clone(),
                    texts: Vec::new(),
                    types: Vec::new(),
                },
            ),
            (Search::OfType(s, c, v), Val::Token { code, types, .. }) => {
                code.as_ref() == Some(v) && types.iter().any(|(ts, tc)| ts.as_deref().unwrap_or("") == s && tc == c)
            }
            (Search::UriEquals(u), Val::Uri(v)) => u == v,
            // A Coding without a code names no code of the value set.
            (
                Search::InValueSet(rule),
                Val::Token {
                    system: Some(s),
                    code: Some(c),
                    ..
                },
            ) => rule.contains(s, c),
            (Search::UriBelow(u), Val::Uri(v)) => v.starts_with(u.as_str()),
            // `:above`: the stored uri is the searched one or one of its ancestors at a `/`.
            // A scheme alone (`http:`, `http://`) is no one's ancestor.
            (Search::UriAbove(u), Val::Uri(v)) => {
                u == v
                    || (u.starts_with(v.as_str())
                        && (v.ends_with('/') || u[v.len()..].starts_with('/'))
                        && !v.ends_with(':')
                        && !v.ends_with(":/")
                        && !v.ends_with("://"))
            }
            _ => false,
        }
    }
}

/// `code`, `system|code`, `|code` or `system|` (search.html#token).
pub(super) fn token_search(value: &str) -> Result<Search, String> {
    let parts = split_escaped(value, '|');
    Ok(match parts.as_slice() {
        [code] => Search::Code(unescape(code)),
        [system, code] if system.is_empty() => Search::NoSystemCode(unescape(code)),
        [system, code] if code.is_empty() => Search::System(unescape(system)),
        [system, code] => Search::SystemCode(unescape(system), unescape(code)),
        _ => return Err(format!("bad token {value}")),
    })
}

pub(super) fn date_search(value: &str) -> Result<Search, String> {
    let (prefix, text) = split_prefix(value);
    let (low, high) = date_range(text).ok_or(format!("not a date: {value}"))?;
    Ok(Search::Date(prefix, low, high))
}
