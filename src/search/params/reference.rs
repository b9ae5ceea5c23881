//! Reference parameters: `Reference.reference` split into target type and id when it is a
//! relative `Type/id` (or an absolute URL ending in one), and kept as written; canonicals and uris
//! (e.g. `Questionnaire` of a QuestionnaireResponse) as written.

use crate::fhirpath::Item;
use crate::model::ResourceType;
use crate::search::index_row::IndexValue;

use super::{IndexTable, SortColumn, SortValueKind, primitive_text, text};

/// Reference rows. The value index leads with `target_id` (then `target_type`): a search by a
/// bare id may not know the type, and chains, `_has` and `_include` join on the pair.
pub const TABLE: IndexTable = IndexTable {
    name: "search_reference",
    columns: &[("target_type", "text"), ("target_id", "text"), ("url", "text")],
    leading: 1,
};

/// Sorted by the reference as written.
pub const SORT: SortColumn = SortColumn {
    ascending: "url",
    descending: "url",
    kind: SortValueKind::Text,
};

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

/// Also indexes `Reference.identifier` as a token row (in the token table, under the reference
/// parameter's own id) for `:identifier`. A reference names a resource here (and gets its type
/// and id split out) when it is relative or an absolute URL under `own_base`; an absolute URL of
/// another server is kept only as written, so `Type/id` searches do not find it.
pub fn extract(item: &Item<'_>, own_base: &str, push: &mut impl FnMut(IndexValue)) {
    let reference = match super::object(item) {
        Some((object, _)) => {
            if let Some(identifier) = object.get("identifier").and_then(serde_json::Value::as_object) {
                super::token::identifier(identifier, push);
            }
            text(object, "reference")
        }
        None => primitive_text(item).map(|s| s.into_owned()),
    };
    let Some(url) = reference else { return };
    let on_base = (!own_base.is_empty())
        .then(|| url.strip_prefix(own_base).and_then(|rest| rest.strip_prefix('/')))
        .flatten();
    let local = on_base.or_else(|| (!url.contains("://")).then_some(url.as_str()));
    let (target_type, target_id) = match local.and_then(split) {
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
    use crate::fhirpath::{Item, Node};
    use crate::search::IndexValue;
    use serde_json::json;

    fn extracted(reference: &str) -> IndexValue {
        let value = json!({"reference": reference});
        let mut out = Vec::new();
        super::extract(
            &Item::Node(Node::new(&value, Some("Reference"))),
            "http://here/fhir",
            &mut |v| out.push(v),
        );
        out.pop().unwrap()
    }

    #[test]
    fn only_references_here_name_a_local_resource() {
        let local = |t: &str, id: &str| (Some(t.to_owned()), Some(id.to_owned()));
        let split = |v: IndexValue| match v {
            IndexValue::Reference {
                target_type, target_id, ..
            } => (target_type, target_id),
            other => panic!("{other:?}"),
        };
        assert_eq!(split(extracted("Patient/1")), local("Patient", "1"));
        assert_eq!(split(extracted("http://here/fhir/Patient/1")), local("Patient", "1"));
        assert_eq!(
            split(extracted("http://elsewhere/fhir/Patient/1")),
            (None, None),
            "another server's Patient/1 is not ours"
        );
    }

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

/// A reference search (search.html#reference): a local target by type and id (or by id alone
/// when the type is unknown), or any other reference by its exact URL (canonicals, external).
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceMatch {
    Local { target_type: Option<String>, id: String },
    Url(String),
}

/// `modifier` may be a resource type (`subject:Patient=123`); `targets` are the parameter's target
/// types; `base_url` is the server's own base, whose absolute URLs are local references.
pub fn parse(
    value: &str,
    modifier: Option<&str>,
    targets: &[String],
    base_url: &str,
) -> Result<ReferenceMatch, super::ParseFailure> {
    let type_modifier = match modifier {
        None => None,
        Some(m) => match ResourceType::parse(m) {
            Some(t) => Some(t.as_str().to_owned()),
            None => return Err(super::ParseFailure::UnsupportedModifier),
        },
    };
    let value = super::unescape(value);
    let local = value
        .strip_prefix(base_url)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(&value);
    if !local.contains(':')
        && let Some((target_type, id)) = split(local)
    {
        if type_modifier.as_ref().is_some_and(|t| *t != target_type) {
            return Err(super::ParseFailure::Invalid(format!(
                "the value names a {target_type} but the modifier asks for a {}",
                type_modifier.unwrap_or_default()
            )));
        }
        return Ok(ReferenceMatch::Local {
            target_type: Some(target_type),
            id,
        });
    }
    if crate::model::id::is_valid_id(local) {
        let target_type = type_modifier.or_else(|| match targets {
            [only] => Some(only.clone()),
            _ => None,
        });
        return Ok(ReferenceMatch::Local {
            target_type,
            id: local.to_owned(),
        });
    }
    if type_modifier.is_some() {
        return Err(super::ParseFailure::Invalid(
            "with a type modifier the value must be an id".into(),
        ));
    }
    Ok(ReferenceMatch::Url(value))
}

impl ReferenceMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        use crate::sql::SqlValue::Text;
        match self {
            ReferenceMatch::Local { target_type, id } => {
                sql.push(alias).push(".target_id = ").bind(Text(id.clone()));
                if let Some(t) = target_type {
                    sql.push(" AND ")
                        .push(alias)
                        .push(".target_type = ")
                        .bind(Text(t.clone()));
                }
            }
            ReferenceMatch::Url(url) => {
                sql.push(alias).push(".url = ").bind(Text(url.clone()));
            }
        }
    }
}
