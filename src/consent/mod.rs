//! Consent: whether a patient's Consent resources let a requester see one of the patient's
//! resources. Pure: Consents, the requester and the resource's facts come in as values; loading
//! them, and applying the decision to reads and searches, is the request path's job.
//!
//! The policy (the README's "Consent" section says it in prose):
//! - A consent applies to a patient's resource when it is about that patient, `active`, of scope
//!   `patient-privacy`, and within its root provision's `period` (`policy`).
//! - Its base: `policyRule` OPTIN permits, OPTOUT denies; else the root provision's `type`; else
//!   deny.
//! - The root provision is an exception to the base (R4: "An exception to the base policy"): when
//!   it matches, its `type` (or, having none as R4 prescribes for the root, the opposite of the
//!   base) holds. A root that selects nothing (only a `period`, or only nested rules) carries
//!   the base; a root whose `type` is the base's bounds what the consent is about, so a request
//!   it does not match is not governed by that consent.
//! - Nested provisions refine their parent: the deepest matching one decides; among siblings,
//!   deny wins; one without a `type` is the opposite of its parent (`evaluate`).
//! - A provision matches when each element it has matches (any of its values): recipients (actor
//!   roles other than author and custodian) are the requester; author (`AUT`) and custodian
//!   (`CST`) actors are the resource's; `action` includes a read (`access`, `use`, `disclose`);
//!   `purpose`, `class` (resource type), `code`, `securityLabel` (a confidentiality label covers
//!   its level and below), `period` (now), `dataPeriod` (the resource's clinical date), `data`
//!   (`instance`, `related`, `dependents`, `authoredby`).
//! - Several consents decide: the newest (`dateTime`) wins, a tie to deny; or any deny wins
//!   (`Combine`). None: the server's default. Break-glass: a deny gives way to purpose `ETREAT`
//!   (or `BTG`) when allowed, and says so.

pub mod evaluate;
pub mod facts;
pub mod policy;

use chrono::{DateTime, Utc};
use policy::Policy;
use serde_json::Value;
use std::cell::Cell;
use std::collections::HashMap;

/// Permit or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Permit,
    Deny,
}

impl Effect {
    pub fn opposite(self) -> Effect {
        match self {
            Effect::Permit => Effect::Deny,
            Effect::Deny => Effect::Permit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Deny => "deny",
        }
    }
}

/// A span of time, each end open when absent; `end` exclusive (a period's end date is inclusive
/// at its precision: `2015-02-01` runs to the end of that day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    /// A FHIR Period; `None` when it is absent or has neither end.
    pub fn of_period(period: &Value) -> Option<Window> {
        let edge = |name: &str| {
            period[name]
                .as_str()
                .and_then(|d| crate::model::InstantRange::parse(d).ok())
        };
        let (start, end) = (edge("start"), edge("end"));
        (start.is_some() || end.is_some()).then(|| Window {
            start: start.map(|r| r.start),
            end: end.map(|r| r.end),
        })
    }

    /// A date or dateTime (the span of its precision), or a Period.
    pub fn of_date_or_period(value: &Value) -> Option<Window> {
        match value {
            Value::String(date) => crate::model::InstantRange::parse(date).ok().map(|r| Window {
                start: Some(r.start),
                end: Some(r.end),
            }),
            Value::Object(_) => Window::of_period(value),
            _ => None,
        }
    }

    /// The start of a date or dateTime.
    pub fn start_of(date: &str) -> Option<DateTime<Utc>> {
        crate::model::InstantRange::parse(date).ok().map(|r| r.start)
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| s <= at) && self.end.is_none_or(|e| at < e)
    }

    /// Whether `other` lies wholly within this window (an open end of `other` only within an
    /// open end here).
    pub fn covers(&self, other: &Window) -> bool {
        let start_ok = match (self.start, other.start) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(s), Some(o)) => s <= o,
        };
        let end_ok = match (self.end, other.end) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(e), Some(o)) => o <= e,
        };
        start_ok && end_ok
    }
}

/// What provisions ask of a resource; a fact that is `None` is not known (`$evaluate` about a
/// type rather than a stored resource).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub resource_type: String,
    /// `Type/id`.
    pub reference: Option<String>,
    pub codes: Option<Vec<(Option<String>, String)>>,
    /// `meta.security` codes.
    pub labels: Option<Vec<String>>,
    /// The clinical date (`Some(None)`: the resource has none).
    pub clinical: Option<Option<Window>>,
    pub authors: Option<Vec<String>>,
    pub custodians: Option<Vec<String>>,
    /// Every reference the resource holds.
    pub references: Option<Vec<String>>,
}

impl Facts {
    /// What is known of any resource of `resource_type`: its type only.
    pub fn of_type(resource_type: &str) -> Facts {
        Facts {
            resource_type: resource_type.to_owned(),
            ..Facts::default()
        }
    }
}

/// Who asks, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Requester {
    /// The references the requester acts as (`Practitioner/…`, its PractitionerRoles and their
    /// Organizations, …), relative for this server's resources.
    pub actors: Vec<String>,
    /// v3 PurposeOfUse codes (`TREAT`, `ETREAT`, `HRESCH`, …).
    pub purposes: Vec<String>,
}

/// How several consents that decide combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The most recent `dateTime` wins (a tie: deny).
    Newest,
    /// Any deny wins.
    DenyWins,
}

