//! One-parameter queries for each parameter type, modifier and prefix, and `:missing`.

use super::targets::*;
use super::{Generator, Query, escape};
use crate::rules::PREFIXES;
use crate::values::{Val, normalize};

impl Generator<'_, '_> {
    // ---- string ----------------------------------------------------------------------------

    /// A variant of `text` the default string search must treat alike: other case, accents
    /// dropped or added.
    pub(super) fn vary_case_and_accents(&mut self, text: &str) -> String {
        let text = match self.rng.below(4) {
            0 => text.to_uppercase(),
            1 => text.to_lowercase(),
            2 => normalize(text),
            _ => text.to_owned(),
        };
        if self.rng.chance(30) {
            text.replacen('e', "é", 1).replacen('a', "á", 1)
        } else {
            text
        }
    }

    fn string_value(&mut self) -> Option<(String, String, String)> {
        let (t, code, _, v) = self.draw(STRINGS, |v| matches!(v, Val::Str(_)))?;
        let Val::Str(s) = v else { unreachable!() };
        Some((t, code, s))
    }

    pub(super) fn strings(&mut self) {
        for n in 0..45 {
            let Some((t, code, s)) = self.string_value() else {
                continue;
            };
            let chars: Vec<char> = s.chars().collect();
            let cut = 1 + self.rng.below(chars.len().min(8));
            let prefix: String = chars[..cut].iter().collect();
            let mut value = escape(&self.vary_case_and_accents(&prefix));
            if n % 9 == 0 {
                value = "zqxj".into();
            } else if n % 5 == 0
                && let Some((_, _, other)) = self.string_value()
            {
                let other: String = other.chars().take(3).collect();
                value = format!("{value},{}", escape(&other));
            }
            self.push(Query::new(&t, "string").with(code, value));
        }
        for n in 0..15 {
            let Some((t, code, s)) = self.string_value() else {
                continue;
            };
            // Other case, accents dropped or the last letter cut find nothing unless equal.
            let value = match n % 5 {
                0 => s.to_uppercase(),
                1 => s.chars().take(s.chars().count().saturating_sub(1).max(1)).collect(),
                2 => normalize(&s),
                _ => s.clone(),
            };
            self.push(Query::new(&t, "string:exact").with(format!("{code}:exact"), escape(&value)));
        }
        for _ in 0..15 {
            let Some((t, code, s)) = self.string_value() else {
                continue;
            };
            let chars: Vec<char> = s.chars().collect();
            let start = self.rng.below(chars.len());
            let len = 1 + self.rng.below((chars.len() - start).min(6));
            let part: String = chars[start..start + len].iter().collect();
            let value = escape(&self.vary_case_and_accents(&part));
            self.push(Query::new(&t, "string:contains").with(format!("{code}:contains"), value));
        }
    }

    /// Values holding the characters search.html#escaping covers (`,` `|` `$` `\`), searched with
    /// them escaped.
    pub(super) fn escapes(&mut self) {
        let special = |s: &str| s.contains([',', '|', '$', '\\']);
        let pairs: Vec<(&str, &str)> = [STRINGS, &[("Location", "address"), ("Library", "title")]].concat();
        for n in 0..6 {
            let Some((t, code, _, Val::Str(s))) = self.draw(&pairs, |v| matches!(v, Val::Str(s) if special(s))) else {
                continue;
            };
            let at = s.find([',', '|', '$', '\\']).unwrap_or(0);
            let through: String = s[..at + 1].to_owned();
            let query = match n % 3 {
                0 => Query::new(&t, "string:exact escaped").with(format!("{code}:exact"), escape(&s)),
                1 => Query::new(&t, "string escaped").with(code, escape(&through.to_uppercase())),
                _ => {
                    let from = s[..at].char_indices().rev().nth(2).map_or(0, |(i, _)| i);
                    Query::new(&t, "string:contains escaped").with(format!("{code}:contains"), escape(&s[from..=at]))
                }
            };
            self.push(query);
        }
        let coded = [
            ("MedicationDispense", "code"),
            ("MedicationRequest", "code"),
            ("Observation", "method"),
        ];
        for _ in 0..3 {
            let Some((t, code, _, Val::Token { texts, .. })) = self.draw(
                &coded,
                |v| matches!(v, Val::Token { texts, .. } if texts.iter().any(|x| special(x))),
            ) else {
                continue;
            };
            let Some(text) = texts.iter().find(|x| special(x)) else {
                continue;
            };
            let at = text.find([',', '|', '$', '\\']).unwrap_or(0);
            let through = &text[..=at];
            self.push(Query::new(&t, "token:text escaped").with(format!("{code}:text"), escape(through)));
        }
    }

