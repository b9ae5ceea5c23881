//! A whole search request: the filtering clauses (`query`) plus the result controls of
//! search.html — `_sort`, `_count`, `_total`, `_summary`, `_elements`, `_include`,
//! `_revinclude` — and the keyset page cursor (`_page_after` / `_page_before`, opaque to clients).

use super::params::{self, SortValueKind};
use super::query::{Clause, Ignored, invalid_request, resolve_param};

/// Re-exported where the application and the interactions name it.
use super::limits::Limits;
use super::registry::{ParamType, Registry, param_id};
use crate::error::{Error, Result};
use crate::model::ResourceType;
use serde_json::Value;

/// What a sort key orders by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortBy {
    Id,
    LastUpdated,
    /// The smallest (ascending) or largest (descending) value of an index column.
    Index {
        table: &'static str,
        column: &'static str,
        param_ids: Vec<i64>,
        kind: SortValueKind,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

impl SortKey {
    pub fn kind(&self) -> SortValueKind {
        match &self.by {
            SortBy::Id => SortValueKind::Text,
            SortBy::LastUpdated => SortValueKind::Int,
            SortBy::Index { kind, .. } => *kind,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Not asked for: on the first page only, and only when the matches are few (see
    /// `Limits::default_total_limit`).
    Default,
    None,
    Estimate,
    Accurate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    False,
    True,
    Text,
    Data,
    Count,
}

/// `_include` / `_revinclude`: references of `param_ids` from `source_type` resources (to
/// `target_type` only, when given).
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: String,
    pub param_ids: Vec<i64>,
    pub target_type: Option<String>,
    pub iterate: bool,
}

/// Where a page starts: after (or before) the row whose sort values and rid are given.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    First,
    After(Vec<Value>),
    Before(Vec<Value>),
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The resource types searched: one for a type search, the `_type` list (or all) for a system search.
    pub types: Vec<String>,
    pub clauses: Vec<Clause>,
    pub sort: Vec<SortKey>,
    pub count: u32,
    pub total: Total,
    pub summary: Summary,
    pub elements: Option<Vec<String>>,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub page: Page,
    /// The parameters the search used, as given, for the `self` and paging links.
    pub link_params: Vec<(String, String)>,
    /// Parameters left out (unknown, unsupported), with why.
    pub ignored: Vec<Ignored>,
}

/// Parameters that only shape the response format; kept in links, never searched.
const FORMAT_PARAMS: [&str; 2] = ["_format", "_pretty"];

/// Parses the query of a search over `types` (`None`: a system search, whose types come from
/// `_type`). With `strict` (`Prefer: handling=strict`) an unknown or unsupported parameter is a
/// `400` instead of being ignored.
pub fn parse(
    registry: &Registry,
    types: Option<&[&str]>,
    query: &[(String, String)],
    base_url: &str,
    limits: Limits,
    strict: bool,
) -> Result<SearchRequest> {
    let searched: Vec<String> = match types {
        Some(types) => types.iter().map(|t| (*t).to_owned()).collect(),
        None => system_types(query)?,
    };
    let type_refs: Vec<&str> = searched.iter().map(String::as_str).collect();
    check_cost(query)?;
    let mut request = SearchRequest {
        types: searched.clone(),
        clauses: Vec::new(),
        sort: Vec::new(),
        count: limits.default_count,
        total: Total::Default,
        summary: Summary::False,
        elements: None,
        includes: Vec::new(),
        revincludes: Vec::new(),
        page: Page::First,
        link_params: Vec::new(),
        ignored: Vec::new(),
    };
    for (name, value) in query {
        let keep = match name.as_str() {
            "_type" => types.is_none(),
            "_count" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| invalid_request(format!("_count must be a whole number, not '{value}'"), "_count"))?;
                request.count = n.min(limits.max_count);
                true
            }
            "_total" => {
                request.total = match value.as_str() {
                    "none" => Total::None,
                    "estimate" => Total::Estimate,
                    "accurate" => Total::Accurate,
                    _ => return Err(invalid_request("_total is none, estimate or accurate", "_total")),
                };
                true
            }
            "_summary" => {
                request.summary = match value.as_str() {
                    "true" => Summary::True,
                    "false" => Summary::False,
                    "text" => Summary::Text,
                    "data" => Summary::Data,
                    "count" => Summary::Count,
                    _ => {
                        return Err(invalid_request(
                            "_summary is true, false, text, data or count",
                            "_summary",
                        ));
                    }
                };
                true
            }
            "_elements" => {
                let elements = value.split(',').map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
                request.elements.get_or_insert_with(Vec::new).extend(elements);
                true
            }
            "_sort" => {
                for key in value.split(',').filter(|k| !k.is_empty()) {
                    match sort_key(registry, &type_refs, key) {
                        Some(key) => request.sort.push(key),
                        None => request.ignored.push(Ignored {
                            name: "_sort".into(),
                            reason: format!("cannot sort by '{key}'"),
                        }),
                    }
                }
                true
            }
            "_include" if value == "*" => {
                // Every reference of every type searched.
                for t in &type_refs {
                    request
                        .includes
                        .extend(include(registry, &type_refs, &format!("{t}:*"), false, false)?);
                }
                true
            }
            "_revinclude" if value == "*" => {
                request.revincludes.push(every_reference(registry));
                true
            }
            "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                let reverse = name.starts_with("_revinclude");
                match include(registry, &type_refs, value, name.ends_with(":iterate"), reverse)? {
                    Some(include) if reverse => request.revincludes.push(include),
                    Some(include) => request.includes.push(include),
                    None => request.ignored.push(Ignored {
                        name: name.clone(),
                        reason: format!("cannot include '{value}'"),
                    }),
                }
                true
            }
            "_page_after" | "_page_before" => {
                let values: Vec<Value> = serde_json::from_str(value).map_err(|_| {
                    invalid_request("the paging cursor is damaged; start again from the first page", name)
                })?;
                request.page = if name == "_page_after" {
                    Page::After(values)
                } else {
                    Page::Before(values)
                };
                false
            }
            n if FORMAT_PARAMS.contains(&n) => true,
            _ => match resolve_param(registry, &type_refs, name, value, base_url, &mut request.ignored)? {
                Some(clause) => {
                    request.clauses.push(clause);
                    true
                }
                None => false,
            },
        };
        if keep {
            request.link_params.push((name.clone(), value.clone()));
        }
    }
    if strict && let Some(ignored) = request.ignored.first() {
        return Err(invalid_request(
            format!(
                "{} (Prefer: handling=strict refuses what lenient handling would ignore)",
                ignored.reason
            ),
            &ignored.name,
        ));
    }
    if let Page::After(values) | Page::Before(values) = &request.page
        && values.len() != request.sort.len() + 1
    {
        return Err(invalid_request(
            "the paging cursor does not fit this search; start again from the first page",
            "_page_after",
        ));
    }
    Ok(request)
}

