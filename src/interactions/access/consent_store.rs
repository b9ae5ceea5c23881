//! The consents in force as the server last read them, shared by every request of the process,
//! and what consent decisions read besides: whom a user acts as (its PractitionerRoles and their
//! Organizations), what the resources named by `related` provisions refer to, and a patient's
//! resources of a type.
//!
//! Freshness across processes: before each governed request the server counts the stored
//! versions of Consents and PractitionerRoles (one indexed query). Every create, update or delete
//! adds a version, so a change in the count, made by any process on the database, means the
//! consents are read again before that request is decided.

use super::super::Cx;
use crate::auth::SystemTask;
use crate::consent::facts;
use crate::consent::policy::{Policy, Provision, relative};
use crate::error::Result;
use crate::model::ResourceType;
use crate::search::plan::Plan;
use crate::sql::Sql;
use bytes::Bytes;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// The most resources of one patient and type whose consents decide by data that are checked
/// one by one for a search; beyond, the patient's resources of the type are withheld whole.
pub const MOST_ROWS: usize = 10_000;
/// The most resources named by `related` provisions whose references are read.
const MOST_RELATED: usize = 100;
/// The most PractitionerRoles of one practitioner read.
const MOST_ROLES: usize = 1000;
/// A page of a search the server runs for itself.
const PAGE: usize = 1000;

/// The Consents in force and what was read with them, as of `stamp`.
#[derive(Default)]
pub struct Loaded {
    /// Read at all (the cache starts empty).
    read: bool,
    stamp: i64,
    /// Active Consents by `Patient/[id]`, newest first.
    by_patient: HashMap<String, Vec<Policy>>,
    /// Patients some of whose consents select by resource type (`class`).
    by_type: HashSet<String>,
    /// For `related` data entries: the references the named resources hold.
    related: HashMap<String, Vec<String>>,
    /// Whom each `fhirUser` acts as.
    actors: Mutex<HashMap<String, Vec<String>>>,
}

/// The cache of `Loaded` a process keeps (`Services::consents`).
#[derive(Default)]
pub struct ConsentCache {
    loaded: tokio::sync::Mutex<Arc<Loaded>>,
}

/// The consents in force now: the cached ones, or read again when any Consent or
/// PractitionerRole was written since.
pub async fn loaded(cx: &Cx) -> Result<Arc<Loaded>> {
    let store = &cx.services.store;
    // The versions of Consents and PractitionerRoles written so far, counted by the database
    // (migration `consent_changes`).
    let mut stamp_query = Sql::new(store.dialect());
    stamp_query.push("SELECT n FROM consent_changes");
    let stamp = store.count(&stamp_query).await?;
    let mut cached = cx.services.consents.loaded.lock().await;
    if cached.read && cached.stamp == stamp {
        return Ok(cached.clone());
    }
    let system = cx.as_system(SystemTask::ConsentLookup);
    let mut by_patient: HashMap<String, Vec<Policy>> = HashMap::new();
    let query = vec![
        ("status".to_owned(), "active".to_owned()),
        ("_sort".to_owned(), "-date".to_owned()),
    ];
    for consent in every(cx, consent_type(), query, usize::MAX).await? {
        let policy = Policy::read(&consent, &cx.services.base_url);
        if let Some(patient) = policy.patient.clone() {
            by_patient.entry(patient).or_default().push(policy);
        }
    }
    let by_type = by_patient
        .iter()
        .filter(|(_, policies)| policies.iter().any(selects_by_type))
        .map(|(patient, _)| patient.clone())
        .collect();
    let related = related_references(&system, by_patient.values().flatten()).await?;
    let loaded = Arc::new(Loaded {
        read: true,
        stamp,
        by_patient,
        by_type,
        related,
        actors: Mutex::default(),
    });
    *cached = loaded.clone();
    Ok(loaded)
}

impl Loaded {
    /// `patient`'s (`Patient/[id]`) active Consents, newest first.
    pub fn consents_of(&self, patient: &str) -> &[Policy] {
        self.by_patient.get(patient).map_or(&[], Vec::as_slice)
    }

