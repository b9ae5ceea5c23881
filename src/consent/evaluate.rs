//! One consent's decision for one request: its root provision's kind, whether each provision
//! matches, and the walk down the tree where the deepest matching provision decides and, among
//! siblings, deny wins.

use super::policy::{Policy, Provision};
use super::{Effect, Facts, Requester};
use chrono::{DateTime, Utc};
use std::cell::Cell;
use std::collections::HashMap;

/// Whether a condition holds, when a fact it needs may be unknown (`$evaluate` asked about a
/// type, not about a stored resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Yes,
    No,
    Unknown,
}

impl Truth {
    fn of(yes: bool) -> Truth {
        if yes { Truth::Yes } else { Truth::No }
    }

    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::No, _) | (_, Truth::No) => Truth::No,
            (Truth::Yes, Truth::Yes) => Truth::Yes,
            _ => Truth::Unknown,
        }
    }
}

/// What one consent decided: the effect, and the path of the provision that decided (`None`:
/// its base policy did).
pub type Outcome = (Effect, Option<String>);

/// Confidentiality codes, lowest first (v3 Confidentiality).
const CONFIDENTIALITY: [&str; 6] = ["U", "L", "M", "N", "R", "V"];

/// Actions that a read is.
const READ_ACTIONS: [&str; 3] = ["access", "use", "disclose"];

/// The inputs of one evaluation.
pub struct Evaluation<'a> {
    pub requester: &'a Requester,
    pub facts: &'a Facts,
    /// For `data` of meaning `related`: the references each named resource holds (missing: not
    /// known).
    pub related: &'a HashMap<String, Vec<String>>,
    pub now: DateTime<Utc>,
    /// How an unknown fact is taken: as met or not.
    pub assume: bool,
    /// Set when an unknown fact was needed.
    pub depended: Cell<bool>,
}

