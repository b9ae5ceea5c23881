//! Consents in SQL: a search (its matches, chains' targets, `_has` sources) and a history leave
//! out what the caller's view of the consents withholds, so that totals and pages are those of
//! what it may see.
//!
//! Per type, a patient's consents permit, deny, or decide by each resource's data ("mixed", see
//! `consent::Class`). Resources of denying patients are left out by their compartment; those of
//! mixed patients that their consents withhold by id (`View::prepare` judged them one by one).
//! Under `--consent-default deny`, resources in the compartment of a patient without consents
//! are left out too; a resource shared by a permitting and such a patient is left out when its
//! rows are judged (`View::judge`), the second line.

use super::consent::{Class, View, governs};
use crate::model::ResourceType;
use crate::search::compartments;
use crate::search::query::Clause;
use crate::search::request::SearchRequest;
use crate::store::HistoryReach;

/// The types whose resources `request` may return or test: its own, its chains' targets and its
/// `_has` sources (every type when it names none).
pub fn types_in(request: &SearchRequest) -> Vec<ResourceType> {
    fn walk(clause: &Clause, into: &mut Vec<ResourceType>) {
        match clause {
            Clause::Chain {
                target_types, inner, ..
            } => {
                into.extend(target_types.iter().filter_map(|t| ResourceType::parse(t)));
                walk(inner, into);
            }
            Clause::Has { source_type, inner, .. } => {
                into.extend(ResourceType::parse(source_type));
                walk(inner, into);
            }
            Clause::All(clauses) | Clause::Any(clauses) => clauses.iter().for_each(|c| walk(c, into)),
            Clause::Not(inner) => walk(inner, into),
            _ => {}
        }
    }
    let mut types: Vec<ResourceType> = if request.types.is_empty() {
        ResourceType::all().collect()
    } else {
        request.types.iter().filter_map(|t| ResourceType::parse(t)).collect()
    };
    request.clauses.iter().for_each(|c| walk(c, &mut types));
    types.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    types.dedup();
    types
}

/// Narrows `request`: its matches, and inside its clauses chains' targets and `_has` sources.
pub fn narrow_search(view: &View, request: &mut SearchRequest) {
    for clause in &mut request.clauses {
        narrow_links(view, clause);
    }
    let types: Vec<ResourceType> = if request.types.is_empty() {
        ResourceType::all().collect()
    } else {
        request.types.iter().filter_map(|t| ResourceType::parse(t)).collect()
    };
    if let Some(clause) = clause(view, &types, types.len() == 1) {
        request.clauses.insert(0, clause);
    }
}

fn narrow_links(view: &View, clause: &mut Clause) {
    let narrowed = |inner: &mut Box<Clause>, narrowing: Option<Clause>| {
        if let Some(narrowing) = narrowing {
            let inner_clause = std::mem::replace(inner.as_mut(), Clause::All(Vec::new()));
            **inner = Clause::All(vec![inner_clause, narrowing]);
        }
    };
    match clause {
        Clause::Chain {
            target_types, inner, ..
        } => {
            narrow_links(view, inner);
            let targets: Vec<ResourceType> = target_types.iter().filter_map(|t| ResourceType::parse(t)).collect();
            narrowed(inner, self::clause(view, &targets, targets.len() == 1));
        }
        Clause::Has { source_type, inner, .. } => {
            narrow_links(view, inner);
            if let Some(source) = ResourceType::parse(source_type) {
                narrowed(inner, self::clause(view, &[source], true));
            }
        }
        Clause::All(clauses) | Clause::Any(clauses) => clauses.iter_mut().for_each(|c| narrow_links(view, c)),
        Clause::Not(inner) => narrow_links(view, inner),
        _ => {}
    }
}

/// What is withheld of one type, the key by which types share a clause.
#[derive(PartialEq)]
struct Withheld {
    is_patient: bool,
    /// `--consent-default deny`: only these patients' resources (and those of no patient).
    admitted: Option<Vec<String>>,
    denied: Vec<String>,
    ids: Vec<String>,
}

