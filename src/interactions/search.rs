//! FHIR search interaction — https://hl7.org/fhir/R4/http.html#search and search.html
//!
//! `GET [base]/[type]?…`, `POST [base]/[type]/_search`, system search `GET [base]?_type=…`, and
//! compartment search `GET [base]/Patient/[id]/[type]?…` (or `/*`). The query is parsed and
//! resolved by `search::request`, compiled to SQL by `search::compile`, run by the store; this
//! file pages, counts, adds `_include`/`_revinclude` entries and writes the searchset Bundle.

use super::Cx;
use super::access::{self, consent_narrow, disclose};
pub use super::request::SearchScope;
use crate::auth::scope::Permission;
use crate::bundle::{Link, SearchEntry, SearchMode, Searchset};
use crate::error::{Error, Result};
use crate::model::{ResourceType, outcome};
use crate::search::compartments;
use crate::search::compile;
use crate::search::plan::{self, Plan};
use crate::search::query::Clause;
use crate::search::request::{self, Include, Page, SearchRequest, Summary, Total};
use crate::search::subset;
use crate::store::FoundResource;
use bytes::Bytes;
use std::collections::HashSet;

/// How many rounds `_include:iterate` / `_revinclude:iterate` follow at most.
const MAX_ITERATIONS: usize = 4;