    // ---- token -----------------------------------------------------------------------------

    pub(super) fn tokens(&mut self) {
        let coded = |v: &Val| matches!(v, Val::Token { code: Some(_), .. });
        let with_system = |v: &Val| {
            matches!(
                v,
                Val::Token {
                    code: Some(_),
                    system: Some(_),
                    ..
                }
            )
        };
        let with_text = |v: &Val| matches!(v, Val::Token { texts, .. } if !texts.is_empty());
        for n in 0..25 {
            let Some((t, code, _, Val::Token { code: Some(c), .. })) = self.draw(TOKENS, coded) else {
                continue;
            };
            let value = match n % 6 {
                0 => format!("{},no-such-code", escape(&c)),
                5 => "no-such-code".to_owned(),
                _ => escape(&c),
            };
            self.push(Query::new(&t, "token code").with(code, value));
        }
        for n in 0..20 {
            let Some((
                t,
                code,
                _,
                Val::Token {
                    code: Some(c),
                    system: Some(s),
                    ..
                },
            )) = self.draw(TOKENS, with_system)
            else {
                continue;
            };
            let value = if n % 7 == 3 {
                format!("{}|{}", escape(&s), escape(&c.to_uppercase()))
            } else {
                format!("{}|{}", escape(&s), escape(&c))
            };
            self.push(Query::new(&t, "token system|code").with(code, value));
        }
        for _ in 0..8 {
            let Some((t, code, _, Val::Token { code: Some(c), .. })) = self.draw(TOKENS, coded) else {
                continue;
            };
            self.push(Query::new(&t, "token |code").with(code, format!("|{}", escape(&c))));
        }
        for _ in 0..8 {
            let Some((t, code, _, Val::Token { system: Some(s), .. })) = self.draw(TOKENS, with_system) else {
                continue;
            };
            self.push(Query::new(&t, "token system|").with(code, format!("{}|", escape(&s))));
        }
        for n in 0..15 {
            let Some((
                t,
                code,
                _,
                Val::Token {
                    code: Some(c), system, ..
                },
            )) = self.draw(TOKENS, coded)
            else {
                continue;
            };
            let value = match (n % 3, system) {
                (0, Some(s)) => format!("{}|{}", escape(&s), escape(&c)),
                (1, _) => format!("{},other-code", escape(&c)),
                _ => escape(&c),
            };
            self.push(Query::new(&t, "token:not").with(format!("{code}:not"), value));
        }
        let typed = |v: &Val| matches!(v, Val::Token { code: Some(_), types, .. } if !types.is_empty());
        let identifiers = [
            ("Patient", "identifier"),
            ("Practitioner", "identifier"),
            ("Organization", "identifier"),
            ("Encounter", "identifier"),
            ("Claim", "identifier"),
        ];
        for n in 0..6 {
            let Some((
                t,
                code,
                _,
                Val::Token {
                    code: Some(value),
                    types,
                    ..
                },
            )) = self.draw(&identifiers, typed)
            else {
                continue;
            };
            let (system, type_code) = self.rng.pick(&types).clone();
            let value = if n % 3 == 2 { format!("{value}0") } else { value };
            let token = format!(
                "{}|{}|{}",
                escape(system.as_deref().unwrap_or_default()),
                escape(&type_code),
                escape(&value)
            );
            self.push(Query::new(&t, "token:of-type").with(format!("{code}:of-type"), token));
        }
        for _ in 0..12 {
            let Some((t, code, _, Val::Token { texts, .. })) = self.draw(TOKENS, with_text) else {
                continue;
            };
            let text = self.rng.pick(&texts).clone();
            let chars: Vec<char> = text.chars().collect();
            let cut = 1 + self.rng.below(chars.len().min(10));
            let prefix: String = chars[..cut].iter().collect();
            let value = escape(&self.vary_case_and_accents(&prefix));
            self.push(Query::new(&t, "token:text").with(format!("{code}:text"), value));
        }
    }

    // ---- date ------------------------------------------------------------------------------

    /// A date in the search syntax at a random precision around `at` (microseconds).
    pub(super) fn date_text(&mut self, at: i64) -> String {
        use chrono::{DateTime, FixedOffset};
        let moment = DateTime::from_timestamp_micros(at).unwrap_or_default();
        match self.rng.below(7) {
            0 => moment.format("%Y").to_string(),
            1 => moment.format("%Y-%m").to_string(),
            2 | 3 => moment.format("%Y-%m-%d").to_string(),
            4 => moment.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            5 => moment
                .with_timezone(&FixedOffset::east_opt(2 * 3600).unwrap())
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            _ => moment
                .with_timezone(&FixedOffset::west_opt(5 * 3600).unwrap())
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
        }
    }

