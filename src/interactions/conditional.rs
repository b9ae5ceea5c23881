//! What conditional interactions share — R4 http.html#ccreate, #cond-update, #cdelete and the
//! conditional references of transactions: the current resources a condition
//! (`Patient?identifier=sys|123`, see `condition`) matches, the resolution of conditional
//! references, and the locks that keep conditional creates from racing.
//!
//! A condition is a search, parsed strictly: an unknown parameter is a `400`, because ignoring it
//! would widen the match (and a conditional delete would then remove more than asked).

use super::condition::Condition;

use super::Cx;
use crate::error::{Error, Result};
use crate::model::{Id, ResourceType};
use crate::store::{DatabaseLock, Store, StoredVersion};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

/// Serialises, per resource type, the writes that create a resource only when a search finds
/// none: a conditional create (`If-None-Exist`, a transaction's `ifNoneExist`) and a conditional
/// update, which creates when nothing matches. Without it two such requests racing with one
/// condition (an EHR feed posting one patient twice at once) both search before either writes,
/// both find nothing, and both create: a duplicate, and every later conditional request on it
/// fails with "several matches". The search and the write run under the lock of the type; other
/// writes do not take it, since they create regardless of what exists.
///
/// Each process holds its own lock per type; on PostgreSQL an advisory lock per type also keeps
/// out the other server processes on the same database.
#[derive(Debug, Default)]
pub struct CreateLocks {
    by_type: std::sync::Mutex<HashMap<ResourceType, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while a conditional create or update searches and writes; released on drop (the
/// database's lock first).
pub struct CreateGuard {
    _database: DatabaseLock,
    _held: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl CreateLocks {
    /// Waits for the locks of `types` in this process, then in the database (`Store::lock_creates`:
    /// PostgreSQL advisory locks, shared by every server process on it). Both are taken in one
    /// order (by name) whatever the order given, so two transactions wanting two types each
    /// cannot wait for each other; and a process asks the database only once it holds its own
    /// lock, so waiters hold no pooled connection while they wait.
    pub async fn acquire(
        &self,
        store: &dyn Store,
        types: impl IntoIterator<Item = ResourceType>,
    ) -> Result<CreateGuard> {
        let held = self.acquire_here(types).await;
        let database = store.lock_creates(&held.types).await?;
        Ok(CreateGuard {
            _database: database,
            _held: held.guards,
        })
    }

    async fn acquire_here(&self, types: impl IntoIterator<Item = ResourceType>) -> HeldHere {
        let mut types: Vec<ResourceType> = types.into_iter().collect();
        types.sort_by_key(|t| t.as_str());
        types.dedup();
        let locks: Vec<Arc<tokio::sync::Mutex<()>>> = {
            let mut by_type = self.by_type.lock().unwrap_or_else(PoisonError::into_inner);
            types.iter().map(|t| by_type.entry(*t).or_default().clone()).collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            guards.push(lock.lock_owned().await);
        }
        HeldHere { types, guards }
    }
}

/// This process's locks, and the types they are for (sorted).
struct HeldHere {
    types: Vec<ResourceType>,
    guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

/// A current resource that a condition matched.
#[derive(Debug, Clone)]
pub struct Matched {
    pub id: Id,
    pub current: StoredVersion,
}

/// The current resources `condition` matches, at most `at_most` of them.
pub async fn find(cx: &Cx, condition: &Condition, at_most: u32) -> Result<Vec<Matched>> {
    let rows = super::search::matching(cx, condition.resource_type, &condition.query, at_most).await?;
    let mut matched = Vec::with_capacity(rows.len());
    for row in rows {
        // The row's content has the version too, but reading it back by id gives the version
        // and its time typed, and is a cache hit on SQLite.
        let Some(current) = cx.services.store.read(condition.resource_type, &row.id).await? else {
            continue;
        };
        if current.is_deleted() {
            continue;
        }
        matched.push(Matched {
            id: Id::parse(&row.id)?,
            current,
        });
    }
    Ok(matched)
}

/// The one resource `condition` matches, `None` when it matches none, and a `412` when it matches
/// several: `action` says what needed a single match ("a conditional update").
pub async fn find_one(cx: &Cx, condition: &Condition, action: &str) -> Result<Option<Matched>> {
    let mut matched = find(cx, condition, 2).await?;
    if matched.len() > 1 {
        return Err(several(condition, action));
    }
    Ok(matched.pop())
}

/// The match of a conditional create, as the answer discloses it: the caller found it by
/// searching, so it sees it as a search would show it (a Group without other patients' members).
pub async fn disclosed(cx: &Cx, resource_type: ResourceType, mut matched: Matched) -> Result<Matched> {
    let content = matched.current.content.take();
    match super::access::disclose::within_scopes(
        cx,
        resource_type,
        matched.id.as_str(),
        matched.current.version_id,
        content,
        crate::auth::scope::Permission::Search,
        true,
    )
    .await?
    {
        Some(super::access::disclose::Disclosed::Content(content)) => {
            matched.current.content = Some(content);
            Ok(matched)
        }
        // The search that found it was narrowed to what the caller may see.
        _ => Err(Error::internal("a conditional match out of the caller's reach")),
    }
}

/// The resources a conditional delete removes: one, or several when the server allows it.
pub async fn find_for_delete(cx: &Cx, condition: &Condition) -> Result<Vec<Matched>> {
    let services = &cx.services;
    let at_most = if services.conditional_delete_multiple {
        services.search_limits.max_count.saturating_add(1)
    } else {
        2
    };
    let matched = find(cx, condition, at_most).await?;
    if matched.len() > 1 && !services.conditional_delete_multiple {
        return Err(several(condition, "a conditional delete"));
    }
    if matched.len() as u32 == at_most {
        return Err(Error::precondition_failed(format!(
            "'{condition}' matches more than {} resources, more than one conditional delete removes",
            at_most - 1
        )));
    }
    Ok(matched)
}

/// Resolves each conditional reference in `resource` (`Patient?identifier=…`, http.html#trules)
/// that `resolved` does not hold yet to the `Type/id` of its one match, adding it there; no match
/// or several fail (`412`).
pub async fn resolve_references(
    cx: &Cx,
    resource: &mut Map<String, Value>,
    resolved: &mut HashMap<String, String>,
) -> Result<()> {
    for reference in super::bundle_references::conditional_references(resource) {
        if resolved.contains_key(&reference) {
            continue;
        }
        let condition = Condition::parse_url(&reference).expect("only conditional references are resolved");
        let target = match find_one(cx, &condition, "a conditional reference").await? {
            Some(matched) => format!("{}/{}", condition.resource_type, matched.id),
            None => {
                return Err(Error::precondition_failed(format!(
                    "the conditional reference '{reference}' matches no resource"
                )));
            }
        };
        resolved.insert(reference, target);
    }
    Ok(())
}

/// The `412` for a condition that matched more than one resource where one was needed.
pub fn several(condition: &Condition, action: &str) -> Error {
    Error::precondition_failed(format!(
        "{action} needs at most one match, but '{condition}' matches several {} resources; make the condition more specific",
        condition.resource_type
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_locks_hold_every_type_asked_for_until_dropped() {
        let locks = Arc::new(CreateLocks::default());
        let patient = ResourceType::parse("Patient").unwrap();
        let observation = ResourceType::parse("Observation").unwrap();
        let guard = locks.acquire_here([patient, observation, patient]).await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire_here([observation]).await.types })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "Observation is held");
        // Another type is free meanwhile.
        drop(locks.acquire_here([ResourceType::parse("Encounter").unwrap()]).await);
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("released on drop")
            .unwrap();
    }
}