/// The server's consent settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// When no consent decides.
    pub default: Effect,
    pub combine: Combine,
    /// Whether purpose `ETREAT` overrides a deny.
    pub break_glass: bool,
}

/// Why a decision is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No consent applies: the server's default.
    Default,
    /// A consent's base policy decided (no provision matched).
    Base,
    /// A provision decided.
    Provision,
    /// A deny gave way to an emergency purpose.
    BreakGlass,
    /// Asked about a type, not a resource: some of its resources would be permitted and some
    /// might not, so it is not a permit.
    DependsOnData,
}

/// A decision, with what made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub effect: Effect,
    /// `Consent/[id]` of the consent that decided.
    pub consent: Option<String>,
    /// The path of the deciding provision (`Consent.provision.provision[1]`).
    pub provision: Option<String>,
    pub reason: Reason,
    /// The decision depends on facts not given (`$evaluate` about a type): a deny that a stored
    /// resource might not get.
    pub depends_on_data: bool,
}

impl Decision {
    /// A sentence saying why.
    pub fn explanation(&self) -> String {
        let by = self.consent.as_deref().unwrap_or("no consent");
        match self.reason {
            Reason::Default => format!(
                "no applicable consent: the server's default is to {}",
                self.effect.as_str()
            ),
            Reason::Base => format!("{by}'s base policy {}s", self.effect.as_str()),
            Reason::Provision => format!(
                "{}: {} {}s",
                by,
                self.provision.as_deref().unwrap_or("Consent.provision"),
                self.effect.as_str()
            ),
            Reason::BreakGlass => format!("{by} denies, but the emergency purpose of use overrides it (break-glass)"),
            Reason::DependsOnData => format!(
                "{by} decides by each resource's data (its codes, labels, dates, authors or references): \
                 ask about a stored resource"
            ),
        }
    }
}

/// Purposes with the broader ones they are kinds of (v3 PurposeOfUse: emergency treatment is
/// treatment; break-the-glass is emergency treatment).
pub fn purposes_with_ancestors(purposes: &[String]) -> Vec<&str> {
    let mut all: Vec<&str> = purposes.iter().map(String::as_str).collect();
    for purpose in purposes {
        match purpose.as_str() {
            "ETREAT" => all.push("TREAT"),
            "BTG" => all.extend(["ETREAT", "TREAT"]),
            _ => {}
        }
    }
    all
}

/// The decision for `requester` about a resource of `patient` (`Patient/[id]`) with `facts`,
/// under `consents` (the patient's or more: those that do not apply are passed over) at `now`.
/// `related`: for `data` entries of meaning `related`, the references the named resources hold.
pub fn decide(
    consents: &[Policy],
    patient: &str,
    requester: &Requester,
    facts: &Facts,
    related: &HashMap<String, Vec<String>>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Decision {
    let run = |assume: bool| {
        let evaluation = evaluate::Evaluation {
            requester,
            facts,
            related,
            now,
            assume,
            depended: Cell::new(false),
        };
        let decided: Vec<(&Policy, evaluate::Outcome)> = consents
            .iter()
            .filter(|c| c.applies(patient, now))
            .filter_map(|c| evaluation.policy(c).map(|outcome| (c, outcome)))
            .collect();
        (combine(&decided, settings), evaluation.depended.get())
    };
    // A decision that needed an unknown fact holds for some resources of the type and maybe not
    // for others: only a deny found with the facts taken as met, or as unmet, is reported as the
    // deciding one; otherwise the answer is a deny that depends on the data. A permit is given
    // only when no unknown fact mattered.
    let (mut decision, depended) = run(true);
    if depended {
        let (other, _) = run(false);
        decision = match (decision.effect, other.effect) {
            (Effect::Deny, _) => decision,
            (_, Effect::Deny) => other,
            _ => Decision {
                effect: Effect::Deny,
                reason: Reason::DependsOnData,
                provision: None,
                ..decision
            },
        };
        decision.depends_on_data = true;
    }
    if decision.effect == Effect::Deny
        && settings.break_glass
        && purposes_with_ancestors(&requester.purposes).contains(&"ETREAT")
    {
        decision.effect = Effect::Permit;
        decision.reason = Reason::BreakGlass;
    }
    decision
}

fn combine(decided: &[(&Policy, evaluate::Outcome)], settings: &Settings) -> Decision {
    let decision = |(policy, (effect, path)): &(&Policy, evaluate::Outcome)| Decision {
        effect: *effect,
        consent: Some(policy.reference.clone()),
        provision: path.clone(),
        reason: if path.is_some() {
            Reason::Provision
        } else {
            Reason::Base
        },
        depends_on_data: false,
    };
    let chosen = match settings.combine {
        Combine::Newest => {
            let newest = decided.iter().map(|(p, _)| p.date_time).max();
            let latest: Vec<_> = decided.iter().filter(|(p, _)| Some(p.date_time) == newest).collect();
            latest
                .iter()
                .find(|(_, (effect, _))| *effect == Effect::Deny)
                .or(latest.first())
                .map(|d| decision(d))
        }
        Combine::DenyWins => decided
            .iter()
            .find(|(_, (effect, _))| *effect == Effect::Deny)
            .or(decided.first())
            .map(decision),
    };
    chosen.unwrap_or(Decision {
        effect: settings.default,
        consent: None,
        provision: None,
        reason: Reason::Default,
        depends_on_data: false,
    })
}