/// Runs a search: the page of matches asked for, with what it includes.
pub async fn search(cx: &Cx, scope: &SearchScope, query: &[(String, String)], strict: bool) -> Result<Searchset> {
    let services = &cx.services;
    let (types, path, compartment_clause) = resolve_scope(scope)?;
    let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let system = matches!(scope, SearchScope::System);
    let mut request = request::parse(
        &services.search_parameters.current(),
        (!system).then_some(type_refs.as_slice()),
        query,
        &services.base_url,
        services.search_limits,
        strict,
    )?;
    if let Some(clause) = compartment_clause {
        request.clauses.insert(0, clause);
    }
    access::narrow::narrow_search(cx, scope, query, &mut request)?;
    super::value_set_lookup::expand_value_sets(cx, &mut request.clauses).await?;
    // Consents are applied in SQL after the scopes, on the types the scopes left. While they are
    // read, the plan measures the clauses they leave as they are (all but chains and `_has`).
    // (A count needs no plan.)
    let untouched: Vec<usize> = plan::measured_clauses(&request)
        .into_iter()
        .filter(|&n| !matches!(request.clauses[n], Clause::Chain { .. } | Clause::Has { .. }))
        .filter(|_| request.summary != Summary::Count)
        .collect();
    let (consents, measured) = tokio::join!(
        async {
            let consents = access::consent::view(cx).await?;
            if let Some(view) = &consents {
                view.prepare(cx, &consent_narrow::types_in(&request)).await?;
            }
            Ok::<_, Error>(consents)
        },
        measure_clauses(cx, &request, &untouched)
    );
    let (consents, mut measured) = (consents?, measured?);
    if let Some(view) = &consents {
        let before = request.clauses.len();
        consent_narrow::narrow_search(view, &mut request);
        // The narrowing goes first (`insert(0, …)`): the measured clauses moved up as many.
        let inserted = request.clauses.len() - before;
        measured.iter_mut().for_each(|(n, _)| *n += inserted);
    }
    let store = &services.store;
    let dialect = store.dialect();

    if request.summary == Summary::Count {
        let total = store
            .count(&compile::count_query(dialect, &request, &Plan::sets()))
            .await?;
        return Ok(Searchset {
            total: Some(total),
            links: vec![Link::new("self", link(cx, &path, &request.link_params, None))],
            entries: outcome_entry(&request).into_iter().collect(),
        });
    }

    let plan = plan_search(cx, &request, measured).await?;
    // The default total is counted only up to a limit (beyond it a total would cost more than
    // the page), and not at all when the plan shows at least `set_limit` matches. The count runs
    // beside the page query, on another connection, rather than after it. For a caller from
    // whom anything is hidden it is always counted: whether the plan is broad depends on rows it
    // may not see, and a total given or not would tell of them.
    let total_limit = services.search_limits.default_total_limit;
    // Under consents, as HAPI does, no default total beyond the first page's own rows: counting
    // every match through the consents' per-resource tests would cost more than the page. Asked
    // for (`_total=accurate`, `_summary=count`), a total is counted, and exact.
    let consents_in_force = consents.as_ref().is_some_and(|view| view.any_in_force());
    let default_count = (request.total == Total::Default
        && matches!(request.page, Page::First)
        && total_limit > 0
        && !consents_in_force
        && !(access::sees_everything(cx, Permission::Search)
            && plan.broad
            && total_limit < services.search_limits.set_limit))
        .then(|| compile::count_query_up_to(dialect, &request, &plan, total_limit + 1));
    let page = compile::page_query(dialect, &request, &plan)?;
    let (rows, counted) = tokio::join!(store.search(&page), async {
        match &default_count {
            Some(query) => store.count(query).await.map(Some),
            None => Ok(None),
        }
    });
    let mut rows = rows?;
    let counted = counted?;
    let more = rows.len() > request.count as usize;
    rows.truncate(request.count as usize);
    let backwards = matches!(request.page, Page::Before(_));
    if backwards {
        rows.reverse();
    }
    let (has_previous, has_next) = match request.page {
        Page::First => (false, more),
        Page::After(_) => (true, more),
        Page::Before(_) => (more, true),
    };

    let total = match request.total {
        Total::None => None,
        Total::Default if !matches!(request.page, Page::First) => None,
        // The whole result is on this page: its size is the total, no count needed.
        Total::Default | Total::Estimate if matches!(request.page, Page::First) && !more => Some(rows.len() as i64),
        Total::Default => counted.filter(|&n| n <= i64::from(total_limit)),
        Total::Estimate | Total::Accurate => Some(
            store
                .count(&compile::count_query(dialect, &request, &Plan::sets()))
                .await?,
        ),
    };

    let (included, truncated) = includes(cx, consents.as_deref(), &request, &rows).await?;
    if truncated {
        request.ignored.push(crate::search::query::Ignored {
            name: "_include".to_owned(),
            reason: format!(
                "only the first {} included resources are returned; ask for a smaller _count or search \
                 the included type directly",
                services.search_limits.max_count
            ),
        });
    }

    let mut links = vec![Link::new(
        "self",
        link(cx, &path, &request.link_params, page_param(&request.page)),
    )];
    links.push(Link::new("first", link(cx, &path, &request.link_params, None)));
    if has_previous && let Some(cursor) = rows.first().and_then(|r| r.cursor.clone()) {
        links.push(Link::new(
            "previous",
            link(cx, &path, &request.link_params, Some(("_page_before", cursor))),
        ));
    }
    if has_next && let Some(cursor) = rows.last().and_then(|r| r.cursor.clone()) {
        links.push(Link::new(
            "next",
            link(cx, &path, &request.link_params, Some(("_page_after", cursor))),
        ));
    }

    let mut entries = Vec::with_capacity(rows.len() + included.len() + 1);
    for (mode, row) in rows
        .into_iter()
        .map(|row| (SearchMode::Match, row))
        .chain(included.into_iter().map(|row| (SearchMode::Include, row)))
    {
        let permission = match mode {
            SearchMode::Match => Permission::Search,
            _ => Permission::Read,
        };
        // Narrowed in SQL; checked again, each on its own.
        let Some(content) = disclose::row(cx, &row.resource_type, &row.id, row.version_id, row.content, permission)?
        else {
            tracing::error!(resource_type = %row.resource_type, "a search row out of the caller's reach was left out");
            continue;
        };
        // Matches were narrowed by the consents in SQL and are judged again here; included
        // resources were judged as they were found.
        if mode == SearchMode::Match
            && let Some(t) = ResourceType::parse(&row.resource_type)
            && !disclose::consents_admit(cx, consents.as_deref(), t, &row.id, row.version_id, &content)?
        {
            continue;
        }
        let content = match mode {
            SearchMode::Match => subsetted(content, &request)?,
            _ => content,
        };
        entries.push(SearchEntry::Resource {
            mode,
            resource_type: row.resource_type,
            id: row.id,
            version_id: row.version_id,
            content,
        });
    }
    entries.extend(outcome_entry(&request));
    Ok(Searchset { total, links, entries })
}