    /// A point in or near a stored range.
    pub(super) fn date_anchor(&mut self, low: i64, high: i64) -> i64 {
        let day = 86_400_000_000i64;
        let base = if low != i64::MIN {
            low
        } else if high != i64::MAX {
            high - 1
        } else {
            0
        };
        match self.rng.below(4) {
            0 => base + (self.rng.below(60) as i64 - 30) * day,
            1 if high != i64::MAX && low != i64::MIN => low + (high - low) / 2,
            _ => base,
        }
    }

    pub(super) fn dates(&mut self) {
        for (prefix, _) in PREFIXES {
            for n in 0..5 {
                let Some((t, code, _, Val::Date { low, high })) = self.draw(DATES, |v| matches!(v, Val::Date { .. }))
                else {
                    continue;
                };
                let at = self.date_anchor(low, high);
                let text = self.date_text(at);
                // The default prefix is eq; write it out only sometimes.
                let value = if prefix == "eq" && n % 2 == 0 {
                    text
                } else {
                    format!("{prefix}{text}")
                };
                self.push(Query::new(&t, format!("date {prefix}")).with(code, value));
            }
            // Timings (search.html#date: only their outer limits matter).
            let timing = [("CarePlan", "activity-date")];
            if let Some((t, code, _, Val::Date { low, high })) = self.draw(&timing, |v| matches!(v, Val::Date { .. })) {
                let at = self.date_anchor(low, high);
                let text = self.date_text(at);
                self.push(Query::new(&t, format!("date {prefix}")).with(code, format!("{prefix}{text}")));
            }
        }
    }

    // ---- number and quantity ---------------------------------------------------------------

    /// A decimal near `x` as a search would write it: exact, rounded to fewer digits, or moved.
    /// For `sa` and `eb` mostly rounded to a whole number, so that stored values fall inside the
    /// search value's precision range on either side of it.
    pub(super) fn number_text(&mut self, prefix: &str, x: f64) -> String {
        if matches!(prefix, "sa" | "eb") && self.rng.chance(70) {
            return format!("{:.0}", x.round());
        }
        match self.rng.below(6) {
            0 => format!("{x}"),
            1 => format!("{:.0}", x.floor()),
            2 => format!("{:.0}", x.ceil()),
            3 => format!("{:.1}", x),
            4 => format!("{:.2}", x * 1.05),
            _ => format!("{:.3}", x),
        }
    }

    pub(super) fn numbers_and_quantities(&mut self) {
        for (prefix, _) in PREFIXES {
            for _ in 0..2 {
                let Some((t, code, _, Val::Number(x))) = self.draw(NUMBERS, |v| matches!(v, Val::Number(_))) else {
                    continue;
                };
                let value = format!("{prefix}{}", self.number_text(prefix, x));
                self.push(Query::new(&t, format!("number {prefix}")).with(code, value));
            }
            for n in 0..3 {
                let Some((
                    t,
                    code,
                    _,
                    Val::Quantity {
                        value: x,
                        system,
                        code: unit_code,
                        unit,
                    },
                )) = self.draw(QUANTITIES, |v| matches!(v, Val::Quantity { .. }))
                else {
                    continue;
                };
                let number = format!("{prefix}{}", self.number_text(prefix, x));
                let value = match (n, system, unit_code, unit) {
                    (1, Some(s), Some(c), _) => format!("{number}|{}|{}", escape(&s), escape(&c)),
                    (2, _, Some(c), _) if self.rng.chance(50) => format!("{number}||{}", escape(&c)),
                    (2, _, _, Some(u)) => format!("{number}||{}", escape(&u)),
                    _ => number,
                };
                self.push(Query::new(&t, format!("quantity {prefix}")).with(code, value));
            }
            // Measurements with decimals against a whole number: `sa`/`eb` differ from `gt`/`lt`
            // exactly for the values within half a unit of it.
            if matches!(prefix, "sa" | "eb")
                && let Some((t, code, _, Val::Quantity { value: x, .. })) = self.draw(
                    &[("Observation", "value-quantity")],
                    |v| matches!(v, Val::Quantity { value, .. } if value.fract() != 0.0),
                )
            {
                self.push(Query::new(&t, format!("quantity {prefix}")).with(code, format!("{prefix}{:.0}", x.round())));
            }
        }
    }

