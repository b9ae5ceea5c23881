//! Reference parameters: `Reference.reference` split into target type and id when it is a
//! relative `Type/id` (or an absolute URL ending in one), and kept as written; canonicals and uris
//! (e.g. `Questionnaire` of a QuestionnaireResponse) as written.

use crate::fhirpath::Item;
use crate::model::ResourceType;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;

use super::text;

/// `(type, id)` of `…/Type/id` or `…/Type/id/_history/n`.
pub fn split(reference: &str) -> Option<(String, String)> {
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let parts: Vec<&str> = path.split('/').collect();
    let tail = match parts.as_slice() {
        [.., t, id, "_history", _] => (t, id),
        [.., t, id] => (t, id),
        _ => return None,
    };
    let resource_type = ResourceType::parse(tail.0)?;
    crate::model::id::is_valid_id(tail.1).then(|| (resource_type.as_str().to_owned(), (*tail.1).to_owned()))
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    let reference = match super::object(item) {
        Some((object, _)) => text(object, "reference"),
        None => primitive_text(item).map(|s| s.into_owned()),
    };
    let Some(url) = reference else { return };
    let (target_type, target_id) = match split(&url) {
        Some((t, id)) => (Some(t), Some(id)),
        None => (None, None),
    };
    push(IndexValue::Reference {
        target_type,
        target_id,
        url,
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_relative_absolute_and_versioned_references() {
        assert_eq!(super::split("Patient/1"), Some(("Patient".into(), "1".into())));
        assert_eq!(
            super::split("http://x.org/fhir/Patient/1/_history/2"),
            Some(("Patient".into(), "1".into()))
        );
        assert_eq!(super::split("urn:uuid:1234"), None);
        assert_eq!(super::split("#contained"), None);
    }
}
