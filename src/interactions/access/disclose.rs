//! Each resource about to leave the server, checked against what the caller may reach: a read,
//! vread or history entry, a search match, an included resource. A search's rows were narrowed
//! in SQL already; this re-check is the second, independent line (a row it refuses is left out
//! and logged as the bug it is). A Group admitted through a patient's compartment is disclosed
//! without its other members.

use super::{Reach, Rule, consent, forbidden, is_restricted, reach};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::interactions::Cx;
use crate::model::{ResourceType, VersionId};
use crate::search::compile;
use crate::search::params::reference;
use crate::search::plan::Plan;
use crate::search::query::Clause;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// A version the caller may see, as it may see it.
pub enum Disclosed {
    /// The content, with what the caller may not see removed.
    Content(Bytes),
    /// Not within reach: to the caller it does not exist.
    Hidden,
}

/// The content of version `version_id` of `resource_type/id` (`None` for a delete) as the
/// caller of `cx` may see it with `permission`; `current`: the version is the resource's current
/// one. A type the caller may not reach at all is a `403` (the same whatever the data).
///
/// A delete is hidden from a caller limited by rules: whose it was is not in it. A granular
/// rule admits current versions only, through the same SQL as a search (index rows describe
/// current versions).
///
/// Then the patients' consents (`consent::View::judge`): one they withhold is hidden too.
pub async fn version(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    version_id: VersionId,
    content: Option<Bytes>,
    permission: Permission,
    current: bool,
) -> Result<Option<Disclosed>> {
    let disclosed = within_scopes(cx, resource_type, id, version_id, content, permission, current).await?;
    let Some(Disclosed::Content(content)) = disclosed else {
        return Ok(disclosed);
    };
    let view = consent::view(cx).await?;
    Ok(Some(
        if consents_admit(cx, view.as_deref(), resource_type, id, version_id, &content)? {
            Disclosed::Content(content)
        } else {
            Disclosed::Hidden
        },
    ))
}

/// Whether the patients' consents let the caller see version `version_id` of
/// `resource_type/id` with `content` (`view`: the caller's, `None` when consents do not govern
/// it). A withheld resource and a break-glass access are recorded in the audit trail.
pub fn consents_admit(
    cx: &Cx,
    view: Option<&consent::View>,
    resource_type: ResourceType,
    id: &str,
    version_id: VersionId,
    content: &Bytes,
) -> Result<bool> {
    let Some(view) = view else {
        return Ok(true);
    };
    if !consent::governs(resource_type) {
        return Ok(true);
    }
    let owners = cx
        .services
        .owners
        .owners(&cx.services.base_url, resource_type, id, version_id, || parse(content))?;
    Ok(match view.judge(resource_type, id, &owners, content) {
        consent::Verdict::Permit => true,
        consent::Verdict::BreakGlass(decision) => {
            crate::interactions::audited::break_glass(cx, resource_type, id, &decision);
            true
        }
        consent::Verdict::Deny(decision) => {
            crate::interactions::audited::withheld_by_consent(cx, resource_type, id, &decision);
            false
        }
    })
}

/// `version` as the scopes alone decide it, for writes (which consents do not govern: their
/// answers are judged by the dispatcher).
pub async fn within_scopes(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    version_id: VersionId,
    content: Option<Bytes>,
    permission: Permission,
    current: bool,
) -> Result<Option<Disclosed>> {
    if !is_restricted(cx) {
        return Ok(content.map(Disclosed::Content));
    }
    let rules = match reach(cx, resource_type, permission) {
        Reach::None => return Err(forbidden(resource_type, permission)),
        Reach::All => return Ok(content.map(Disclosed::Content)),
        Reach::Some(rules) => rules,
    };
    let Some(content) = content else {
        return Ok(Some(Disclosed::Hidden));
    };
    let owners = owners(cx, resource_type, id, version_id, &content, &rules)?;
    let mut admitted = None;
    for rule in &rules {
        if !in_patient_compartment(resource_type, id, &owners, rule) {
            continue;
        }
        if rule.filter.is_empty() || (current && matches_filter(cx, resource_type, id, rule).await?) {
            admitted = Some(rule);
            break;
        }
    }
    Ok(Some(match admitted {
        None => {
            crate::interactions::audited::withheld(cx, resource_type, id);
            Disclosed::Hidden
        }
        Some(_) => Disclosed::Content(redacted(&rules, resource_type, content)?),
    }))
}