/// The `resource_type` resources matching `query`, at most `at_most` of them, in no particular
/// order: what conditional interactions look for. Parsed strictly (an unknown parameter is a `400`
/// rather than ignored, since ignoring it would widen the match), and at least one criterion is
/// required: an empty condition would match every resource of the type.
pub async fn matching(
    cx: &Cx,
    resource_type: ResourceType,
    query: &[(String, String)],
    at_most: u32,
) -> Result<Vec<FoundResource>> {
    let services = &cx.services;
    let mut request = request::parse(
        &services.search_parameters.current(),
        Some(&[resource_type.as_str()]),
        query,
        &services.base_url,
        services.search_limits,
        true,
    )?;
    if request.clauses.is_empty() {
        return Err(Error::invalid(format!(
            "the condition '{resource_type}?{}' has no search criteria; it would match every {resource_type}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish()
        )));
    }
    access::narrow::narrow_search(cx, &SearchScope::Type(resource_type), query, &mut request)?;
    // A condition is a search: what consents withhold from the caller matches nothing (a
    // conditional create would otherwise tell it apart by `200` or `201`).
    if let Some(view) = access::consent::view(cx).await? {
        view.prepare(cx, &consent_narrow::types_in(&request)).await?;
        consent_narrow::narrow_search(&view, &mut request);
    }
    super::value_set_lookup::expand_value_sets(cx, &mut request.clauses).await?;
    request.sort.clear();
    request.includes.clear();
    request.revincludes.clear();
    request.page = Page::First;
    request.total = Total::None;
    // The page query fetches one more than `count` to know whether more follow.
    request.count = at_most.saturating_sub(1).max(1);
    let plan = plan_search(cx, &request, Vec::new()).await?;
    let mut rows = services
        .store
        .search(&compile::page_query(services.store.dialect(), &request, &plan)?)
        .await?;
    rows.truncate(at_most as usize);
    Ok(rows)
}

/// Checks which clauses backed by index rows have at least `set_limit` of them (see
/// `search::plan`), and chooses how the page query tests each.
/// The plan of `request`, given the clauses measured already (`measure_clauses`).
async fn plan_search(cx: &Cx, request: &SearchRequest, mut measured: Vec<(usize, bool)>) -> Result<Plan> {
    let rest: Vec<usize> = plan::measured_clauses(request)
        .into_iter()
        .filter(|n| !measured.iter().any(|(m, _)| m == n))
        .collect();
    measured.extend(measure_clauses(cx, request, &rest).await?);
    Ok(Plan::choose(request, &measured))
}

/// Whether each of `request`'s clauses numbered `clauses` is broad: has at least `set_limit`
/// index rows.
async fn measure_clauses(cx: &Cx, request: &SearchRequest, clauses: &[usize]) -> Result<Vec<(usize, bool)>> {
    let store = &cx.services.store;
    let limit = cx.services.search_limits.set_limit;
    let mut broad = Vec::with_capacity(clauses.len());
    for &n in clauses {
        if limit == 0 {
            // Configured so: every clause row by row.
            broad.push((n, true));
            continue;
        }
        let query = compile::clause_is_broad_query(store.dialect(), &request.clauses[n], limit);
        broad.push((n, store.count(&query).await? > 0));
    }
    Ok(broad)
}

/// The types searched, the URL path of the search (for links), and the compartment's clause.
fn resolve_scope(scope: &SearchScope) -> Result<(Vec<String>, String, Option<Clause>)> {
    match scope {
        SearchScope::Type(t) => Ok((vec![t.as_str().to_owned()], t.as_str().to_owned(), None)),
        SearchScope::System => Ok((Vec::new(), String::new(), None)),
        SearchScope::Compartment {
            compartment,
            id,
            target,
        } => {
            if !compartments::is_compartment(compartment.as_str()) {
                return Err(Error::not_found(format!("{compartment} is not a compartment type")));
            }
            let id = crate::model::Id::parse(id)?;
            let types: Vec<String> = match target {
                Some(t) => {
                    if compartments::params(compartment.as_str(), t.as_str()).is_none() {
                        return Err(Error::not_found(format!(
                            "{t} resources are never in a {compartment} compartment"
                        )));
                    }
                    vec![t.as_str().to_owned()]
                }
                None => compartments::member_types(compartment.as_str())
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            };
            let clause = compartments::clause(compartment.as_str(), id.as_str(), &types);
            let path = match target {
                Some(t) => format!("{compartment}/{id}/{t}"),
                None => format!("{compartment}/{id}/*"),
            };
            Ok((types, path, Some(clause)))
        }
    }
}

