//! Part of search: the ValueSets named by `:in` / `:not-in` are looked up in the store and their
//! codes put into the query before it is compiled (`search::value_sets` does the expanding).
//! The look-ups are the server's own work (a `System` caller): a ValueSet is terminology the
//! search needs, not data the search discloses.

use super::Cx;
use crate::auth::SystemTask;
use crate::auth::scope::Permission;
use crate::error::{Error, Result};
use crate::model::ResourceType;
use crate::search::compile;
use crate::search::params::ValueMatch;
use crate::search::params::token::TokenMatch;
use crate::search::plan::Plan;
use crate::search::query::Clause;
use crate::search::request;
use crate::search::value_sets::{self, Expansion, MAX_DEPTH};
use serde_json::Value;
use std::collections::HashMap;

/// Fills in the codes of every value set match in `clauses`, or fails with a 400 naming the
/// parameter when a value set is missing or cannot be expanded here.
pub async fn expand_value_sets(cx: &Cx, clauses: &mut [Clause]) -> Result<()> {
    let mut matches = Vec::new();
    for clause in clauses.iter_mut() {
        collect(clause, &mut matches);
    }
    if matches.is_empty() {
        return Ok(());
    }
    // The look-up reads ValueSets as the server: only for a caller that may read them all.
    let value_set = ResourceType::parse("ValueSet").expect("a type");
    if super::access::reach(cx, value_set, Permission::Read) != super::access::Reach::All {
        return Err(Error::forbidden(
            ":in and :not-in read ValueSets; the access token does not grant reading every ValueSet",
        ));
    }
    let lookup = cx.as_system(SystemTask::ValueSetLookup);
    let mut known: HashMap<String, Option<Value>> = HashMap::new();
    for token in matches {
        let TokenMatch::InValueSet { url, codes, parameter } = token else {
            continue;
        };
        // Each round looks up the value sets the last one found imported.
        let mut rounds = 0;
        *codes = loop {
            match value_sets::expand(url, &known) {
                Expansion::Codes(found) => break found,
                Expansion::Fails(why) => return Err(Error::invalid(why).at(parameter.clone())),
                Expansion::Needs(references) => {
                    rounds += 1;
                    if rounds > MAX_DEPTH + 1 {
                        return Err(
                            Error::invalid(format!("value set imports of {url} nest too deep")).at(parameter.clone())
                        );
                    }
                    for reference in references {
                        let value_set = find(&lookup, &reference).await?;
                        known.insert(reference, value_set);
                    }
                }
            }
        };
    }
    Ok(())
}

fn collect<'c>(clause: &'c mut Clause, out: &mut Vec<&'c mut TokenMatch>) {
    match clause {
        Clause::Index { matches, .. } => {
            for m in matches {
                if let ValueMatch::Token(token @ TokenMatch::InValueSet { .. }) = m {
                    out.push(token);
                }
            }
        }
        Clause::Chain { inner, .. } | Clause::Has { inner, .. } | Clause::Not(inner) => collect(inner, out),
        Clause::All(clauses) | Clause::Any(clauses) => clauses.iter_mut().for_each(|c| collect(c, out)),
        Clause::Composite { alternatives, .. } => {
            for alternative in alternatives {
                for part in &mut alternative.parts {
                    if let ValueMatch::Token(token @ TokenMatch::InValueSet { .. }) = part {
                        out.push(token);
                    }
                }
            }
        }
        Clause::Id(_) | Clause::LastUpdated(_) | Clause::OfType(_) | Clause::Missing { .. } => {}
    }
}

/// The ValueSet `reference` names: `ValueSet/id` (relative or on this server's base) by id, else a
/// canonical URL (`url|version` allowed) by `ValueSet.url`.
async fn find(cx: &Cx, reference: &str) -> Result<Option<Value>> {
    let services = &cx.services;
    let local = reference
        .strip_prefix(&*services.base_url)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(reference);
    if let Some(id) = local
        .strip_prefix("ValueSet/")
        .filter(|id| crate::model::id::is_valid_id(id))
    {
        let found = services
            .store
            .read(ResourceType::parse("ValueSet").expect("a type"), id)
            .await?;
        return found
            .and_then(|version| version.content)
            .map(|content| parse(&content))
            .transpose();
    }
    let (url, version) = match reference.split_once('|') {
        Some((url, version)) => (url, Some(version)),
        None => (reference, None),
    };
    let mut query = vec![
        ("url".to_owned(), url.replace(',', "\\,")),
        ("_count".to_owned(), "1".to_owned()),
    ];
    if let Some(version) = version {
        query.push(("version".to_owned(), version.replace(',', "\\,")));
    }
    let search = request::parse(
        &services.search_parameters.current(),
        Some(&["ValueSet"]),
        &query,
        &services.base_url,
        services.search_limits,
        true,
    )?;
    let rows = services
        .store
        .search(&compile::page_query(services.store.dialect(), &search, &Plan::sets())?)
        .await?;
    rows.first().map(|row| parse(&row.content)).transpose()
}

fn parse(content: &[u8]) -> Result<Value> {
    serde_json::from_slice(content).map_err(|e| Error::internal(format!("a stored ValueSet is not JSON: {e}")))
}