/// The clause admitting, of resources of `types`, those the consents do not withhold; `None`
/// when they withhold none. `single`: the rows are all of the one type of `types`.
pub fn clause(view: &View, types: &[ResourceType], single: bool) -> Option<Clause> {
    let mut open = Vec::new();
    let mut groups: Vec<(Withheld, Vec<String>)> = Vec::new();
    for t in types.iter().copied() {
        if !governs(t) {
            open.push(t.as_str().to_owned());
            continue;
        }
        let by_default = view.withholds_by_default(t);
        let mut denied = Vec::new();
        let mut admitted = Vec::new();
        for patient in view.consenting_patients() {
            match view.class(patient, t) {
                Class::Deny(_) => denied.push(patient.to_owned()),
                Class::Permit(_) | Class::Mixed => admitted.push(patient.to_owned()),
            }
        }
        admitted.extend(view.own_patient().map(str::to_owned));
        denied.sort();
        admitted.sort();
        let withheld = Withheld {
            is_patient: t.as_str() == "Patient",
            admitted: by_default.then_some(admitted),
            denied,
            ids: view.withheld_ids(t),
        };
        if withheld.admitted.is_none() && withheld.denied.is_empty() && withheld.ids.is_empty() {
            open.push(t.as_str().to_owned());
            continue;
        }
        match groups.iter_mut().find(|(w, _)| *w == withheld) {
            Some((_, members)) => members.push(t.as_str().to_owned()),
            None => groups.push((withheld, vec![t.as_str().to_owned()])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for (withheld, members) in groups {
        let mut all = Vec::new();
        if !single {
            all.push(Clause::OfType(members.clone()));
        }
        if let Some(admitted) = &withheld.admitted {
            all.push(if withheld.is_patient {
                Clause::Id(admitted.clone())
            } else {
                Clause::Any(
                    std::iter::once(of_no_patient(&members))
                        .chain(owned_by_any(admitted, &members, withheld.is_patient))
                        .collect(),
                )
            });
        }
        if !withheld.denied.is_empty() {
            // Each way of being a denying patient's left out on its own, so that a search can
            // test the links by their index rows alone (`compile`'s exclusions).
            all.extend(
                owned_by_any(&withheld.denied, &members, withheld.is_patient)
                    .into_iter()
                    .map(|c| Clause::Not(Box::new(c))),
            );
        }
        if !withheld.ids.is_empty() {
            all.push(Clause::Not(Box::new(Clause::Id(withheld.ids))));
        }
        parts.push(Clause::All(all));
    }
    if !open.is_empty() {
        parts.push(Clause::OfType(open));
    }
    Some(match parts.len() {
        1 => parts.pop().expect("one part"),
        _ => Clause::Any(parts),
    })
}

/// The ways a resource of `types` is in the compartment of one of `patients` (a Patient: being
/// one of them, or linked to one): any of these clauses.
fn owned_by_any(patients: &[String], types: &[String], is_patient: bool) -> Vec<Clause> {
    let ids: Vec<&str> = patients.iter().map(String::as_str).collect();
    let linked = compartments::clause_of_any("Patient", &ids, types);
    let links = matches!(&linked, Clause::Index { param_ids, .. } if !param_ids.is_empty());
    let mut ways = Vec::new();
    if is_patient {
        ways.push(Clause::Id(patients.to_vec()));
    }
    if links {
        ways.push(linked);
    }
    ways
}

/// The resources of `types` (none a Patient) that no compartment parameter links to anything:
/// no patient's. A link to something else (a Practitioner performer) counts as a patient's here,
/// which withholds more rather than less.
fn of_no_patient(types: &[String]) -> Clause {
    match compartments::clause_of_any("Patient", &[], types) {
        Clause::Index { param_ids, .. } if !param_ids.is_empty() => Clause::Missing {
            table: crate::search::params::reference::TABLE.name,
            param_ids,
            missing: true,
        },
        _ => Clause::All(Vec::new()),
    }
}

/// Narrows the history of `types` (none: every type): versions of denying patients are left
/// out, and under `--consent-default deny` those of patients without consents. A patient whose
/// consents decide by type or by data is left to the row-by-row check.
pub fn narrow_history(view: &View, types: &[ResourceType], reach: &mut HistoryReach) {
    let all: Vec<ResourceType>;
    let types = if types.is_empty() {
        all = ResourceType::all().filter(|t| governs(*t)).collect();
        &all[..]
    } else {
        types
    };
    let governed: Vec<ResourceType> = types.iter().copied().filter(|t| governs(*t)).collect();
    if governed.is_empty() {
        return;
    }
    let mut hidden = Vec::new();
    let mut admitted = Vec::new();
    for patient in view.consenting_patients() {
        let classes: Vec<Class> = governed.iter().map(|t| view.class(patient, *t)).collect();
        if classes.iter().all(|c| matches!(c, Class::Deny(_))) {
            hidden.push(patient.to_owned());
        } else {
            admitted.push(patient.to_owned());
        }
    }
    admitted.extend(view.own_patient().map(str::to_owned));
    reach.hidden_patients = hidden;
    if governed.iter().all(|t| view.withholds_by_default(*t)) {
        reach.only_patients = Some(admitted);
    }
}
