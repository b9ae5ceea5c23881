//! Writes checked against what the caller may reach, just before they go to the store (a single
//! write, or every write of a transaction before any is made). A caller limited to patients'
//! compartments (a `patient/` scope, or a `user/` scope of a Patient user) writes only what is
//! its patients' alone, and leaves every other patient where it was:
//!
//! - a created resource must be in the compartment of one of the caller's patients and of no
//!   other patient (no writing into another patient's record through a `performer`, an `author`,
//!   a Patient `link`, a Group `member`);
//! - an updated resource must be its patients' alone before and after: no moving it into or
//!   out of another patient's compartment, and a resource shared with another patient (an
//!   Observation of p2 that p1 performed, a Group, a Patient linking to p1) is read-only to it;
//! - a deleted resource must be within reach and concern no other patient; one out of reach (or
//!   deleted already) is answered as a delete of one that does not exist, `If-Match` included.
//!
//! A Patient counts as concerning itself. An update that creates (or revives) needs `c` too, and
//! reviving a deleted resource needs its last version to have been within reach.

use super::{Reach, forbidden, is_restricted, reach};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::interactions::Cx;
use crate::model::ResourceType;
use crate::search::IndexRow;
use crate::search::compartments;
use crate::store::{StoredVersion, WriteOp, rules};

/// What becomes of a write the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Made as asked.
    Write,
    /// A delete of a resource the caller may not see: nothing is written, and the answer is that
    /// of a delete of a resource that does not exist.
    Nothing,
}

/// Whether the caller of `cx` may make `op`: a `403` when not (a delete out of reach is
/// `Allowed::Nothing`, as if there were nothing to delete).
pub async fn check(cx: &Cx, op: &WriteOp) -> Result<Allowed> {
    refuse_records_as_the_server(cx, op).await?;
    if let Some(allowed) = consents_check(cx, op).await? {
        return Ok(allowed);
    }
    if !is_restricted(cx) {
        return Ok(Allowed::Write);
    }
    match op {
        WriteOp::Create {
            resource_type,
            id,
            index,
            ..
        } => {
            let reach = required(cx, *resource_type, Permission::Create)?;
            if let Some(patients) = patients(&reach) {
                let after = Placement::of_index(&patients, *resource_type, id.as_str(), index);
                if !after.admitted || !after.others.is_empty() {
                    return Err(out_of_reach(*resource_type));
                }
            }
        }
        WriteOp::Update {
            resource_type,
            id,
            index,
            ..
        } => {
            let reach = required(cx, *resource_type, Permission::Update)?;
            let current = cx.services.store.read(*resource_type, id.as_str()).await?;
            let Some(patients) = patients(&reach) else {
                if current.as_ref().is_none_or(|v| v.content.is_none()) {
                    required(cx, *resource_type, Permission::Create)?;
                }
                return Ok(Allowed::Write);
            };
            let after = Placement::of_index(&patients, *resource_type, id.as_str(), index);
            let before = match current {
                Some(version) if version.content.is_some() => Some(Placement::of_version(
                    cx,
                    &patients,
                    *resource_type,
                    id.as_str(),
                    version,
                )?),
                deleted_or_missing => {
                    // Update as create (or revival): a create too.
                    let create = required(cx, *resource_type, Permission::Create)?;
                    if patients_of(&create).is_none() {
                        return Ok(Allowed::Write);
                    }
                    match deleted_or_missing {
                        Some(deleted) => {
                            last_before_delete(cx, &patients, *resource_type, id.as_str(), &deleted).await?
                        }
                        None => None,
                    }
                }
            };
            let alone = |placement: &Placement| placement.admitted && placement.others.is_empty();
            let allowed = alone(&after) && before.as_ref().is_none_or(alone);
            if !allowed {
                return Err(out_of_reach(*resource_type));
            }
        }
        WriteOp::Delete { resource_type, id, .. } => {
            let reach = required(cx, *resource_type, Permission::Delete)?;
            let Some(patients) = patients(&reach) else {
                return Ok(Allowed::Write);
            };
            let current = cx.services.store.read(*resource_type, id.as_str()).await?;
            let before = match current {
                Some(version) if version.content.is_some() => {
                    Placement::of_version(cx, &patients, *resource_type, id.as_str(), version)?
                }
                // Deleted already: whose it was is not in the delete, so it is answered as one
                // that does not exist (an `If-Match` naming its version would tell otherwise).
                _ => Placement::hidden(),
            };
            if !before.admitted {
                rules::decide(op, None)?;
                return Ok(Allowed::Nothing);
            }
            if !before.others.is_empty() {
                return Err(Error::forbidden(format!(
                    "the access token does not grant deleting this {resource_type}: it concerns another patient too"
                )));
            }
        }
        WriteOp::Reindex { .. } => {
            return Err(Error::forbidden("re-indexing is the server's own work"));
        }
    }
    Ok(Allowed::Write)
}

