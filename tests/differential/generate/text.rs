//! `_text` and `_content`: words of a resource's narrative or content, whole, cut, or a part of
//! one, in other case or with accents, several in one value, and alternatives by commas.

use super::{Generator, Query, escape};
use crate::eval::text::MAX_WORDS;

const TEXT_TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "Practitioner",
    "Organization",
    "Procedure",
    "MedicationRequest",
    "Immunization",
    "AllergyIntolerance",
    "CarePlan",
    "Location",
    "Questionnaire",
    "Medication",
    "Claim",
    "Goal",
    "Device",
    "ValueSet",
    "CodeSystem",
    "DiagnosticReport",
];

impl Generator<'_, '_> {
    /// The types none of whose resources has more words than the server keeps of one.
    fn text_types(&self, content: bool) -> Vec<&'static str> {
        TEXT_TYPES
            .iter()
            .copied()
            .filter(|t| {
                self.evaluator
                    .corpus
                    .of_type(t)
                    .all(|(id, _)| self.evaluator.words(content, t, id).len() <= MAX_WORDS)
            })
            .collect()
    }

    /// The words of a random resource of a random type in `types` that has some.
    fn some_words(&mut self, content: bool, types: &[&str]) -> Option<(String, Vec<String>)> {
        for _ in 0..20 {
            let t = *self.rng.pick(types);
            let ids: Vec<String> = self.evaluator.corpus.of_type(t).map(|(id, _)| id.clone()).collect();
            if ids.is_empty() {
                continue;
            }
            let id = self.rng.pick(&ids).clone();
            let words: Vec<String> = self.evaluator.words(content, t, &id).iter().cloned().collect();
            if !words.is_empty() {
                return Some((t.to_owned(), words));
            }
        }
        None
    }

    /// A search word for `word` by `modifier`: a start of it, a part of it, or all of it.
    fn word_text(&mut self, word: &str, modifier: &str) -> String {
        let chars: Vec<char> = word.chars().collect();
        let text: String = match modifier {
            "" => chars[..1 + self.rng.below(chars.len())].iter().collect(),
            // At least three letters: `:contains` is a scan of every word the type has, and one
            // letter found in most of them makes a slow search that shows nothing more.
            ":contains" if chars.len() > 3 => {
                let len = 3 + self.rng.below((chars.len() - 3).min(3));
                let start = self.rng.below(chars.len() - len + 1);
                chars[start..start + len].iter().collect()
            }
            ":contains" => word.to_owned(),
            // Sometimes cut, so that whole words only are found.
            _ if chars.len() > 3 && self.rng.chance(20) => chars[..chars.len() - 1].iter().collect(),
            _ => word.to_owned(),
        };
        escape(&self.vary_case_and_accents(&text))
    }

    pub(super) fn text_searches(&mut self) {
        let types = [self.text_types(false), self.text_types(true)];
        for n in 0..40 {
            let content = n % 2 == 1;
            let name = if content { "_content" } else { "_text" };
            let modifier = match n % 8 {
                0..=3 => "",
                4 | 5 => ":contains",
                _ => ":exact",
            };
            let Some((t, words)) = self.some_words(content, &types[content as usize]) else {
                continue;
            };
            let count = if self.rng.chance(30) { 2 + self.rng.below(2) } else { 1 };
            let chosen: Vec<String> = (0..count)
                .map(|_| {
                    let word = self.rng.pick(&words).clone();
                    self.word_text(&word, modifier)
                })
                .collect();
            let separator = if self.rng.chance(50) { " " } else { "-" };
            let mut value = chosen.join(separator);
            if n % 7 == 3
                && let Some((_, other)) = self.some_words(content, &[t.as_str()])
            {
                let word = self.rng.pick(&other).clone();
                value = format!("{value},{}", self.word_text(&word, modifier));
            }
            if n % 11 == 5 {
                value = "zqxjv".into();
            }
            let category = format!("{name}{modifier}");
            self.push(Query::new(&t, category).with(format!("{name}{modifier}"), value));
        }
    }
}
