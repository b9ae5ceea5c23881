//! Queries drawn from the data: a fixed-seed generator picks resources, parameters and values
//! actually present (and some that are not), and turns them into search values for every
//! parameter type, modifier and prefix. Nothing here knows what a query should find.
//! `targets` lists the parameters drawn from, `single` makes one-parameter queries per type,
//! modifier and prefix, `combined` the rest (`_id`, `_lastUpdated`, AND, chains, `_has`, `_sort`),
//! `composites` composite parameters, `text` `_text` and `_content`, `membership` `:in`,
//! `:not-in` and `_list` against the ValueSets and Lists that `fixtures` makes from the data
//! before any query is drawn.

mod combined;
mod composites;
pub mod fixtures;
mod membership;
mod single;
mod targets;
mod text;

use crate::eval::Evaluator;
use crate::values::Val;

/// SplitMix64: tiny, deterministic, good enough to spread choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One generated search: a type search with its parameters, and the category it exercises.
#[derive(Debug, Clone)]
pub struct Query {
    pub resource_type: String,
    pub params: Vec<(String, String)>,
    pub category: String,
}

impl Query {
    fn new(resource_type: &str, category: impl Into<String>) -> Query {
        Query {
            resource_type: resource_type.to_owned(),
            params: Vec::new(),
            category: category.into(),
        }
    }

    fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Query {
        self.params.push((name.into(), value.into()));
        self
    }

    /// `Type?name=value&…` as sent (percent-encoded), without paging parameters.
    pub fn path(&self) -> String {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            encoded.append_pair(name, value);
        }
        format!("{}?{}", self.resource_type, encoded.finish())
    }
}

pub struct Generator<'e, 'c> {
    evaluator: &'e Evaluator<'c>,
    rng: Rng,
    pub queries: Vec<Query>,
}

impl<'e, 'c> Generator<'e, 'c> {
    pub fn new(evaluator: &'e Evaluator<'c>, seed: u64) -> Self {
        Generator {
            evaluator,
            rng: Rng::new(seed),
            queries: Vec::new(),
        }
    }

    /// `(id, value)` for every value of `code` in resources of `resource_type`, in id order.
    fn values(&self, resource_type: &str, code: &str) -> Vec<(String, Val)> {
        let column = self.evaluator.column(resource_type, code);
        let mut out = Vec::new();
        for (id, _) in self.evaluator.corpus.of_type(resource_type) {
            for v in column.get(id).into_iter().flatten() {
                out.push((id.clone(), v.clone()));
            }
        }
        out
    }

    /// A random `(type, code, id, value)` among `pairs` whose values satisfy `wanted`.
    fn draw(&mut self, pairs: &[(&str, &str)], wanted: impl Fn(&Val) -> bool) -> Option<(String, String, String, Val)> {
        for _ in 0..40 {
            let (resource_type, code) = *self.rng.pick(pairs);
            let values: Vec<(String, Val)> = self
                .values(resource_type, code)
                .into_iter()
                .filter(|(_, v)| wanted(v))
                .collect();
            if values.is_empty() {
                continue;
            }
            let (id, value) = self.rng.pick(&values).clone();
            return Some((resource_type.to_owned(), code.to_owned(), id, value));
        }
        None
    }

    fn push(&mut self, query: Query) {
        self.queries.push(query);
    }

    /// The queries, some of them about `fixtures` (which the data must hold by now).
    pub fn generate(mut self, fixtures: &fixtures::Fixtures) -> Vec<Query> {
        self.strings();
        self.escapes();
        self.tokens();
        self.dates();
        self.numbers_and_quantities();
        self.references();
        self.uris();
        self.missing();
        self.ids_and_last_updated();
        self.and_of_parameters();
        self.chains_and_has();
        self.sorts();
        self.composites();
        self.text_searches();
        self.value_set_searches(fixtures);
        self.list_searches();
        self.more_identifiers();
        self.queries
    }
}

/// A string search value with `\`, `,`, `|` and `$` escaped (search.html#escaping).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '|' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