/// `_include` and `_revinclude` resources of the page, each once and none that is a match; at most
/// `max_count` of them (the largest page), so one page cannot pull in a whole database. The flag
/// says whether some were left out.
///
/// Each is judged against the consents (`consents`) as it is found: one they withhold is neither
/// returned nor followed by `:iterate`.
async fn includes(
    cx: &Cx,
    consents: Option<&access::consent::View>,
    request: &SearchRequest,
    rows: &[FoundResource],
) -> Result<(Vec<FoundResource>, bool)> {
    let services = &cx.services;
    let mut seen: HashSet<i64> = rows.iter().map(|r| r.rid).collect();
    let mut found = Vec::new();
    if request.includes.is_empty() && request.revincludes.is_empty() {
        return Ok((found, false));
    }
    let cap = services.search_limits.max_count as usize;
    let dialect = services.store.dialect();
    let readable = access::narrow::readable_clause(cx)?;
    let mut frontier: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| (r.rid, r.resource_type.clone(), r.id.clone()))
        .collect();
    // Asks for one more than still fits, to know whether anything was left out.
    let room = |found: &Vec<FoundResource>| (cap - found.len()) as u32 + 1;
    let mut add = |row: FoundResource, found: &mut Vec<FoundResource>, next: &mut Vec<(i64, String, String)>| {
        if found.len() < cap && seen.insert(row.rid) {
            next.push((row.rid, row.resource_type.clone(), row.id.clone()));
            found.push(row);
            return false;
        }
        found.len() >= cap && !seen.contains(&row.rid)
    };
    let mut truncated = false;
    for round in 0..MAX_ITERATIONS {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        let active = |i: &&Include| round == 0 || i.iterate;
        for include in request.includes.iter().filter(active) {
            let rids: Vec<i64> = frontier
                .iter()
                .filter(|(_, t, _)| *t == include.source_type)
                .map(|(rid, _, _)| *rid)
                .collect();
            if rids.is_empty() {
                continue;
            }
            let sql = compile::include_query(dialect, include, &rids, room(&found), readable.as_ref());
            for row in services.store.search(&sql).await? {
                if admitted(cx, consents, &row)? {
                    truncated |= add(row, &mut found, &mut next);
                }
            }
        }
        let targets: Vec<(String, String)> = frontier.iter().map(|(_, t, id)| (t.clone(), id.clone())).collect();
        for include in request.revincludes.iter().filter(active) {
            let sql = compile::revinclude_query(dialect, include, &targets, room(&found), readable.as_ref());
            for row in services.store.search(&sql).await? {
                if admitted(cx, consents, &row)? {
                    truncated |= add(row, &mut found, &mut next);
                }
            }
        }
        frontier = next;
    }
    Ok((found, truncated))
}

/// Whether the consents let the caller see `row` (an included resource).
fn admitted(cx: &Cx, consents: Option<&access::consent::View>, row: &FoundResource) -> Result<bool> {
    match ResourceType::parse(&row.resource_type) {
        Some(t) => disclose::consents_admit(cx, consents, t, &row.id, row.version_id, &row.content),
        None => Ok(true),
    }
}

/// The stored JSON, or its subset when `_summary` or `_elements` ask for one.
fn subsetted(content: Bytes, request: &SearchRequest) -> Result<Bytes> {
    if request.summary == Summary::False && request.elements.is_none() {
        return Ok(content);
    }
    let mut resource: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&content)
        .map_err(|e| Error::internal(format!("stored content is not a JSON object: {e}")))?;
    if !subset::apply(&mut resource, request.summary, request.elements.as_deref()) {
        return Ok(content);
    }
    Ok(Bytes::from(
        serde_json::to_vec(&resource).expect("a JSON object always serialises"),
    ))
}

/// An OperationOutcome entry (`search.mode = outcome`) naming the parameters left out.
fn outcome_entry(request: &SearchRequest) -> Option<SearchEntry> {
    if request.ignored.is_empty() {
        return None;
    }
    let notes: Vec<(String, String)> = request
        .ignored
        .iter()
        .map(|i| (format!("{} was ignored: {}", i.name, i.reason), i.name.clone()))
        .collect();
    let content = serde_json::to_vec(&outcome::warnings(&notes)).expect("a Value serialises");
    Some(SearchEntry::Outcome(Bytes::from(content)))
}

fn page_param(page: &Page) -> Option<(&'static str, String)> {
    match page {
        Page::First => None,
        Page::After(values) => Some(("_page_after", serde_json::Value::from(values.clone()).to_string())),
        Page::Before(values) => Some(("_page_before", serde_json::Value::from(values.clone()).to_string())),
    }
}

/// A search URL with the parameters used and an optional page cursor.
fn link(cx: &Cx, path: &str, params: &[(String, String)], page: Option<(&str, String)>) -> String {
    let base_url = &cx.services.base_url;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if let Some((name, value)) = page {
        query.append_pair(name, &value);
    }
    let query = query.finish();
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    if query.is_empty() {
        format!("{base_url}{path}")
    } else {
        format!("{base_url}{path}?{query}")
    }
}