    pub fn has_consents(&self, patient: &str) -> bool {
        self.by_patient.contains_key(patient)
    }

    /// Whether `patient`'s consents decide differently for different resource types.
    pub fn tells_types_apart(&self, patient: &str) -> bool {
        self.by_type.contains(patient)
    }

    /// The ids of the patients with active Consents.
    pub fn patients(&self) -> impl Iterator<Item = &str> {
        self.by_patient.keys().filter_map(|p| p.strip_prefix("Patient/"))
    }

    pub fn related(&self) -> &HashMap<String, Vec<String>> {
        &self.related
    }

    /// Whom `actor` acts as (see `acting_as`), remembered until the consents are read again.
    pub async fn acting_as(&self, cx: &Cx, actor: &str) -> Result<Vec<String>> {
        if let Some(actors) = self.actors.lock().unwrap_or_else(PoisonError::into_inner).get(actor) {
            return Ok(actors.clone());
        }
        let system = cx.as_system(SystemTask::ConsentLookup);
        let actors = acting_as(&system, actor).await?;
        let mut memo = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.len() > 10_000 {
            memo.clear();
        }
        memo.insert(actor.to_owned(), actors.clone());
        Ok(actors)
    }
}

fn consent_type() -> ResourceType {
    ResourceType::parse("Consent").expect("a type")
}

fn selects_by_type(policy: &Policy) -> bool {
    fn walk(provision: &Provision) -> bool {
        !provision.classes.is_empty() || provision.children.iter().any(walk)
    }
    policy.root.as_ref().is_some_and(walk)
}

/// Every resource of `resource_type` that `query` matches, up to `at_most` (see `every_row`).
async fn every(
    cx: &Cx,
    resource_type: ResourceType,
    query: Vec<(String, String)>,
    at_most: usize,
) -> Result<Vec<Value>> {
    Ok(every_row(cx, resource_type, None, query, at_most)
        .await?
        .into_iter()
        .filter_map(|(_, _, content)| serde_json::from_slice(&content).ok())
        .collect())
}

/// `(type, id, content)` of every resource of `resource_type` that `query` (and `compartment`,
/// a Patient id) matches, up to `at_most`: the search engine run by the server itself, page by
/// page (not the search interaction, which asks for this module's view in turn).
async fn every_row(
    cx: &Cx,
    resource_type: ResourceType,
    compartment: Option<&str>,
    query: Vec<(String, String)>,
    at_most: usize,
) -> Result<Vec<(String, String, Bytes)>> {
    let services = &cx.services;
    let store = &services.store;
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut page_query = query.clone();
        page_query.push(("_count".into(), PAGE.to_string()));
        if let Some(cursor) = after.take() {
            page_query.push(("_page_after".into(), cursor));
        }
        let mut request = crate::search::request::parse(
            &services.search_parameters.current(),
            Some(&[resource_type.as_str()]),
            &page_query,
            &services.base_url,
            services.search_limits,
            true,
        )?;
        if let Some(patient) = compartment {
            let types = [resource_type.as_str().to_owned()];
            request
                .clauses
                .insert(0, crate::search::compartments::clause("Patient", patient, &types));
        }
        let sql = crate::search::compile::page_query(store.dialect(), &request, &Plan::sets())?;
        let mut rows = store.search(&sql).await?;
        let more = rows.len() > PAGE;
        rows.truncate(PAGE);
        after = if more {
            rows.last().and_then(|r| r.cursor.clone())
        } else {
            None
        };
        found.extend(rows.into_iter().map(|r| (r.resource_type, r.id, r.content)));
        if found.len() >= at_most {
            found.truncate(at_most);
            return Ok(found);
        }
        if after.is_none() {
            return Ok(found);
        }
    }
}

/// One of a patient's resources: its id, the patients whose compartments it is in, its content.
pub type CompartmentRow = (String, Vec<String>, Bytes);