fn required(cx: &Cx, resource_type: ResourceType, permission: Permission) -> Result<Reach> {
    match reach(cx, resource_type, permission) {
        Reach::None => Err(forbidden(resource_type, permission)),
        reach => Ok(reach),
    }
}

/// The patients a reach is limited to, or `None` when it is not limited to patients (writes
/// never come with a granular rule, so a reach is either all or patients' compartments).
fn patients(reach: &Reach) -> Option<Vec<String>> {
    patients_of(reach).filter(|p| !p.is_empty())
}

fn patients_of(reach: &Reach) -> Option<Vec<String>> {
    let Reach::Some(rules) = reach else {
        return None;
    };
    if rules.iter().any(|rule| rule.patient.is_none()) {
        return None;
    }
    Some(rules.iter().filter_map(|rule| rule.patient.clone()).collect())
}

fn out_of_reach(resource_type: ResourceType) -> Error {
    Error::forbidden(format!(
        "the access token does not grant writing this {resource_type}: it would concern a patient other than \
         the one the token is limited to"
    ))
}

/// Where a version stands for a caller limited to `patients`.
#[derive(Debug, PartialEq, Eq)]
struct Placement {
    /// In the compartment of one of the caller's patients (or one of them, as a Patient).
    admitted: bool,
    /// The other patients it concerns (itself, for a Patient), sorted.
    others: Vec<String>,
}

impl Placement {
    fn hidden() -> Placement {
        Placement {
            admitted: false,
            others: Vec::new(),
        }
    }

    /// Of a version about to be written, from its index rows.
    fn of_index(patients: &[String], resource_type: ResourceType, id: &str, index: &[IndexRow]) -> Placement {
        let owners = compartments::patient_owners(resource_type.as_str(), id, index);
        Placement::of_owners(patients, resource_type, id, &owners)
    }

    /// Of a stored version (with content).
    fn of_version(
        cx: &Cx,
        patients: &[String],
        resource_type: ResourceType,
        id: &str,
        version: StoredVersion,
    ) -> Result<Placement> {
        let content = version.content.unwrap_or_default();
        let owners = cx
            .services
            .owners
            .owners(&cx.services.base_url, resource_type, id, version.version_id, || {
                serde_json::from_slice(&content)
                    .map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))
            })?;
        Ok(Placement::of_owners(patients, resource_type, id, &owners))
    }

    fn of_owners(patients: &[String], resource_type: ResourceType, id: &str, owners: &[String]) -> Placement {
        let itself = (resource_type.as_str() == "Patient").then_some(id);
        let concerned = owners.iter().map(String::as_str).chain(itself);
        let mut others: Vec<String> = concerned
            .clone()
            .filter(|p| !patients.iter().any(|mine| mine == p))
            .map(str::to_owned)
            .collect();
        others.sort_unstable();
        others.dedup();
        Placement {
            admitted: concerned.into_iter().any(|p| patients.iter().any(|mine| mine == p)),
            others,
        }
    }
}

/// For the revival of a deleted resource: where its last version before the delete stood.
async fn last_before_delete(
    cx: &Cx,
    patients: &[String],
    resource_type: ResourceType,
    id: &str,
    deleted: &StoredVersion,
) -> Result<Option<Placement>> {
    let last = match deleted.version_id {
        1 => None,
        v => cx.services.store.vread(resource_type, id, v - 1).await?,
    };
    Ok(Some(match last {
        Some(version) if version.content.is_some() => Placement::of_version(cx, patients, resource_type, id, version)?,
        _ => Placement::hidden(),
    }))
}

