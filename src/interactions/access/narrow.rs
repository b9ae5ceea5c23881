//! Searches and histories narrowed to what the caller may reach, in SQL: the rows, the totals and
//! every page are those of the narrowed query, so none of them depends on data the caller may not
//! see. A search gets one more clause (per type: the launch patient's compartment, a granular
//! scope's search); a chain's targets and a `_has` source are narrowed the same way inside it;
//! includes are narrowed by what the caller may read.

use super::{Reach, Rule, forbidden, is_restricted, reach};
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::interactions::Cx;
use crate::interactions::request::SearchScope;
use crate::model::ResourceType;
use crate::search::compartments;
use crate::search::params::ValueMatch;
use crate::search::params::reference::ReferenceMatch;
use crate::search::query::Clause;
use crate::search::registry::param_id;
use crate::search::request::{SearchRequest, SortBy};
use crate::store::HistoryReach;
use std::collections::BTreeMap;

/// The types a search of `scope` with `query` covers, each with what the caller may reach of it
/// by searching; a `403` when it may search none of them, or not one the request names.
/// Types only implied (a system search without `_type`, `Patient/[id]/*`) the caller may not
/// search are left out. In `Patient/[id]/…`, rules about another patient do not count.
pub fn check_search(cx: &Cx, scope: &SearchScope, query: &[(String, String)]) -> Result<Vec<(ResourceType, Reach)>> {
    let (types, named): (Vec<ResourceType>, bool) = match scope {
        SearchScope::Type(t) => (vec![*t], true),
        SearchScope::System => {
            let named: Vec<ResourceType> = query
                .iter()
                .filter(|(name, _)| name == "_type")
                .flat_map(|(_, value)| value.split(','))
                .filter_map(|t| ResourceType::parse(t.trim()))
                .collect();
            if named.is_empty() {
                (ResourceType::all().collect(), false)
            } else {
                (named, true)
            }
        }
        SearchScope::Compartment {
            compartment, target, ..
        } => match target {
            Some(t) => (vec![*t], true),
            None => (
                compartments::member_types(compartment.as_str())
                    .into_iter()
                    .filter_map(ResourceType::parse)
                    .collect(),
                false,
            ),
        },
    };
    let in_patient = match scope {
        SearchScope::Compartment { compartment, id, .. } if compartment.as_str() == "Patient" => Some(id.as_str()),
        _ => None,
    };
    let mut reaches = Vec::with_capacity(types.len());
    for t in types {
        let mut reach = reach(cx, t, Permission::Search);
        if let (Some(id), Reach::Some(rules)) = (in_patient, &mut reach) {
            rules.retain(|rule| rule.patient.as_deref().is_none_or(|p| p == id));
            if rules.is_empty() {
                reach = Reach::None;
            }
        }
        match reach {
            Reach::None if named => return Err(forbidden(t, Permission::Search)),
            Reach::None => {}
            reach => reaches.push((t, reach)),
        }
    }
    if reaches.is_empty() {
        return Err(Error::forbidden(
            "the access token does not grant searching any of the types asked for",
        ));
    }
    Ok(reaches)
}

/// Narrows the parsed search `request` of `scope` to what the caller may reach: its types, a
/// clause per type, chains and `_has` inside its clauses. A reference parameter naming another
/// patient than the one the caller is limited to is a `403`, whatever the data.
pub fn narrow_search(
    cx: &Cx,
    scope: &SearchScope,
    query: &[(String, String)],
    request: &mut SearchRequest,
) -> Result<()> {
    if !is_restricted(cx) {
        return Ok(());
    }
    let reaches = check_search(cx, scope, query)?;
    request.types.retain(|t| reaches.iter().any(|(r, _)| r.as_str() == t));
    let reaches: Vec<(ResourceType, Reach)> = reaches
        .into_iter()
        .filter(|(t, _)| request.types.iter().any(|r| r == t.as_str()))
        .collect();
    if reaches.is_empty() {
        return Err(Error::forbidden(
            "the access token does not grant searching any of the types asked for",
        ));
    }
    refuse_member_probes(cx, request)?;
    for clause in &mut request.clauses {
        refuse_other_patients(clause, &reaches)?;
        narrow_clause(cx, clause)?;
    }
    let single = reaches.len() == 1;
    if let Some(clause) = clause_for(cx, &reaches, single)? {
        request.clauses.insert(0, clause);
    }
    Ok(())
}