    // ---- reference -------------------------------------------------------------------------

    pub(super) fn references(&mut self) {
        let base = self.evaluator.base.clone();
        for n in 0..30 {
            let Some((t, code, _, Val::Reference(r))) = self.draw(REFERENCES, |v| matches!(v, Val::Reference(_)))
            else {
                continue;
            };
            let (category, name, value) = match self.evaluator.local_target(&r) {
                Some((target_type, id)) => match n % 6 {
                    0 | 1 => ("reference Type/id", code.clone(), format!("{target_type}/{id}")),
                    2 | 3 => ("reference id", code.clone(), id),
                    4 => ("reference :Type", format!("{code}:{target_type}"), id),
                    _ => ("reference absolute", code.clone(), format!("{base}/{target_type}/{id}")),
                },
                None => ("reference url", code.clone(), escape(&r)),
            };
            self.push(Query::new(&t, category).with(name, value));
        }
        self.push(Query::new("Observation", "reference id").with("subject", "no-such-id"));
        let identified = |v: &Val| matches!(v, Val::RefIdentifier { value: Some(_), .. });
        for n in 0..6 {
            let Some((
                t,
                code,
                _,
                Val::RefIdentifier {
                    system,
                    value: Some(value),
                },
            )) = self.draw(IDENTIFIED_REFERENCES, identified)
            else {
                continue;
            };
            let token = match (n % 3, system) {
                (0, Some(system)) => format!("{}|{}", escape(&system), escape(&value)),
                (1, _) => escape(&value),
                (_, Some(system)) => format!("{}|", escape(&system)),
                (_, None) => format!("|{}", escape(&value)),
            };
            self.push(Query::new(&t, "reference:identifier").with(format!("{code}:identifier"), token));
        }
        // References to other servers: found by their URL as written, never by a local `Type/id`
        // or id that happens to end them (search.html#reference: relative means this server).
        let pairs: Vec<(&str, &str)> = [FOREIGN_REFERENCES, REFERENCES].concat();
        for n in 0..9 {
            let Some((t, code, _, Val::Reference(r))) = self.draw(
                &pairs,
                |v| matches!(v, Val::Reference(r) if r.contains("://") && self.evaluator.local_target(r).is_none()),
            ) else {
                continue;
            };
            let mut segments = r.rsplit('/');
            let (id, target_type) = (segments.next().unwrap_or_default(), segments.next().unwrap_or_default());
            let (category, value) = match n % 3 {
                0 => ("reference url", escape(&r)),
                1 => ("reference foreign Type/id", format!("{target_type}/{id}")),
                _ => ("reference foreign id", id.to_owned()),
            };
            self.push(Query::new(&t, category).with(code, value));
        }
    }

    // ---- uri -------------------------------------------------------------------------------

    pub(super) fn uris(&mut self) {
        for n in 0..21 {
            let Some((t, code, _, Val::Uri(u))) = self.draw(URIS, |v| matches!(v, Val::Uri(_))) else {
                continue;
            };
            let query = match n % 3 {
                0 => Query::new(&t, "uri").with(code, escape(&u)),
                1 => {
                    let cut = match u.rfind('/') {
                        Some(i) if self.rng.chance(60) => i + 1,
                        _ => u.len().saturating_sub(1 + self.rng.below(6)),
                    };
                    let cut = (1..=cut.max(1))
                        .rev()
                        .find(|i| u.is_char_boundary(*i))
                        .unwrap_or(u.len());
                    let prefix = &u[..cut];
                    Query::new(&t, "uri:below").with(format!("{code}:below"), escape(prefix))
                }
                _ => {
                    let below = if self.rng.chance(50) {
                        format!("{u}/_history/2")
                    } else {
                        format!("{u}/sub/part")
                    };
                    Query::new(&t, "uri:above").with(format!("{code}:above"), escape(&below))
                }
            };
            self.push(query);
        }
    }

    // ---- :missing --------------------------------------------------------------------------

    pub(super) fn missing(&mut self) {
        let all: Vec<(&str, &str)> = [STRINGS, TOKENS, DATES, NUMBERS, QUANTITIES, REFERENCES, URIS].concat();
        for n in 0..18 {
            let (t, code) = *self.rng.pick(&all);
            let value = if n % 2 == 0 { "true" } else { "false" };
            self.push(Query::new(t, "missing").with(format!("{code}:missing"), value));
        }
    }
}
