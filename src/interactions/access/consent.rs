//! Patients' Consents applied to what leaves the server: the decision of `consent::decide` for
//! every resource a caller reads, on the same path as its scopes (README "Consent policy").
//!
//! - Who is governed: callers with a token, but for a `system/` client without a user (unless
//!   `--consent-system-callers`); the patient reading its own data is not (per owner).
//! - `View`: one request's caller, purposes, the consents in force and what they decide per
//!   patient and type: permit, deny, or "mixed" (the decision depends on each resource's data).
//! - Reads, history and search rows are judged one by one (`View::judge`); searches, chains,
//!   `_has` and histories are narrowed in SQL first (`consent_narrow`), so that totals and pages
//!   do not depend on withheld resources.
//! - The consents are read again whenever any Consent or PractitionerRole was written, by this
//!   process or another one on the same database (`consent_store::Loaded`).

use super::consent_store::{self, Loaded};
use crate::auth::Caller;
use crate::auth::scope::Context;
use crate::consent::policy::relative;
use crate::consent::{Decision, Effect, Reason, Requester, Settings, facts};
use crate::error::Result;
use crate::interactions::Cx;
use crate::model::ResourceType;
use crate::search::compartments;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The most types a search may cover for which the resources of patients whose consents decide
/// by data are judged one by one (see `View::prepare`).
const MOST_TYPES_JUDGED: usize = 16;

/// What a patient's consents decide for the caller about the resources of one type.
#[derive(Debug, Clone)]
pub enum Class {
    /// Every one is disclosed; with the deny that an emergency purpose overrode (break-glass).
    Permit(Option<Decision>),
    /// None is.
    Deny(Decision),
    /// It depends on each resource's data (codes, labels, dates, authors, references).
    Mixed,
}

/// The decision about one resource.
#[derive(Debug, Clone)]
pub enum Verdict {
    Permit,
    /// Permitted only because the purpose of use is an emergency: recorded in the audit trail.
    BreakGlass(Decision),
    /// Withheld: to the caller it does not exist.
    Deny(Decision),
}

/// One request's view of the consents.
pub struct View {
    pub requester: Requester,
    /// The caller's own patient id (a Patient user), whose data its consents do not govern.
    own_patient: Option<String>,
    settings: Settings,
    now: DateTime<Utc>,
    base: Arc<str>,
    loaded: Arc<Loaded>,
    classes: Mutex<HashMap<(String, Option<ResourceType>), Class>>,
    /// Per type: the ids of "mixed" patients' resources that their consents withhold (worked
    /// out by `prepare` before a search is narrowed).
    withheld: Mutex<HashMap<ResourceType, Vec<String>>>,
}

/// The view of the request of `cx`, or `None` when consents do not govern its caller. Read once
/// per request (a Bundle's entries share it).
pub async fn view(cx: &Cx) -> Result<Option<Arc<View>>> {
    let Some((actor, own_patient)) = governed(cx) else {
        return Ok(None);
    };
    cx.consent
        .get_or_try_init(|| async {
            let loaded = consent_store::loaded(cx).await?;
            let actors = match &actor {
                Some(actor) => loaded.acting_as(cx, actor).await?,
                None => Vec::new(),
            };
            Ok::<_, crate::error::Error>(Some(Arc::new(View {
                requester: Requester {
                    actors,
                    purposes: caller_purposes(cx),
                },
                own_patient,
                settings: cx.services.consent,
                now: Utc::now(),
                base: cx.services.base_url.clone(),
                loaded,
                classes: Mutex::default(),
                withheld: Mutex::default(),
            })))
        })
        .await
        .cloned()
}

/// The purposes of use the caller's token states, else the server's default.
pub fn caller_purposes(cx: &Cx) -> Vec<String> {
    match &cx.caller {
        Caller::Token(grant) if !grant.purposes.is_empty() => grant.purposes.clone(),
        _ => vec![cx.services.consent_default_purpose.clone()],
    }
}