/// The clause that admits exactly what the caller may read of any type, for `_include` and
/// `_revinclude` rows; `None` when it may read everything.
pub fn readable_clause(cx: &Cx) -> Result<Option<Clause>> {
    if !is_restricted(cx) {
        return Ok(None);
    }
    let reaches: Vec<(ResourceType, Reach)> = ResourceType::all()
        .map(|t| (t, reach(cx, t, Permission::Read)))
        .filter(|(_, r)| !r.is_none())
        .collect();
    if reaches.is_empty() {
        return Ok(Some(Clause::OfType(Vec::new())));
    }
    if reaches.len() == ResourceType::all().count() && reaches.iter().all(|(_, r)| *r == Reach::All) {
        return Ok(None);
    }
    Ok(Some(clause_for(cx, &reaches, false)?.unwrap_or_else(|| {
        Clause::OfType(reaches.iter().map(|(t, _)| t.as_str().to_owned()).collect())
    })))
}

/// One clause admitting what `reaches` allow of each type, or `None` when it is all of every
/// type listed. Types under one patient share one compartment clause (its parameter ids are
/// per type); a granular rule is a clause of its type. `single`: the rows are all of the one
/// type of `reaches` already, so no type test is needed.
fn clause_for(cx: &Cx, reaches: &[(ResourceType, Reach)], single: bool) -> Result<Option<Clause>> {
    if reaches.iter().all(|(_, r)| *r == Reach::All) {
        return Ok(None);
    }
    let of_type = |t: ResourceType| Clause::OfType(vec![t.as_str().to_owned()]);
    let mut open = Vec::new();
    let mut by_patient: BTreeMap<&str, Vec<ResourceType>> = BTreeMap::new();
    let mut parts = Vec::new();
    for (t, reach) in reaches {
        match reach {
            Reach::All => open.push(t.as_str().to_owned()),
            Reach::None => {}
            Reach::Some(rules) => {
                for rule in rules {
                    match (&rule.patient, rule.filter.is_empty()) {
                        (Some(patient), true) => by_patient.entry(patient).or_default().push(*t),
                        _ => {
                            let mut all = Vec::new();
                            if !single {
                                all.push(of_type(*t));
                            }
                            if let Some(patient) = &rule.patient {
                                all.push(in_compartment(patient, &[*t], single));
                            }
                            all.extend(filter_clauses(cx, *t, rule)?);
                            parts.push(Clause::All(all));
                        }
                    }
                }
            }
        }
    }
    if !open.is_empty() {
        parts.push(Clause::OfType(open));
    }
    for (patient, types) in by_patient {
        parts.push(in_compartment(patient, &types, single));
    }
    Ok(Some(match parts.len() {
        0 => Clause::OfType(Vec::new()),
        1 => parts.pop().expect("one part"),
        _ => Clause::Any(parts),
    }))
}

/// The resources of `types` in `patient`'s compartment: those a compartment parameter links to
/// it, and the Patient itself (`single`: the search is of that one type, which needs no type
/// test).
fn in_compartment(patient: &str, types: &[ResourceType], single: bool) -> Clause {
    let members: Vec<String> = types
        .iter()
        .filter(|t| t.as_str() != "Patient")
        .map(|t| t.as_str().to_owned())
        .collect();
    let mut parts = Vec::new();
    let linked = |types: &[String]| match compartments::clause("Patient", patient, types) {
        Clause::Index { ref param_ids, .. } if param_ids.is_empty() => None,
        clause => Some(clause),
    };
    if !members.is_empty()
        && let Some(clause) = linked(&members)
    {
        parts.push(clause);
    }
    if types.iter().any(|t| t.as_str() == "Patient") {
        let mut itself = vec![Clause::Id(vec![patient.to_owned()])];
        itself.extend(linked(&["Patient".to_owned()]));
        let itself = if itself.len() == 1 {
            itself.pop().expect("one")
        } else {
            Clause::Any(itself)
        };
        parts.push(if single && members.is_empty() {
            itself
        } else {
            Clause::All(vec![Clause::OfType(vec!["Patient".to_owned()]), itself])
        });
    }
    match parts.len() {
        0 => Clause::OfType(Vec::new()),
        1 => parts.pop().expect("one part"),
        _ => Clause::Any(parts),
    }
}

/// The clauses of `rule`'s search query (a granular scope's) on `resource_type`.
fn filter_clauses(cx: &Cx, resource_type: ResourceType, rule: &Rule) -> Result<Vec<Clause>> {
    if rule.filter.is_empty() {
        return Ok(Vec::new());
    }
    Ok(scope_query(cx, resource_type, rule)?.clauses)
}

/// `rule`'s search query on `resource_type`, parsed strictly with the search parameters in force.
pub(super) fn scope_query(cx: &Cx, resource_type: ResourceType, rule: &Rule) -> Result<SearchRequest> {
    let services = &cx.services;
    crate::search::request::parse(
        &services.search_parameters.current(),
        Some(&[resource_type.as_str()]),
        &rule.filter,
        &services.base_url,
        services.search_limits,
        true,
    )
    .map_err(|_| Error::forbidden(format!("a scope's search query on {resource_type} cannot be run")))
}