impl Evaluation<'_> {
    /// What `policy` decides, or `None` when it is not applicable to this request (its root
    /// provision has the base's own `type` and does not match: it bounds what the consent is
    /// about).
    pub fn policy(&self, policy: &Policy) -> Option<Outcome> {
        let base = policy.base;
        let Some(root) = &policy.root else {
            return Some((base, None));
        };
        if !root.selects() {
            // Only a period or nested rules: the base, with its exceptions.
            return Some(self.walk(root, base, "Consent.provision", None));
        }
        let matched = self.matches(root, false);
        if root.effect == Some(base) {
            return matched.then(|| self.walk(root, base, "Consent.provision", None));
        }
        let effect = root.effect.unwrap_or(base.opposite());
        Some(if matched {
            self.walk(root, effect, "Consent.provision", Some("Consent.provision".to_owned()))
        } else {
            (base, None)
        })
    }

    /// The decision under `provision` (which matched, with `effect`): the deepest matching
    /// provision's, a deny among siblings first. `decided`: the path to report when no child
    /// matches (the provision itself, or none when it only carries the base).
    fn walk(&self, provision: &Provision, effect: Effect, path: &str, decided: Option<String>) -> Outcome {
        let mut permit = None;
        for (i, child) in provision.children.iter().enumerate() {
            if !self.matches(child, true) {
                continue;
            }
            let child_path = format!("{path}.provision[{i}]");
            let child_effect = child.effect.unwrap_or(effect.opposite());
            let outcome = self.walk(child, child_effect, &child_path, Some(child_path.clone()));
            match outcome.0 {
                Effect::Deny => return outcome,
                Effect::Permit => {
                    permit.get_or_insert(outcome);
                }
            }
        }
        permit.unwrap_or((effect, decided))
    }

    /// Whether `provision` matches, an unknown fact taken as `assume` (and noted). `nested`: its
    /// period bounds the rule (the root's bounds the consent, checked before).
    fn matches(&self, p: &Provision, nested: bool) -> bool {
        let truth = self.truth(p, nested);
        if truth == Truth::Unknown {
            self.depended.set(true);
            return self.assume;
        }
        truth == Truth::Yes
    }

    fn truth(&self, p: &Provision, nested: bool) -> Truth {
        let facts = self.facts;
        let requester = self.requester;
        let mut truth = Truth::Yes;
        let mut require = |t: Truth| truth = truth.and(t);
        if nested && let Some(period) = p.period {
            require(Truth::of(period.contains(self.now)));
        }
        if !p.actions.is_empty() {
            require(Truth::of(p.actions.iter().any(|a| READ_ACTIONS.contains(&a.as_str()))));
        }
        if !p.recipients.is_empty() {
            require(Truth::of(p.recipients.iter().any(|r| requester.actors.contains(r))));
        }
        if !p.authors.is_empty() {
            require(known(&facts.authors, |authors| {
                p.authors.iter().any(|a| authors.contains(a))
            }));
        }
        if !p.custodians.is_empty() {
            require(known(&facts.custodians, |custodians| {
                p.custodians.iter().any(|c| custodians.contains(c))
            }));
        }
        if !p.purposes.is_empty() {
            let purposes = super::purposes_with_ancestors(&requester.purposes);
            require(Truth::of(p.purposes.iter().any(|p| purposes.contains(&p.as_str()))));
        }
        if !p.classes.is_empty() {
            require(Truth::of(p.classes.contains(&facts.resource_type)));
        }
        if !p.codes.is_empty() {
            require(known(&facts.codes, |codes| {
                p.codes.iter().any(|(system, code)| {
                    codes
                        .iter()
                        .any(|(s, c)| c == code && (system.is_none() || s.is_none() || s == system))
                })
            }));
        }
        if !p.labels.is_empty() {
            require(known(&facts.labels, |labels| {
                p.labels.iter().any(|label| covers(label, labels))
            }));
        }
        if let Some(window) = p.data_period {
            require(known(&facts.clinical, |clinical| {
                clinical.is_some_and(|date| window.covers(&date))
            }));
        }
        if !p.data.is_empty() {
            let mut any = Truth::No;
            for (meaning, reference) in &p.data {
                let one = self.data(meaning, reference);
                any = match (any, one) {
                    (Truth::Yes, _) | (_, Truth::Yes) => Truth::Yes,
                    (Truth::Unknown, _) | (_, Truth::Unknown) => Truth::Unknown,
                    _ => Truth::No,
                };
            }
            require(any);
        }
        truth
    }

    /// Whether the resource is what a `data` entry names, as its `meaning` says.
    fn data(&self, meaning: &str, reference: &str) -> Truth {
        let facts = self.facts;
        let Some(own) = &facts.reference else {
            return Truth::Unknown;
        };
        if own == reference {
            return Truth::Yes;
        }
        match meaning {
            "instance" => Truth::No,
            // The named resource and what it refers to.
            "related" => match self.related.get(reference) {
                Some(references) => Truth::of(references.contains(own)),
                None => Truth::Unknown,
            },
            // The named resource and what refers to it.
            "dependents" => known(&facts.references, |references| {
                references.iter().any(|r| r == reference)
            }),
            "authoredby" => known(&facts.authors, |authors| authors.iter().any(|a| a == reference)),
            _ => Truth::No,
        }
    }
}

fn known<T>(fact: &Option<T>, test: impl FnOnce(&T) -> bool) -> Truth {
    match fact {
        Some(value) => Truth::of(test(value)),
        None => Truth::Unknown,
    }
}

/// Whether a provision's security `label` covers a resource labelled `labels`: a
/// confidentiality label covers its level and below (an unlabelled resource is `N`, normal);
/// any other label covers the resources that carry it.
fn covers(label: &str, labels: &[String]) -> bool {
    let level = |code: &str| CONFIDENTIALITY.iter().position(|c| *c == code);
    match level(label) {
        Some(ceiling) => {
            let resource = labels.iter().filter_map(|l| level(l)).max().unwrap_or(3);
            resource <= ceiling
        }
        None => labels.iter().any(|l| l == label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidentiality_is_a_high_water_mark() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers("R", &labels(&["N"])));
        assert!(covers("R", &labels(&[])), "unlabelled is normal");
        assert!(!covers("N", &labels(&["R"])));
        assert!(covers("V", &labels(&["R", "PSY"])));
        assert!(covers("PSY", &labels(&["PSY"])));
        assert!(!covers("PSY", &labels(&["N"])));
    }
}
