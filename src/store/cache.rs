//! A cache of current versions for the embedded SQLite store, so a read by id is a hash lookup
//! instead of a round trip to SQLite's connection thread.
//!
//! Why it is safe: the SQLite file is owned by one server process (`SqliteStore::open` holds an
//! exclusive lock on it), so every write passes through this process. Entries only move forward
//! in version: a write publishes its version after commit, and a reader offering what it read from
//! the database cannot replace a newer version, whatever the interleaving.
//! Memory is bounded: each shard holds a byte budget and is emptied when it overflows.

use super::StoredVersion;
use crate::model::ResourceType;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Mutex;

const SHARDS: usize = 32;
/// Bookkeeping per entry beyond its content, for the byte budget.
const ENTRY_OVERHEAD: usize = 96;

struct Entry {
    resource_type: ResourceType,
    id: Box<str>,
    version: StoredVersion,
}

impl Entry {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD + self.id.len() + self.version.content.as_ref().map_or(0, |c| c.len())
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry>,
    bytes: usize,
}

pub struct VersionCache {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    shard_budget: usize,
}

impl VersionCache {
    /// A cache holding about `budget_bytes` of resource content; 0 disables it.
    pub fn new(budget_bytes: usize) -> VersionCache {
        VersionCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            shard_budget: budget_bytes / SHARDS,
        }
    }

    fn key(&self, resource_type: ResourceType, id: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        resource_type.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a shard inconsistent (plain inserts and
        // removes), so a poisoned lock is used as is.
        self.shards[(key as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, resource_type: ResourceType, id: &str) -> Option<StoredVersion> {
        if self.shard_budget == 0 {
            return None;
        }
        let key = self.key(resource_type, id);
        let shard = self.shard(key);
        let entry = shard.entries.get(&key)?;
        (entry.resource_type == resource_type && &*entry.id == id).then(|| entry.version.clone())
    }

    /// Records `version` unless the cache already holds a newer one of the same resource.
    pub fn offer(&self, resource_type: ResourceType, id: &str, version: StoredVersion) {
        if self.shard_budget == 0 {
            return;
        }
        let key = self.key(resource_type, id);
        let entry = Entry {
            resource_type,
            id: id.into(),
            version,
        };
        let cost = entry.cost();
        if cost > self.shard_budget {
            return;
        }
        let mut shard = self.shard(key);
        if let Some(existing) = shard.entries.get(&key)
            && existing.resource_type == resource_type
            && &*existing.id == id
            && existing.version.version_id >= entry.version.version_id
        {
            return;
        }
        if shard.bytes + cost > self.shard_budget {
            shard.entries.clear();
            shard.bytes = 0;
        }
        if let Some(replaced) = shard.entries.insert(key, entry) {
            shard.bytes -= replaced.cost();
        }
        shard.bytes += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instant;
    use bytes::Bytes;

    fn version(n: i64, text: &str) -> StoredVersion {
        StoredVersion {
            version_id: n,
            last_updated: Instant::from_micros(n),
            content: Some(Bytes::from(text.to_owned())),
        }
    }

    fn patient() -> ResourceType {
        ResourceType::parse("Patient").unwrap()
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = VersionCache::new(1 << 20);
        cache.offer(patient(), "a", version(2, "two"));
        cache.offer(patient(), "a", version(1, "one"));
        assert_eq!(cache.get(patient(), "a").unwrap().version_id, 2);
        cache.offer(patient(), "a", version(3, "three"));
        assert_eq!(cache.get(patient(), "a").unwrap().content.unwrap(), "three");
    }

    #[test]
    fn keys_are_type_and_id() {
        let cache = VersionCache::new(1 << 20);
        cache.offer(patient(), "a", version(1, "p"));
        assert!(cache.get(ResourceType::parse("Observation").unwrap(), "a").is_none());
        assert!(cache.get(patient(), "b").is_none());
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = VersionCache::new(SHARDS * 1000);
        for i in 0..10_000 {
            cache.offer(patient(), &format!("id{i}"), version(1, &"x".repeat(100)));
        }
        for shard in &cache.shards {
            assert!(shard.lock().unwrap().bytes <= 1000);
        }
        let disabled = VersionCache::new(0);
        disabled.offer(patient(), "a", version(1, "p"));
        assert!(disabled.get(patient(), "a").is_none());
    }
}