/// Narrows the chains and `_has` inside `clause`: a chain's targets and a `_has` source to what
/// the caller may search (a type it may not search at all is a `403`, whatever the data).
fn narrow_clause(cx: &Cx, clause: &mut Clause) -> Result<()> {
    match clause {
        Clause::Chain {
            target_types, inner, ..
        } => {
            narrow_clause(cx, inner)?;
            let mut reaches = Vec::new();
            let mut refused = None;
            for name in target_types.iter() {
                let Some(t) = ResourceType::parse(name) else { continue };
                match reach(cx, t, Permission::Search) {
                    Reach::None => refused = Some(t),
                    r => reaches.push((t, r)),
                }
            }
            if reaches.is_empty() {
                let t = refused.or_else(|| target_types.first().and_then(|n| ResourceType::parse(n)));
                return Err(match t {
                    Some(t) => forbidden(t, Permission::Search),
                    None => Error::forbidden("the access token does not grant searching the chain's targets"),
                });
            }
            target_types.retain(|n| reaches.iter().any(|(t, _)| t.as_str() == n));
            if let Some(narrowing) = clause_for(cx, &reaches, reaches.len() == 1)? {
                let inner_clause = std::mem::replace(inner.as_mut(), Clause::All(Vec::new()));
                **inner = Clause::All(vec![inner_clause, narrowing]);
            }
        }
        Clause::Has { source_type, inner, .. } => {
            narrow_clause(cx, inner)?;
            let t = ResourceType::parse(source_type)
                .ok_or_else(|| Error::forbidden("the access token does not grant searching that type"))?;
            let reach = reach(cx, t, Permission::Search);
            if reach.is_none() {
                return Err(forbidden(t, Permission::Search));
            }
            if let Some(narrowing) = clause_for(cx, &[(t, reach)], true)? {
                let inner_clause = std::mem::replace(inner.as_mut(), Clause::All(Vec::new()));
                **inner = Clause::All(vec![inner_clause, narrowing]);
            }
        }
        Clause::All(clauses) | Clause::Any(clauses) => {
            for c in clauses {
                narrow_clause(cx, c)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A caller that reaches Groups only through its patients' compartments sees them without the
/// other patients among their members (`disclose`). A criterion on `Group.member` other than
/// a reference to one of its own patients (or to a member that is not a Patient), a text search
/// of Groups, or a sort by member could still tell who the others are: `403`, whatever the data.
fn refuse_member_probes(cx: &Cx, request: &SearchRequest) -> Result<()> {
    let Some(group) = ResourceType::parse("Group") else {
        return Ok(());
    };
    let patients: Vec<String> = match reach(cx, group, Permission::Search) {
        Reach::Some(rules) if rules.iter().all(|r| r.patient.is_some()) => {
            rules.into_iter().filter_map(|r| r.patient).collect()
        }
        _ => return Ok(()),
    };
    let refused = || {
        Error::forbidden(
            "the access token shows Groups only with its patient among their members: it does not grant \
             searching, sorting or following Groups by other members, or searching them by text",
        )
    };
    let member = param_id("Group", "member");
    let text = [param_id("Group", "_text"), param_id("Group", "_content")];
    // Following `Group.member` (a chain, `_has`, an include) reaches the other members, unless
    // the Patients at its end are narrowed to the caller's patients too.
    let members_narrowed = |permission| match reach(cx, ResourceType::parse("Patient").expect("a type"), permission) {
        Reach::Some(rules) => rules
            .iter()
            .all(|r| r.patient.as_ref().is_some_and(|p| patients.contains(p))),
        Reach::None => true,
        Reach::All => false,
    };
    let followed = request
        .includes
        .iter()
        .chain(&request.revincludes)
        .any(|include| include.param_ids.contains(&member));
    if followed && !members_narrowed(Permission::Read) {
        return Err(refused());
    }
    if request.sort.iter().any(|key| match &key.by {
        SortBy::Index { param_ids, .. } => param_ids.contains(&member),
        _ => false,
    }) {
        return Err(refused());
    }
    let links_members = |clause: &Clause| -> bool {
        fn walk(clause: &Clause, member: i64) -> bool {
            match clause {
                Clause::Chain { param_ids, inner, .. } => param_ids.contains(&member) || walk(inner, member),
                Clause::Has { param_id, inner, .. } => *param_id == member || walk(inner, member),
                Clause::All(clauses) | Clause::Any(clauses) => clauses.iter().any(|c| walk(c, member)),
                _ => false,
            }
        }
        walk(clause, member)
    };
    if request.clauses.iter().any(links_members) && !members_narrowed(Permission::Search) {
        return Err(refused());
    }
    fn probes(clause: &Clause, member: i64, text: &[i64; 2], patients: &[String]) -> bool {
        match clause {
            Clause::Index {
                table,
                param_ids,
                matches,
                negated,
            } => {
                if param_ids.iter().any(|id| text.contains(id)) {
                    return true;
                }
                param_ids.contains(&member)
                    && (*negated
                        || *table != "search_reference"
                        || !matches.iter().all(|m| match m {
                            ValueMatch::Reference(ReferenceMatch::Local { target_type, id }) => {
                                target_type.as_deref().is_some_and(|t| t != "Patient")
                                    || patients.iter().any(|p| p == id)
                            }
                            _ => false,
                        }))
            }
            Clause::All(clauses) | Clause::Any(clauses) => clauses.iter().any(|c| probes(c, member, text, patients)),
            Clause::Chain { inner, .. } | Clause::Has { inner, .. } => probes(inner, member, text, patients),
            _ => false,
        }
    }
    if request
        .clauses
        .iter()
        .any(|clause| probes(clause, member, &text, &patients))
    {
        return Err(refused());
    }
    Ok(())
}

/// A `403` for a reference criterion that names another patient than the one every rule of the
/// searched types is about (`Observation?subject=Patient/other`): such a search could only ever
/// answer nothing, and the caller is told so rather than left to probe.
fn refuse_other_patients(clause: &Clause, reaches: &[(ResourceType, Reach)]) -> Result<()> {
    let mut patients = Vec::new();
    for (_, reach) in reaches {
        match reach {
            Reach::Some(rules) if rules.iter().all(|r| r.patient.is_some()) => {
                patients.extend(rules.iter().filter_map(|r| r.patient.as_deref()))
            }
            Reach::None => {}
            _ => return Ok(()),
        }
    }
    if patients.is_empty() {
        return Ok(());
    }
    let Clause::Index {
        table: "search_reference",
        matches,
        negated: false,
        ..
    } = clause
    else {
        return Ok(());
    };
    for m in matches {
        if let ValueMatch::Reference(ReferenceMatch::Local { target_type, id }) = m
            && target_type.as_deref().is_none_or(|t| t == "Patient")
            && !patients.contains(&id.as_str())
        {
            return Err(Error::forbidden(
                "the access token does not grant searching another patient's resources",
            ));
        }
    }
    Ok(())
}

/// What of the history of `types` (none: every type) the caller may see with `permission` (`r`
/// for an instance's history, `s` for a type's or the system's): `None` for all of it;
/// a `403` when nothing. Granular rules cannot be applied to past versions (index rows describe
/// current ones), so they do not count here; a patient rule is applied through the owners
/// recorded with each version.
pub fn history_reach(cx: &Cx, types: &[ResourceType], permission: Permission) -> Result<Option<HistoryReach>> {
    if !is_restricted(cx) {
        return Ok(None);
    }
    let named = !types.is_empty();
    let types: Vec<ResourceType> = if named {
        types.to_vec()
    } else {
        ResourceType::all().collect()
    };
    let mut history = HistoryReach::default();
    let mut all = true;
    for t in &types {
        let mut patients: Vec<&str> = Vec::new();
        let reach = reach(cx, *t, permission);
        match &reach {
            Reach::All => {
                history.open_types.push(t.as_str().to_owned());
                continue;
            }
            Reach::Some(rules) => {
                for rule in rules.iter().filter(|r| r.filter.is_empty()) {
                    match &rule.patient {
                        None => {
                            patients.clear();
                            history.open_types.push(t.as_str().to_owned());
                            break;
                        }
                        Some(p) => patients.push(p),
                    }
                }
            }
            Reach::None => {}
        }
        all = false;
        if history.open_types.last().is_some_and(|o| o == t.as_str()) {
            continue;
        }
        if patients.is_empty() && named {
            return Err(forbidden(*t, permission));
        }
        for patient in patients {
            let id = crate::model::Id::parse(patient)?;
            match history.patients.iter_mut().find(|(p, _)| *p == id) {
                Some((_, list)) => list.push(t.as_str().to_owned()),
                None => history.patients.push((id, vec![t.as_str().to_owned()])),
            }
        }
    }
    if all {
        return Ok(None);
    }
    if history.open_types.is_empty() && history.patients.is_empty() {
        return Err(Error::forbidden("the access token does not grant reading any history"));
    }
    Ok(Some(history))
}