/// Whether consents govern the caller of `cx`: its actor (the token's `fhirUser`, relative) and
/// its own patient id when it is a Patient. The server's own work is never governed; a caller
/// without a token (authorization off) or a `system/` client without a user only with
/// `--consent-system-callers`.
fn governed(cx: &Cx) -> Option<(Option<String>, Option<String>)> {
    let system_callers = cx.services.consent_system_callers;
    match &cx.caller {
        Caller::System(_) => None,
        Caller::Anonymous => system_callers.then_some((None, None)),
        Caller::Token(grant) => {
            let actor = grant.fhir_user.as_deref().map(|u| relative(u, &cx.services.base_url));
            let only_system = grant.scopes.scopes.iter().all(|s| s.context == Context::System);
            if actor.is_none() && only_system && !system_callers {
                return None;
            }
            let own_patient = actor
                .as_deref()
                .and_then(|a| a.strip_prefix("Patient/"))
                .map(str::to_owned);
            Some((actor, own_patient))
        }
    }
}

/// Whether consents govern resources of `resource_type`: a patient's data (the Patient and the
/// types of its compartment), but for the audit trail, which is the record of who saw them.
pub fn governs(resource_type: ResourceType) -> bool {
    let name = resource_type.as_str();
    name != "AuditEvent" && (name == "Patient" || compartments::params("Patient", name).is_some())
}

impl View {
    /// What `patient`'s (an id) consents decide about resources of `resource_type`.
    pub fn class(&self, patient: &str, resource_type: ResourceType) -> Class {
        if self.own_patient.as_deref() == Some(patient) {
            return Class::Permit(None);
        }
        let reference = format!("Patient/{patient}");
        let consents = self.loaded.consents_of(&reference);
        // Without consents that tell types apart, one decision holds for every type.
        let by_type = self.loaded.tells_types_apart(&reference);
        // Withheld whole by `prepare` (too many resources to judge one by one), whatever the key.
        if let Some(class) = self.lock_classes().get(&(patient.to_owned(), Some(resource_type))) {
            return class.clone();
        }
        let key = (patient.to_owned(), by_type.then_some(resource_type));
        if let Some(class) = self.lock_classes().get(&key) {
            return class.clone();
        }
        let decision = crate::consent::decide(
            consents,
            &reference,
            &self.requester,
            &crate::consent::Facts::of_type(resource_type.as_str()),
            self.loaded.related(),
            &self.settings,
            self.now,
        );
        let class = classify(decision);
        self.lock_classes().insert(key, class.clone());
        class
    }

    /// What a patient without consents gets: the server's default (or break-glass from it).
    pub fn default_class(&self, resource_type: ResourceType) -> Class {
        let decision = crate::consent::decide(
            &[],
            "Patient/-",
            &self.requester,
            &crate::consent::Facts::of_type(resource_type.as_str()),
            self.loaded.related(),
            &self.settings,
            self.now,
        );
        classify(decision)
    }

    /// Whether patients without consents are withheld (`--consent-default deny`, no break-glass).
    pub fn withholds_by_default(&self, resource_type: ResourceType) -> bool {
        matches!(self.default_class(resource_type), Class::Deny(_))
    }

    /// Whether any patient has a Consent in force on this server (a fact about the server, not
    /// about what this caller may see).
    pub fn any_in_force(&self) -> bool {
        self.loaded.patients().next().is_some()
    }

    /// The caller's own patient id, when it is a Patient.
    pub fn own_patient(&self) -> Option<&str> {
        self.own_patient.as_deref()
    }

    /// The ids of the patients with consents in force, the caller's own left out.
    pub fn consenting_patients(&self) -> impl Iterator<Item = &str> {
        self.loaded
            .patients()
            .filter(move |p| self.own_patient.as_deref() != Some(*p))
    }

