//! The in-memory evaluator: a search query applied to every resource in memory by the matching
//! rules of search.html (https://hl7.org/fhir/R4/search.html), written independently of the
//! server's SQL. Where the specification leaves a choice, the choice is named in a comment.
//! `search` parses and matches one search value, `text` gives the words of `_text` and
//! `_content`, `value_sets` what a ValueSet contains for `:in`.

mod search;
pub mod text;
mod value_sets;

use crate::data::Corpus;
use crate::defs::{Defs, Kind};
use crate::rules::{SortValue, compare_keys, compare_values, split_escaped, unescape};
use crate::values::{Unhandled, Val, date_range, extract, normalize};
use search::{Search, date_search};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use text::WordSearch;

/// The values of one parameter for every resource of one type, by id.
type Column = Rc<HashMap<String, Vec<Val>>>;

/// The words of one resource for `_text` or `_content`.
type Words = Rc<BTreeSet<String>>;

pub struct Evaluator<'a> {
    pub corpus: &'a Corpus,
    /// The server's base URL: absolute references under it are local.
    pub base: String,
    /// `now` for `ap` on dates, in microseconds (the server reads its own clock per request).
    pub now: i64,
    columns: RefCell<HashMap<(String, String), Column>>,
    /// The words of `_content` (`true`) or `_text` of each resource, computed once.
    words: RefCell<HashMap<(bool, String, String), Words>>,
    pub unhandled: RefCell<Unhandled>,
}

/// A search's expected answer: ids in the order of the sort keys (ties in id order), and each
/// id's sort keys when the query sorts.
pub struct Expected {
    pub ids: Vec<String>,
    pub keys: Option<HashMap<String, Vec<SortValue>>>,
    /// Per sort key: descending?
    pub descending: Vec<bool>,
}

/// A condition on one resource.
#[derive(Debug, Clone)]
enum Cond {
    Id(Vec<String>),
    LastUpdated(Vec<Search>),
    Missing {
        code: String,
        missing: bool,
    },
    /// `not`: `:not` or `:not-in`, the resources the plain search does not find.
    Values {
        code: String,
        searches: Vec<Search>,
        not: bool,
    },
    /// A composite parameter (search.html#composite): some item of its expression whose
    /// components meet every part of one alternative, part `k` by component `k`.
    Composite {
        code: String,
        alternatives: Vec<Vec<Search>>,
    },
    /// `_text` (`content: false`) or `_content`: every word of one alternative is met.
    Text {
        content: bool,
        alternatives: Vec<Vec<WordSearch>>,
    },
    /// `_list`: an entry of one of these Lists points at the resource.
    List(Vec<String>),
    Chain {
        code: String,
        target_type: Option<String>,
        inner_code: String,
        inner: Box<Cond>,
    },
    /// `targets` is filled on first use: the `(type, id)`s that matching sources point at.
    Has {
        source: String,
        reference: String,
        inner: Box<Cond>,
        targets: RefCell<Option<HashSet<(String, String)>>>,
    },
}