/// A search row (a match with `s`, an included resource with `r`), version `version_id`: its
/// content as the caller may see it, or `None` when it is out of reach. The SQL applied the
/// rules' filters; this checks the type and the compartment again.
pub fn row(
    cx: &Cx,
    resource_type: &str,
    id: &str,
    version_id: VersionId,
    content: Bytes,
    permission: Permission,
) -> Result<Option<Bytes>> {
    if !is_restricted(cx) {
        return Ok(Some(content));
    }
    let Some(t) = ResourceType::parse(resource_type) else {
        return Ok(None);
    };
    let rules = match reach(cx, t, permission) {
        Reach::None => return Ok(None),
        Reach::All => return Ok(Some(content)),
        Reach::Some(rules) => rules,
    };
    let owners = owners(cx, t, id, version_id, &content, &rules)?;
    if !rules.iter().any(|rule| in_patient_compartment(t, id, &owners, rule)) {
        return Ok(None);
    }
    Ok(Some(redacted(&rules, t, content)?))
}

/// The patients whose compartments the version is in, when a rule asks for one (remembered per
/// version: `owners::OwnerCache`).
fn owners(
    cx: &Cx,
    resource_type: ResourceType,
    id: &str,
    version_id: VersionId,
    content: &Bytes,
    rules: &[Rule],
) -> Result<Arc<[String]>> {
    if rules.iter().all(|rule| rule.patient.is_none()) {
        return Ok(Arc::from([]));
    }
    cx.services
        .owners
        .owners(&cx.services.base_url, resource_type, id, version_id, || parse(content))
}

/// Whether a version with `owners` is in the compartment of `rule`'s patient, if it names one.
fn in_patient_compartment(resource_type: ResourceType, id: &str, owners: &[String], rule: &Rule) -> bool {
    let Some(patient) = &rule.patient else {
        return true;
    };
    (resource_type.as_str() == "Patient" && id == patient) || owners.contains(patient)
}

/// Whether the current version of `resource_type/id` matches the search query of `rule`.
async fn matches_filter(cx: &Cx, resource_type: ResourceType, id: &str, rule: &Rule) -> Result<bool> {
    let services = &cx.services;
    let mut request = super::narrow::scope_query(cx, resource_type, rule)?;
    request.clauses.insert(0, Clause::Id(vec![id.to_owned()]));
    let sql = compile::count_query(services.store.dialect(), &request, &Plan::sets());
    Ok(services.store.count(&sql).await? > 0)
}

/// `content`, or when the caller reaches a Group only through patients' compartments, the Group
/// without the members that are other patients (marked `SUBSETTED`, as `_summary` marks a
/// subset, and without its count, narrative and contained resources): being in one Group with
/// the caller's patient discloses nothing about the others.
fn redacted(rules: &[Rule], resource_type: ResourceType, content: Bytes) -> Result<Bytes> {
    if resource_type.as_str() != "Group" || rules.iter().any(|r| r.patient.is_none()) {
        return Ok(content);
    }
    let mut resource = parse(&content)?;
    let patients: Vec<&str> = rules.iter().filter_map(|r| r.patient.as_deref()).collect();
    let Some(members) = resource.get_mut("member").and_then(Value::as_array_mut) else {
        return Ok(content);
    };
    let before = members.len();
    // A member is kept when its reference names one of the caller's patients or something
    // that is not a Patient; one named otherwise (by identifier only, a contained resource, a
    // reference of another form) could be anyone, and goes.
    members.retain(|member| {
        let reference = member.pointer("/entity/reference").and_then(Value::as_str);
        match reference.and_then(reference::split) {
            Some((kind, id)) => kind != "Patient" || patients.contains(&id.as_str()),
            None => false,
        }
    });
    if members.len() == before {
        return Ok(content);
    }
    if members.is_empty()
        && let Some(group) = resource.as_object_mut()
    {
        group.remove("member");
    }
    if let Some(group) = resource.as_object_mut() {
        // The count, the narrative and contained resources may tell of those left out.
        group.remove("quantity");
        group.remove("text");
        group.remove("contained");
        crate::search::subset::mark_subsetted(group);
    }
    Ok(Bytes::from(
        serde_json::to_vec(&resource).expect("a JSON value serialises"),
    ))
}

fn parse(content: &Bytes) -> Result<Value> {
    serde_json::from_slice(content).map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))
}