    /// The decision about version content `content` of `resource_type/id`, whose compartments
    /// are those of `owners` (and its own, for a Patient).
    pub fn judge(&self, resource_type: ResourceType, id: &str, owners: &[String], content: &Bytes) -> Verdict {
        if !governs(resource_type) {
            return Verdict::Permit;
        }
        let itself = (resource_type.as_str() == "Patient").then_some(id);
        let mut verdict = Verdict::Permit;
        let mut parsed = None;
        for owner in owners.iter().map(String::as_str).chain(itself) {
            let class = if self.loaded.has_consents(&format!("Patient/{owner}"))
                || self.own_patient.as_deref() == Some(owner)
            {
                self.class(owner, resource_type)
            } else {
                self.default_class(resource_type)
            };
            let decided = match class {
                Class::Permit(None) => continue,
                Class::Permit(Some(overridden)) => Verdict::BreakGlass(overridden),
                Class::Deny(decision) => Verdict::Deny(decision),
                Class::Mixed => {
                    let resource = parsed.get_or_insert_with(|| serde_json::from_slice(content).unwrap_or_default());
                    let reference = format!("Patient/{owner}");
                    let decision = crate::consent::decide(
                        self.loaded.consents_of(&reference),
                        &reference,
                        &self.requester,
                        &facts::of(resource_type.as_str(), id, resource, &self.base),
                        self.loaded.related(),
                        &self.settings,
                        self.now,
                    );
                    match decision.effect {
                        Effect::Deny => Verdict::Deny(decision),
                        Effect::Permit if decision.reason == Reason::BreakGlass => Verdict::BreakGlass(decision),
                        Effect::Permit => continue,
                    }
                }
            };
            match decided {
                Verdict::Deny(_) => return decided,
                Verdict::BreakGlass(_) => verdict = decided,
                Verdict::Permit => {}
            }
        }
        verdict
    }

    /// Works out, for each of `types`, which resources of "mixed" patients their consents
    /// withhold, so that a search can leave them out in SQL (`withheld_ids`). A patient with more
    /// than `consent_store::MOST_ROWS` resources of a type, or any such patient in a search of
    /// more than `MOST_TYPES_JUDGED` types, is withheld whole for it (and logged).
    pub async fn prepare(&self, cx: &Cx, types: &[ResourceType]) -> Result<()> {
        for resource_type in types.iter().copied().filter(|t| governs(*t)) {
            if self.lock_withheld().contains_key(&resource_type) {
                continue;
            }
            let mixed: Vec<String> = self
                .consenting_patients()
                .filter(|p| matches!(self.class(p, resource_type), Class::Mixed))
                .map(str::to_owned)
                .collect();
            let mut withheld = Vec::new();
            for patient in mixed {
                // A search of many types at once (a system search without `_type`) does not
                // judge every such patient's resources of each: they are withheld for it.
                let rows = if types.len() > MOST_TYPES_JUDGED {
                    None
                } else {
                    consent_store::compartment_rows(cx, &patient, resource_type).await?
                };
                match rows {
                    Some(rows) => {
                        for (id, owners, content) in rows {
                            if matches!(self.judge(resource_type, &id, &owners, &content), Verdict::Deny(_)) {
                                withheld.push(id);
                            }
                        }
                    }
                    None => {
                        if types.len() <= MOST_TYPES_JUDGED {
                            tracing::warn!(
                                %resource_type,
                            "a patient's consents decide by data over more resources than are checked one by one: \
                             all of its resources of the type are withheld from this request"
                            );
                        }
                        let whole = Class::Deny(Decision {
                            effect: Effect::Deny,
                            consent: None,
                            provision: None,
                            reason: Reason::DependsOnData,
                            depends_on_data: true,
                        });
                        self.lock_classes().insert((patient, Some(resource_type)), whole);
                    }
                }
            }
            withheld.sort();
            withheld.dedup();
            self.lock_withheld().insert(resource_type, withheld);
        }
        Ok(())
    }

    /// The ids of `resource_type` resources that `prepare` found withheld.
    pub fn withheld_ids(&self, resource_type: ResourceType) -> Vec<String> {
        self.lock_withheld().get(&resource_type).cloned().unwrap_or_default()
    }

    fn lock_classes(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Option<ResourceType>), Class>> {
        self.classes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_withheld(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceType, Vec<String>>> {
        self.withheld.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn classify(decision: Decision) -> Class {
    if decision.depends_on_data {
        return Class::Mixed;
    }
    match decision.effect {
        Effect::Deny => Class::Deny(decision),
        Effect::Permit if decision.reason == Reason::BreakGlass => Class::Permit(Some(decision)),
        Effect::Permit => Class::Permit(None),
    }
}