impl<'a> Evaluator<'a> {
    pub fn new(corpus: &'a Corpus, base: &str) -> Evaluator<'a> {
        Evaluator {
            corpus,
            base: base.trim_end_matches('/').to_owned(),
            now: chrono::Utc::now().timestamp_micros(),
            columns: RefCell::default(),
            words: RefCell::default(),
            unhandled: RefCell::default(),
        }
    }

    /// The values of `code` for every resource of `resource_type`, computed once.
    pub fn column(&self, resource_type: &str, code: &str) -> Column {
        let key = (resource_type.to_owned(), code.to_owned());
        if let Some(column) = self.columns.borrow().get(&key) {
            return column.clone();
        }
        let mut values = HashMap::new();
        if let Some(def) = Defs::r4().get(resource_type, code) {
            let mut unhandled = self.unhandled.borrow_mut();
            for (id, resource) in self.corpus.of_type(resource_type) {
                let found = extract(def, resource, &mut unhandled);
                if !found.is_empty() {
                    values.insert(id.clone(), found);
                }
            }
        }
        let column = Rc::new(values);
        self.columns.borrow_mut().insert(key, column.clone());
        column
    }

    /// `(type, id)` of a reference to a resource on this server: relative `Type/id` (optionally
    /// `/_history/n`), or absolute under the server's own base. Other absolute URLs name
    /// resources elsewhere (search.html#reference), so they are not local.
    pub fn local_target(&self, reference: &str) -> Option<(String, String)> {
        let relative = match reference.strip_prefix(&self.base) {
            Some(rest) => rest.strip_prefix('/')?,
            None => reference,
        };
        if relative.contains(':') || relative.starts_with('#') {
            return None;
        }
        let parts: Vec<&str> = relative.split('/').collect();
        let (resource_type, id) = match parts.as_slice() {
            [t, id] | [t, id, "_history", _] => (*t, *id),
            _ => return None,
        };
        let valid_id =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        (fhir_server::model::ResourceType::parse(resource_type).is_some() && valid_id)
            .then(|| (resource_type.to_owned(), id.to_owned()))
    }

    fn parse_cond(&self, resource_type: &str, name: &str, value: &str) -> Result<Cond, String> {
        if let Some(rest) = name.strip_prefix("_has:") {
            let mut parts = rest.splitn(3, ':');
            let (Some(source), Some(reference), Some(inner_name)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("bad _has: {name}"));
            };
            return Ok(Cond::Has {
                source: source.to_owned(),
                reference: reference.to_owned(),
                inner: Box::new(self.parse_cond(source, inner_name, value)?),
                targets: RefCell::default(),
            });
        }
        let (head, chain) = match name.split_once('.') {
            Some((head, chain)) => (head, Some(chain)),
            None => (name, None),
        };
        let (code, modifier) = match head.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (head, None),
        };
        if let Some(chain) = chain {
            let inner_code = chain.split([':', '.']).next().unwrap().to_owned();
            let target_type = modifier.map(str::to_owned);
            // The inner condition is parsed on the first type that defines it; its kind does
            // not depend on the target type for the parameters this test chains.
            let def = Defs::r4().get(resource_type, code).ok_or(format!("unknown {code}"))?;
            let inner_type = target_type
                .clone()
                .or_else(|| {
                    def.targets
                        .iter()
                        .find(|t| Defs::r4().get(t, &inner_code).is_some())
                        .cloned()
                })
                .ok_or(format!("no target of {code} has {inner_code}"))?;
            return Ok(Cond::Chain {
                code: code.to_owned(),
                target_type,
                inner_code,
                inner: Box::new(self.parse_cond(&inner_type, chain, value)?),
            });
        }
        let values = split_escaped(value, ',');
        match code {
            "_id" => return Ok(Cond::Id(values.iter().map(|v| unescape(v)).collect())),
            "_list" => return Ok(Cond::List(values.iter().map(|v| unescape(v)).collect())),
            "_text" | "_content" => {
                return Ok(Cond::Text {
                    content: code == "_content",
                    alternatives: text::parse(value, modifier)?,
                });
            }
            "_lastUpdated" => {
                let searches = values.iter().map(|v| date_search(v)).collect::<Result<_, _>>()?;
                return Ok(Cond::LastUpdated(searches));
            }
            _ => {}
        }
        let def = Defs::r4()
            .get(resource_type, code)
            .ok_or(format!("{resource_type} has no parameter {code}"))?;
        if modifier == Some("missing") {
            return Ok(Cond::Missing {
                code: code.to_owned(),
                missing: value == "true",
            });
        }
        if def.kind == Kind::Composite {
            let alternatives = values
                .iter()
                .map(|v| self.parse_composite(&def.components, modifier, v))
                .collect::<Result<_, _>>()?;
            return Ok(Cond::Composite {
                code: code.to_owned(),
                alternatives,
            });
        }
        let not = def.kind == Kind::Token && matches!(modifier, Some("not" | "not-in"));
        let modifier = match modifier {
            Some("not") => None,
            Some("not-in") => Some("in"),
            other => other,
        };
        let searches = values
            .iter()
            .map(|v| self.parse_search(def.kind, modifier, v))
            .collect::<Result<_, _>>()?;
        Ok(Cond::Values {
            code: code.to_owned(),
            searches,
            not,
        })
    }

    /// Whether the resource `resource_type/id` meets `cond`.
    fn test(&self, resource_type: &str, id: &str, cond: &Cond) -> bool {
        match cond {
            Cond::Id(ids) => ids.iter().any(|i| i == id),
            Cond::LastUpdated(searches) => {
                let Some(at) = self
                    .corpus
                    .get(resource_type, id)
                    .and_then(|r| r["meta"]["lastUpdated"].as_str())
                    .and_then(date_range)
                else {
                    return false;
                };
                // The server keeps lastUpdated as a point in time.
                let point = Val::Date {
                    low: at.0,
                    high: at.0 + 1,
                };
                searches.iter().any(|s| self.matches(s, &point))
            }
            Cond::Missing { code, missing } => {
                let column = self.column(resource_type, code);
                let present = column.get(id).is_some_and(|values| values.iter().any(is_a_value));
                present != *missing
            }
            Cond::Values {
                code, searches, not, ..
            } => {
                let column = self.column(resource_type, code);
                let values = column.get(id).map(Vec::as_slice).unwrap_or_default();
                let found = values.iter().any(|v| searches.iter().any(|s| self.matches(s, v)));
                // `:not` (search.html#token): the resources the plain search does not find,
                // including those with no value at all.
                found != *not
            }
            Cond::Composite { code, alternatives } => {
                let column = self.column(resource_type, code);
                column.get(id).into_iter().flatten().any(|item| {
                    let Val::Composite(parts) = item else { return false };
                    alternatives.iter().any(|alternative| {
                        alternative
                            .iter()
                            .zip(parts)
                            .all(|(search, values)| values.iter().any(|v| self.matches(search, v)))
                    })
                })
            }
            Cond::Text { content, alternatives } => {
                let words = self.words(*content, resource_type, id);
                alternatives
                    .iter()
                    .any(|words_wanted| words_wanted.iter().all(|w| w.matches(&words)))
            }
            Cond::List(lists) => {
                let column = self.column("List", "item");
                lists.iter().any(|list| {
                    column.get(list).into_iter().flatten().any(|v| match v {
                        Val::Reference(r) => self.local_target(r) == Some((resource_type.to_owned(), id.to_owned())),
                        _ => false,
                    })
                })
            }
            Cond::Chain {
                code,
                target_type,
                inner_code,
                inner,
            } => {
                let column = self.column(resource_type, code);
                let def = Defs::r4().get(resource_type, code).unwrap();
                column.get(id).into_iter().flatten().any(|v| {
                    let Val::Reference(reference) = v else { return false };
                    let Some((t, target_id)) = self.local_target(reference) else {
                        return false;
                    };
                    let wanted = match target_type {
                        Some(wanted) => *wanted == t,
                        None => def.targets.contains(&t),
                    };
                    wanted
                        && Defs::r4().get(&t, inner_code).is_some()
                        && self.corpus.get(&t, &target_id).is_some()
                        && self.test(&t, &target_id, inner)
                })
            }
            Cond::Has {
                source,
                reference,
                inner,
                targets,
            } => {
                if targets.borrow().is_none() {
                    let column = self.column(source, reference);
                    let found: HashSet<(String, String)> = self
                        .corpus
                        .of_type(source)
                        .filter(|(source_id, _)| self.test(source, source_id, inner))
                        .flat_map(|(source_id, _)| column.get(source_id).into_iter().flatten())
                        .filter_map(|v| match v {
                            Val::Reference(r) => self.local_target(r),
                            _ => None,
                        })
                        .collect();
                    *targets.borrow_mut() = Some(found);
                }
                targets
                    .borrow()
                    .as_ref()
                    .is_some_and(|t| t.contains(&(resource_type.to_owned(), id.to_owned())))
            }
        }
    }

    /// Runs `query` (`name=value` pairs of one type search) over the corpus.
    pub fn run(&self, resource_type: &str, query: &[(String, String)]) -> Result<Expected, String> {
        let mut conds = Vec::new();
        let mut sort = Vec::new();
        for (name, value) in query {
            match name.as_str() {
                "_count" => {}
                "_sort" => sort.extend(value.split(',').map(str::to_owned)),
                _ => conds.push(self.parse_cond(resource_type, name, value)?),
            }
        }
        let mut ids: Vec<String> = self
            .corpus
            .of_type(resource_type)
            .map(|(id, _)| id)
            .filter(|id| conds.iter().all(|c| self.test(resource_type, id, c)))
            .cloned()
            .collect();
        if sort.is_empty() {
            return Ok(Expected {
                ids,
                keys: None,
                descending: Vec::new(),
            });
        }
        let keys: HashMap<String, Vec<SortValue>> = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    sort.iter().map(|s| self.sort_value(resource_type, id, s)).collect(),
                )
            })
            .collect();
        let descending: Vec<bool> = sort.iter().map(|s| s.starts_with('-')).collect();
        ids.sort_by(|a, b| compare_keys(&keys[a], &keys[b], &descending).then_with(|| a.cmp(b)));
        Ok(Expected {
            ids,
            keys: Some(keys),
            descending,
        })
    }

    /// The sort key of `id` for `_sort` entry `key` (`-` for descending): with several values,
    /// the lowest ascending and the highest descending; dates by their start ascending and
    /// their end descending; strings normalised, tokens by code.
    fn sort_value(&self, resource_type: &str, id: &str, key: &str) -> SortValue {
        let (descending, code) = match key.strip_prefix('-') {
            Some(code) => (true, code),
            None => (false, key),
        };
        match code {
            "_id" => return SortValue::Text(id.to_owned()),
            "_lastUpdated" => {
                return self
                    .corpus
                    .get(resource_type, id)
                    .and_then(|r| r["meta"]["lastUpdated"].as_str())
                    .and_then(date_range)
                    .map_or(SortValue::Missing, |r| SortValue::Int(r.0));
            }
            _ => {}
        }
        let column = self.column(resource_type, code);
        let keys: Vec<SortValue> = column
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|v| match v {
                Val::Str(s) => Some(SortValue::Text(normalize(s))),
                Val::Token { code, .. } => code.clone().map(SortValue::Text),
                Val::Date { low, high } => Some(SortValue::Int(if descending { *high } else { *low })),
                Val::Number(x) => Some(SortValue::Real(*x)),
                Val::Quantity { value, .. } => Some(SortValue::Real(*value)),
                Val::Reference(r) | Val::Uri(r) => Some(SortValue::Text(r.clone())),
                Val::RefIdentifier { .. } | Val::Composite(_) => None,
            })
            .collect();
        let best = keys.into_iter().reduce(|a, b| {
            let a_first = compare_values(&a, &b) != Ordering::Greater;
            if a_first != descending { a } else { b }
        });
        best.unwrap_or(SortValue::Missing)
    }

    /// The words `_content` (`content`) or `_text` searches in one resource.
    pub fn words(&self, content: bool, resource_type: &str, id: &str) -> Words {
        let key = (content, resource_type.to_owned(), id.to_owned());
        if let Some(words) = self.words.borrow().get(&key) {
            return words.clone();
        }
        let words = Rc::new(match self.corpus.get(resource_type, id) {
            Some(resource) if content => text::content_words(resource),
            Some(resource) => text::narrative_words(resource),
            None => BTreeSet::new(),
        });
        self.words.borrow_mut().insert(key, words.clone());
        words
    }
}

/// Whether `value` counts for `:missing`: `Reference.identifier` concerns the reference, not a
/// value of it; a composite's item is a value when every component has one (search.html#missing:
/// "a value for the parameter" — a composite's value is all its parts).
fn is_a_value(value: &Val) -> bool {
    match value {
        Val::RefIdentifier { .. } => false,
        Val::Composite(parts) => parts.iter().all(|p| p.iter().any(is_a_value)),
        _ => true,
    }
}