/// `(id, owners, content)` of `patient`'s resources of `resource_type`, or `None` when there
/// are more than `MOST_ROWS`.
pub async fn compartment_rows(
    cx: &Cx,
    patient: &str,
    resource_type: ResourceType,
) -> Result<Option<Vec<CompartmentRow>>> {
    let rows = if resource_type.as_str() == "Patient" {
        let query = vec![("_id".to_owned(), patient.to_owned())];
        every_row(cx, resource_type, None, query, MOST_ROWS + 1).await?
    } else {
        every_row(cx, resource_type, Some(patient), Vec::new(), MOST_ROWS + 1).await?
    };
    if rows.len() > MOST_ROWS {
        return Ok(None);
    }
    let base = &cx.services.base_url;
    Ok(Some(
        rows.into_iter()
            .map(|(t, id, content)| {
                let owners = serde_json::from_slice::<Value>(&content)
                    .map(|resource| crate::search::compartments::patient_owners_of(base, &t, &id, &resource))
                    .unwrap_or_default();
                (id, owners, content)
            })
            .collect(),
    ))
}

/// Whom `actor` acts as: itself; a Practitioner also as its active PractitionerRoles and their
/// Organizations; a PractitionerRole also as its Practitioner and Organization.
pub async fn acting_as(system: &Cx, actor: &str) -> Result<Vec<String>> {
    let mut actors = vec![actor.to_owned()];
    let base = system.services.base_url.clone();
    let now = chrono::Utc::now();
    let take = |role: &Value, actors: &mut Vec<String>| {
        // An inactive role, or one whose period has ended or not begun, makes no member.
        let period = crate::consent::Window::of_period(&role["period"]);
        if role["active"] == false || period.is_some_and(|p| !p.contains(now)) {
            return;
        }
        for member in ["practitioner", "organization"] {
            if let Some(reference) = role[member]["reference"].as_str() {
                actors.push(relative(reference, &base));
            }
        }
        if let Some(id) = role["id"].as_str() {
            actors.push(format!("PractitionerRole/{id}"));
        }
    };
    let role_type = ResourceType::parse("PractitionerRole").expect("a type");
    match actor.split_once('/') {
        Some(("Practitioner", _)) => {
            let query = vec![("practitioner".to_owned(), actor.to_owned())];
            for role in every(system, role_type, query, MOST_ROLES).await? {
                take(&role, &mut actors);
            }
        }
        Some(("PractitionerRole", id)) => {
            if let Some(role) = system.services.store.read(role_type, id).await?
                && let Some(content) = role.content.as_deref()
                && let Ok(role) = serde_json::from_slice::<Value>(content)
            {
                take(&role, &mut actors);
            }
        }
        _ => {}
    }
    actors.sort();
    actors.dedup();
    Ok(actors)
}

/// For every `data` entry of meaning `related` in `consents`: the references the named resource
/// holds (one not stored refers to nothing).
async fn related_references<'p>(
    system: &Cx,
    consents: impl Iterator<Item = &'p Policy>,
) -> Result<HashMap<String, Vec<String>>> {
    fn named(provision: &Provision, into: &mut Vec<String>) {
        into.extend(
            provision
                .data
                .iter()
                .filter(|(meaning, _)| meaning == "related")
                .map(|(_, reference)| reference.clone()),
        );
        for child in &provision.children {
            named(child, into);
        }
    }
    let mut references = Vec::new();
    for consent in consents {
        if let Some(root) = &consent.root {
            named(root, &mut references);
        }
    }
    references.sort();
    references.dedup();
    references.truncate(MOST_RELATED);
    let mut related = HashMap::new();
    for reference in references {
        let Some((kind, id)) = reference
            .split_once('/')
            .and_then(|(t, id)| Some((ResourceType::parse(t)?, id)))
        else {
            continue;
        };
        let content = system.services.store.read(kind, id).await?.and_then(|v| v.content);
        let held = content
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
            .and_then(|c| facts::of(kind.as_str(), id, &c, &system.services.base_url).references)
            .unwrap_or_default();
        related.insert(reference, held);
    }
    Ok(related)
}