/// What patients' consents say of a write by a caller they govern. Consents govern disclosure,
/// not writes, but a write must not disclose either, nor change the rules that withhold:
/// - a Consent is written only by its patient (a caller consents do not govern, such as a
///   `system/` client without a user, writes any), and a PractitionerRole (whom a practitioner
///   acts as) not at all;
/// - a resource the consents withhold from the caller is, to its writes, as one it may not see:
///   an update is refused (`403`, as an update-as-create cannot pretend the id is free) and a
///   delete answered as for a missing one, before any `If-Match` could be compared with it.
///
/// `Some` when the write is decided here (a delete of nothing).
async fn consents_check(cx: &Cx, op: &WriteOp) -> Result<Option<Allowed>> {
    let Some(view) = super::consent::view(cx).await? else {
        return Ok(None);
    };
    let (resource_type, id) = op.target();
    let kind = resource_type.as_str();
    if kind == "PractitionerRole" && !matches!(op, WriteOp::Reindex { .. }) {
        return Err(Error::forbidden(
            "PractitionerRoles decide whom a user acts as under patients' consents: a caller the consents govern \
             does not write them",
        ));
    }
    let own_consent = |consent: &serde_json::Value| {
        let patient = consent
            .pointer("/patient/reference")
            .and_then(serde_json::Value::as_str)
            .map(|p| crate::consent::policy::relative(p, &cx.services.base_url));
        view.own_patient()
            .is_some_and(|own| patient.as_deref() == Some(format!("Patient/{own}").as_str()))
    };
    if kind == "Consent"
        && let WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } = op
        && !own_consent(&serde_json::Value::Object(resource.clone()))
    {
        return Err(Error::forbidden("a patient's Consent is written by the patient"));
    }
    if matches!(op, WriteOp::Create { .. } | WriteOp::Reindex { .. }) {
        return Ok(None);
    }
    let Some(current) = cx.services.store.read(resource_type, id.as_str()).await? else {
        return Ok(None);
    };
    let Some(content) = &current.content else {
        return Ok(None);
    };
    if !super::disclose::consents_admit(cx, Some(&view), resource_type, id.as_str(), current.version_id, content)? {
        return match op {
            WriteOp::Delete { .. } => {
                rules::decide(op, None)?;
                Ok(Some(Allowed::Nothing))
            }
            _ => Err(out_of_reach(resource_type)),
        };
    }
    if kind == "Consent" {
        let stored: serde_json::Value =
            serde_json::from_slice(content).map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))?;
        if !own_consent(&stored) {
            return Err(Error::forbidden("a patient's Consent is written by the patient"));
        }
    }
    Ok(None)
}

/// A client may add AuditEvents of its own to the trail, but not ones the server would have
/// written: the server's records name it as their observer (its base URL), and a record naming
/// it is the server's alone, so that a reader can trust what the server recorded.
async fn refuse_records_as_the_server(cx: &Cx, op: &WriteOp) -> Result<()> {
    let (WriteOp::Create {
        resource_type,
        resource,
        ..
    }
    | WriteOp::Update {
        resource_type,
        resource,
        ..
    }) = op
    else {
        return Ok(());
    };
    if resource_type.as_str() != "AuditEvent" || matches!(cx.caller, crate::auth::Caller::System(_)) {
        return Ok(());
    }
    let base = cx.services.base_url.as_ref();
    let observer = resource.get("source").and_then(|s| s.get("observer"));
    let names_the_server = ["display", "reference"].iter().any(|k| {
        observer
            .and_then(|o| o.get(*k))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| v.trim_end_matches('/') == base)
    });
    // Replacing a stored record is refused as such (`405`, `store::rules`).
    if names_the_server && let WriteOp::Update { id, .. } = op {
        let stored = cx.services.store.read(*resource_type, id.as_str()).await?;
        if stored.is_some_and(|v| !v.is_deleted()) {
            return Ok(());
        }
    }
    if names_the_server {
        return Err(crate::error::Error::forbidden(
            "an AuditEvent observed by this server is recorded by the server alone",
        )
        .at("AuditEvent.source.observer"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(patients: &[&str], resource_type: &str, id: &str, owners: &[&str]) -> Placement {
        let patients: Vec<String> = patients.iter().map(|p| p.to_string()).collect();
        let owners: Vec<String> = owners.iter().map(|p| p.to_string()).collect();
        Placement::of_owners(&patients, ResourceType::parse(resource_type).unwrap(), id, &owners)
    }

    #[test]
    fn a_placement_names_the_other_patients_a_version_concerns() {
        assert_eq!(
            placement(&["p1"], "Observation", "o", &["p1"]),
            Placement {
                admitted: true,
                others: vec![]
            }
        );
        assert_eq!(
            placement(&["p1"], "Observation", "o", &["p1", "p2"]),
            Placement {
                admitted: true,
                others: vec!["p2".into()]
            }
        );
        assert_eq!(
            placement(&["p1"], "Observation", "o", &["p2"]),
            Placement {
                admitted: false,
                others: vec!["p2".into()]
            }
        );
        assert_eq!(
            placement(&["p1"], "Patient", "p1", &[]),
            Placement {
                admitted: true,
                others: vec![]
            },
            "a Patient concerns itself"
        );
        assert_eq!(
            placement(&["p1"], "Patient", "p2", &["p1"]),
            Placement {
                admitted: true,
                others: vec!["p2".into()]
            },
            "a Patient linking to p1 is in p1's compartment, and concerns itself"
        );
    }
}
