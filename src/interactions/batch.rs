//! FHIR batch interaction — https://hl7.org/fhir/R4/http.html#transaction (batch)
//!
//! `POST [base]` with a `batch` Bundle: each entry is its own interaction, run in entry order
//! through the dispatcher — the same code as the REST interaction it stands for — with its own status
//! and, when it fails, its own OperationOutcome; one failure changes nothing for the others. A
//! batch's entries may not depend on each other, so a reference to another entry's `fullUrl`
//! fails that entry (`400`). Conditional references (`Patient?identifier=…`) are resolved per
//! entry.

use super::bundle_references::{self, Assigned};
use super::bundle_request::EntryRequest;
use super::context::Dispatch;
use super::outcome::{BundleOutcome, EntryOutcome};
use super::request::BundleKind;
use super::{Cx, conditional};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Runs a batch whose entries `parse_bundle` produced.
/// `dispatch` is the dispatcher each entry runs through.
pub async fn batch(cx: &Cx, entries: Vec<Result<EntryRequest>>, dispatch: Dispatch) -> BundleOutcome {
    let mut others = Assigned::default();
    for entry in entries.iter().flatten() {
        if let Some(full_url) = &entry.full_url {
            others.insert(full_url, String::new());
        }
    }
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let outcome = match entry {
            Err(e) => EntryOutcome {
                head: false,
                outcome: Err(e),
            },
            Ok(entry) => {
                let head = entry.is_head();
                let (index, full_url) = (entry.index, entry.full_url.clone());
                EntryOutcome {
                    head,
                    outcome: run_entry(cx, entry, &others, dispatch)
                        .await
                        .map_err(|e| e.in_entry(index, full_url.as_deref())),
                }
            }
        };
        outcomes.push(outcome);
    }
    BundleOutcome {
        kind: BundleKind::Batch,
        entries: outcomes,
    }
}

async fn run_entry(
    cx: &Cx,
    mut entry: EntryRequest,
    others: &Assigned,
    dispatch: Dispatch,
) -> Result<super::outcome::Outcome> {
    if let Some(resource) = entry.request.resource_mut()
        && let Some((reference, path)) = bundle_references::first_reference_to(resource.as_map_mut(), others)
    {
        return Err(Error::invalid(format!(
            "the reference '{reference}' names another entry of the batch; batch entries are processed independently and may not refer to each other (use a transaction)"
        ))
        .at(path));
    }
    if let Some(resource) = entry.request.resource_mut() {
        let mut resolved = HashMap::new();
        conditional::resolve_references(cx, resource.as_map_mut(), &mut resolved).await?;
        bundle_references::rewrite(resource.as_map_mut(), None, &Assigned::default(), &resolved)?;
    }
    dispatch(cx, entry.request).await
}
