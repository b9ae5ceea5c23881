//! Whose compartments a version is in, remembered per version. Deciding it means parsing the
//! stored JSON and extracting the compartment parameters' references, which costs more than the
//! whole rest of a read by id; a version never changes, so the answer for (type, id, version) is
//! kept and each version is worked out once per process while it stays among the most recent.

use crate::model::{ResourceType, VersionId};
use crate::search::compartments;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Versions remembered before the cache starts over (about 150 bytes each).
const CAPACITY: usize = 100_000;

/// A version: its type, version number and id.
type VersionKey = (ResourceType, VersionId, Box<str>);

/// The patients whose compartments each recently checked version is in.
#[derive(Default)]
pub struct OwnerCache {
    owners: Mutex<HashMap<VersionKey, Arc<[String]>>>,
}

impl OwnerCache {
    /// The ids of the Patients whose compartments version `version_id` of `resource_type/id`
    /// (with `resource`, parsed by `parse` when not remembered) is in, on a server whose base is
    /// `own_base`. A Patient's own id is not among them (its type and id say so).
    pub fn owners(
        &self,
        own_base: &str,
        resource_type: ResourceType,
        id: &str,
        version_id: VersionId,
        parse: impl FnOnce() -> crate::error::Result<Value>,
    ) -> crate::error::Result<Arc<[String]>> {
        let key = (resource_type, version_id, Box::<str>::from(id));
        if let Some(owners) = self.lock().get(&key) {
            return Ok(owners.clone());
        }
        let resource = parse()?;
        let owners: Arc<[String]> =
            compartments::patient_owners_of(own_base, resource_type.as_str(), id, &resource).into();
        let mut cache = self.lock();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(key, owners.clone());
        Ok(owners)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VersionKey, Arc<[String]>>> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owners_are_worked_out_once_per_version() {
        let cache = OwnerCache::default();
        let observation = ResourceType::parse("Observation").unwrap();
        let v1 = json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1"}});
        let v2 = json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p2"}});
        let first = cache
            .owners("http://h/fhir", observation, "o", 1, || Ok(v1.clone()))
            .unwrap();
        assert_eq!(&*first, ["p1".to_owned()]);
        let again = cache
            .owners("http://h/fhir", observation, "o", 1, || {
                panic!("remembered, not parsed again")
            })
            .unwrap();
        assert_eq!(again, first);
        let next = cache
            .owners("http://h/fhir", observation, "o", 2, || Ok(v2.clone()))
            .unwrap();
        assert_eq!(&*next, ["p2".to_owned()], "another version is worked out anew");
        let other = cache
            .owners("http://h/fhir", observation, "o2", 1, || Ok(v2.clone()))
            .unwrap();
        assert_eq!(&*other, ["p2".to_owned()], "another id is another entry");
    }
}
