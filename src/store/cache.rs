//! A cache of current versions for the embedded SQLite store, so a read by id is a hash lookup
//! instead of a round trip to SQLite's connection thread.
//!
//! Why it is safe: the SQLite file is owned by one server process (`SqliteStore::open` holds an
//! exclusive lock on it), so every write passes through this process. A write publishes its
//! version after commit; entries only move forward in version; and a reader may fill the cache
//! with what it read from the database only if nothing was written to or evicted from that shard
//! since its lookup missed — otherwise its read could predate a version the cache has forgotten.
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
    /// Bumped by every write and every eviction in the shard (see `offer_read`).
    epoch: u64,
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

    /// The cached current version, or on a miss a ticket to hand back to `offer_read` with what
    /// the database returned.
    pub fn lookup(&self, resource_type: ResourceType, id: &str) -> Lookup {
        if self.shard_budget == 0 {
            return Lookup::Miss(Ticket(u64::MAX));
        }
        let key = self.key(resource_type, id);
        let shard = self.shard(key);
        match shard.entries.get(&key) {
            Some(entry) if entry.resource_type == resource_type && &*entry.id == id => {
                Lookup::Hit(entry.version.clone())
            }
            _ => Lookup::Miss(Ticket(shard.epoch)),
        }
    }

    /// Records a version read from the database after a miss, unless anything was written to or
    /// evicted from its shard since the ticket was issued: the read may then predate a newer
    /// version that the cache no longer remembers.
    pub fn offer_read(&self, resource_type: ResourceType, id: &str, version: StoredVersion, ticket: Ticket) {
        if self.shard_budget == 0 {
            return;
        }
        let key = self.key(resource_type, id);
        let mut shard = self.shard(key);
        if shard.epoch == ticket.0 {
            self.insert(
                &mut shard,
                key,
                Entry {
                    resource_type,
                    id: id.into(),
                    version,
                },
            );
        }
    }

    /// Records a version just committed by the writer. In-flight reads of the shard lose their
    /// chance to fill it (their result may be older); a version too large to keep removes the
    /// entry it supersedes.
    pub fn publish(&self, resource_type: ResourceType, id: &str, version: StoredVersion) {
        if self.shard_budget == 0 {
            return;
        }
        let key = self.key(resource_type, id);
        let mut shard = self.shard(key);
        shard.epoch += 1;
        self.insert(
            &mut shard,
            key,
            Entry {
                resource_type,
                id: id.into(),
                version,
            },
        );
    }

    /// Inserts `entry` unless the shard holds a newer version of the same resource.
    fn insert(&self, shard: &mut Shard, key: u64, entry: Entry) {
        if let Some(existing) = shard.entries.get(&key)
            && existing.resource_type == entry.resource_type
            && existing.id == entry.id
            && existing.version.version_id >= entry.version.version_id
        {
            return;
        }
        let cost = entry.cost();
        if cost > self.shard_budget {
            if let Some(removed) = shard.entries.remove(&key) {
                shard.bytes -= removed.cost();
            }
            shard.epoch += 1;
            return;
        }
        if shard.bytes + cost > self.shard_budget {
            shard.entries.clear();
            shard.bytes = 0;
            shard.epoch += 1;
        }
        if let Some(replaced) = shard.entries.insert(key, entry) {
            shard.bytes -= replaced.cost();
        }
        shard.bytes += cost;
    }
}

/// What a lookup found.
pub enum Lookup {
    Hit(StoredVersion),
    Miss(Ticket),
}

/// The state of a shard when a read missed, to tell whether the read may still fill it.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

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

    fn cached(cache: &VersionCache, id: &str) -> Option<i64> {
        match cache.lookup(patient(), id) {
            Lookup::Hit(v) => Some(v.version_id),
            Lookup::Miss(_) => None,
        }
    }

    fn ticket(cache: &VersionCache, id: &str) -> Ticket {
        match cache.lookup(patient(), id) {
            Lookup::Miss(t) => t,
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = VersionCache::new(1 << 20);
        cache.publish(patient(), "a", version(2, "two"));
        cache.publish(patient(), "a", version(1, "one"));
        assert_eq!(cached(&cache, "a"), Some(2));
        cache.publish(patient(), "a", version(3, "three"));
        assert_eq!(cached(&cache, "a"), Some(3));
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_fill_the_cache() {
        let cache = VersionCache::new(1 << 20);
        // The reader misses and reads version 1; meanwhile the writer commits version 2, and the
        // shard forgets it (here by an eviction: the version is published, then the shard cleared).
        let stale = ticket(&cache, "a");
        cache.publish(patient(), "a", version(2, "two"));
        {
            let key = cache.key(patient(), "a");
            let mut shard = cache.shard(key);
            shard.entries.clear();
            shard.epoch += 1;
        }
        cache.offer_read(patient(), "a", version(1, "one"), stale);
        assert_eq!(cached(&cache, "a"), None, "version 1 must not come back");
        // A read that started after the write may fill it.
        let fresh = ticket(&cache, "a");
        cache.offer_read(patient(), "a", version(2, "two"), fresh);
        assert_eq!(cached(&cache, "a"), Some(2));
    }

    #[test]
    fn a_version_too_large_to_keep_removes_the_one_it_supersedes() {
        let cache = VersionCache::new(SHARDS * 300);
        cache.publish(patient(), "big", version(1, "small"));
        assert_eq!(cached(&cache, "big"), Some(1));
        cache.publish(patient(), "big", version(2, &"x".repeat(500)));
        assert_eq!(cached(&cache, "big"), None, "the old version must not be served");
    }

    #[test]
    fn keys_are_type_and_id() {
        let cache = VersionCache::new(1 << 20);
        cache.publish(patient(), "a", version(1, "p"));
        assert!(matches!(
            cache.lookup(ResourceType::parse("Observation").unwrap(), "a"),
            Lookup::Miss(_)
        ));
        assert_eq!(cached(&cache, "b"), None);
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = VersionCache::new(SHARDS * 1000);
        for i in 0..10_000 {
            cache.publish(patient(), &format!("id{i}"), version(1, &"x".repeat(100)));
        }
        for shard in &cache.shards {
            assert!(shard.lock().unwrap().bytes <= 1000);
        }
        let disabled = VersionCache::new(0);
        disabled.publish(patient(), "a", version(1, "p"));
        assert_eq!(cached(&disabled, "a"), None);
    }
}