/// A `400 too-costly` for a search that would cost more than any page is worth: more than
/// `MAX_PARAMETERS` parameters, a chain deeper than `MAX_CHAIN_DEPTH`, or `:iterate` over every
/// reference (`_include:iterate=*`), which fans out through the whole database.
fn check_cost(query: &[(String, String)]) -> Result<()> {
    if query.len() > super::limits::MAX_PARAMETERS {
        return Err(Error::too_costly(format!(
            "{} search parameters; at most {} are accepted",
            query.len(),
            super::limits::MAX_PARAMETERS
        )));
    }
    for (name, value) in query {
        let depth = name.matches('.').count() + name.matches("_has:").count().saturating_sub(1);
        if depth > super::limits::MAX_CHAIN_DEPTH {
            return Err(Error::too_costly(format!(
                "'{name}' chains {depth} deep; at most {} links are followed",
                super::limits::MAX_CHAIN_DEPTH
            ))
            .at(name.clone()));
        }
        if name.ends_with(":iterate") && value.trim() == "*" {
            return Err(Error::too_costly(format!(
                "{name}=* would follow every reference of every resource found, again and again; name the \
                 references to follow (Type:parameter)"
            ))
            .at(name.clone()));
        }
    }
    Ok(())
}

/// The types of a system search: `_type` when given, else every type.
fn system_types(query: &[(String, String)]) -> Result<Vec<String>> {
    let mut types = Vec::new();
    for (_, value) in query.iter().filter(|(name, _)| name == "_type") {
        for name in value.split(',') {
            let resource_type = ResourceType::parse(name)
                .ok_or_else(|| invalid_request(format!("'{name}' in _type is not a resource type"), "_type"))?;
            types.push(resource_type.as_str().to_owned());
        }
    }
    if types.is_empty() {
        types = crate::model::structure::TypeModel::r4()
            .resource_types()
            .filter(|t| ResourceType::parse(t).is_some())
            .map(str::to_owned)
            .collect();
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn sort_key(registry: &Registry, types: &[&str], key: &str) -> Option<SortKey> {
    let (descending, code) = match key.strip_prefix('-') {
        Some(code) => (true, code),
        None => (false, key),
    };
    let by = match code {
        "_id" => SortBy::Id,
        "_lastUpdated" => SortBy::LastUpdated,
        _ => {
            let defined: Vec<(&str, ParamType)> = types
                .iter()
                .filter_map(|t| registry.get(t, code).map(|p| (*t, p.kind)))
                .collect();
            let index = params::type_index(defined.first()?.1)?;
            SortBy::Index {
                table: index.table.name,
                column: index.sort.column(descending),
                param_ids: defined.iter().map(|(t, _)| param_id(t, code)).collect(),
                kind: index.sort.kind,
            }
        }
    };
    Some(SortKey { by, descending })
}

/// `_revinclude=*`: the resources of any type that reference a result through any parameter.
fn every_reference(registry: &Registry) -> Include {
    let param_ids = ResourceType::all()
        .flat_map(|t| {
            registry
                .params_for(t.as_str())
                .iter()
                .filter(|p| p.kind == ParamType::Reference)
                .map(move |p| param_id(t.as_str(), &p.code))
        })
        .collect();
    Include {
        source_type: ANY_TYPE.to_owned(),
        param_ids,
        target_type: None,
        iterate: false,
    }
}

/// The `source_type` of an include from resources of any type (`_revinclude=*`).
pub const ANY_TYPE: &str = "*";

/// `Source:param[:Target]` or `Source:*`. `Ok(None)` for a parameter that does not exist.
fn include(registry: &Registry, types: &[&str], value: &str, iterate: bool, reverse: bool) -> Result<Option<Include>> {
    let mut parts = value.split(':');
    let (Some(source), Some(code)) = (parts.next(), parts.next()) else {
        return Err(invalid_request(
            format!("'{value}' is not an include: expected Type:parameter or Type:parameter:TargetType"),
            if reverse { "_revinclude" } else { "_include" },
        ));
    };
    let target = parts.next();
    let Some(source_type) = ResourceType::parse(source) else {
        return Err(Error::invalid(format!(
            "'{source}' in '{value}' is not a resource type"
        )));
    };
    // `_include` follows references out of the results, so its source is a searched type.
    if !reverse && !iterate && !types.contains(&source_type.as_str()) {
        return Ok(None);
    }
    let target_type = match target {
        Some(t) => Some(
            ResourceType::parse(t)
                .ok_or_else(|| Error::invalid(format!("'{t}' in '{value}' is not a resource type")))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let param_ids: Vec<i64> = if code == "*" {
        registry
            .params_for(source_type.as_str())
            .iter()
            .filter(|p| p.kind == ParamType::Reference)
            .map(|p| param_id(source_type.as_str(), &p.code))
            .collect()
    } else {
        match registry.get(source_type.as_str(), code) {
            Some(p) if p.kind == ParamType::Reference => vec![param_id(source_type.as_str(), code)],
            _ => return Ok(None),
        }
    };
    Ok(Some(Include {
        source_type: source_type.as_str().to_owned(),
        param_ids,
        target_type,
        iterate,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    fn parse_patient(query: &str, strict: bool) -> Result<SearchRequest> {
        parse(
            Registry::r4(),
            Some(&["Patient"]),
            &pairs(query),
            "http://x/fhir",
            Limits::default(),
            strict,
        )
    }

    #[test]
    fn result_controls_are_read() {
        let r = parse_patient(
            "name=smith&_count=5000&_sort=-birthdate,_id&_total=accurate&_summary=count",
            false,
        )
        .unwrap();
        assert_eq!(r.count, 1000, "capped at the maximum");
        assert_eq!(r.sort.len(), 2);
        assert!(r.sort[0].descending);
        assert_eq!(r.sort[1].by, SortBy::Id);
        assert_eq!((r.total, r.summary), (Total::Accurate, Summary::Count));
        assert_eq!(r.clauses.len(), 1);
    }

    #[test]
    fn unknown_parameters_leave_the_links_and_are_refused_when_strict() {
        let r = parse_patient("name=smith&colour=blue", false).unwrap();
        assert_eq!(r.link_params, vec![("name".to_owned(), "smith".to_owned())]);
        assert_eq!(r.ignored.len(), 1);
        let e = parse_patient("name=smith&colour=blue", true).unwrap_err();
        assert_eq!(e.issues[0].expression.as_deref(), Some("colour"));
    }

    #[test]
    fn includes_name_their_parameters() {
        let r = parse(
            Registry::r4(),
            Some(&["Observation"]),
            &pairs("_include=Observation:subject:Patient&_revinclude=Provenance:target"),
            "http://x/fhir",
            Limits::default(),
            true,
        )
        .unwrap();
        assert_eq!(r.includes[0].target_type.as_deref(), Some("Patient"));
        assert_eq!(r.includes[0].param_ids, vec![param_id("Observation", "subject")]);
        assert_eq!(r.revincludes[0].source_type, "Provenance");
    }

    #[test]
    fn a_cursor_must_fit_the_sort() {
        assert!(parse_patient("_sort=name&_page_after=[1]", false).is_err());
        assert!(parse_patient("_sort=name&_page_after=[\"smith\",1]", false).is_ok());
        assert!(parse_patient("_page_after=garbage", false).is_err());
    }

    #[test]
    fn system_search_takes_its_types_from_type() {
        let r = parse(
            Registry::r4(),
            None,
            &pairs("_type=Patient,Observation&_lastUpdated=gt2020"),
            "http://x/fhir",
            Limits::default(),
            true,
        )
        .unwrap();
        assert_eq!(r.types, vec!["Observation".to_owned(), "Patient".to_owned()]);
        assert!(
            parse(
                Registry::r4(),
                None,
                &pairs("_type=Nonsense"),
                "http://x",
                Limits::default(),
                false
            )
            .is_err()
        );
    }
}
