//! FHIR history interaction — https://hl7.org/fhir/R4/http.html#history
//!
//! `GET [base]/_history`, `[type]/_history`, `[type]/[id]/_history`: a Bundle of type `history`,
//! newest first, every version including deletes, each entry with `request` and `response`.
//! Parameters: `_count`, `_since` (versions written at or after), `_at` (versions current at some
//! point in the given period). Paging links carry a write-sequence cursor (`_page_before` /
//! `_page_after`), so pages stay correct while new versions arrive and the server keeps no state.

use super::Cx;
use super::access::{self, disclose};
pub use super::request::HistoryTarget;
use crate::auth::scope::Permission;
use crate::bundle::{HistoryPage, HistoryVersion, Link};
use crate::error::{Error, Result};
use crate::model::{Id, InstantRange, ResourceType};
use crate::store::{HistoryCursor, HistoryEntry, HistoryQuery, HistoryScope, Method};

/// Page size when `_count` is absent, and the largest page served whatever `_count` asks.
pub const DEFAULT_COUNT: u32 = 50;
pub const MAX_COUNT: u32 = 1000;

/// The query parameters history understands, parsed; others are ignored (and left out of links).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryParams {
    pub count: Option<u32>,
    pub since: Option<String>,
    pub at: Option<String>,
    pub page_before: Option<i64>,
    pub page_after: Option<i64>,
}

impl HistoryParams {
    /// Parses the raw query pairs; a malformed value is a 400 naming the parameter.
    pub fn parse(pairs: &[(String, String)]) -> Result<HistoryParams> {
        let mut params = HistoryParams::default();
        for (name, value) in pairs {
            match name.as_str() {
                "_count" => {
                    params.count = Some(value.parse().map_err(|_| {
                        Error::invalid(format!("_count must be a whole number ≥ 0, not '{value}'")).at("_count")
                    })?)
                }
                "_since" => {
                    InstantRange::parse(value).map_err(|e| e.at("_since"))?;
                    params.since = Some(value.clone());
                }
                "_at" => {
                    InstantRange::parse(value).map_err(|e| e.at("_at"))?;
                    params.at = Some(value.clone());
                }
                "_page_before" => params.page_before = Some(parse_cursor(name, value)?),
                "_page_after" => params.page_after = Some(parse_cursor(name, value)?),
                _ => {}
            }
        }
        if params.page_before.is_some() && params.page_after.is_some() {
            return Err(Error::invalid("use either _page_before or _page_after, not both"));
        }
        Ok(params)
    }

    /// The query string of a link: the filters as given, `_count`, and the cursor for that page.
    fn link_query(&self, count: u32, cursor: HistoryCursor) -> String {
        let mut parts = vec![format!("_count={count}")];
        if let Some(since) = &self.since {
            parts.push(format!("_since={}", encode(since)));
        }
        if let Some(at) = &self.at {
            parts.push(format!("_at={}", encode(at)));
        }
        match cursor {
            HistoryCursor::Newest => {}
            HistoryCursor::OlderThan(seq) => parts.push(format!("_page_before={seq}")),
            HistoryCursor::NewerThan(seq) => parts.push(format!("_page_after={seq}")),
        }
        parts.join("&")
    }
}

fn parse_cursor(name: &str, value: &str) -> Result<i64> {
    value
        .parse()
        .map_err(|_| Error::invalid(format!("{name} must be a paging cursor from a link, not '{value}'")).at(name))
}

/// Percent-encodes what a dateTime may contain that a query string may not (`+`, `:`).
fn encode(value: &str) -> String {
    value.replace('%', "%25").replace('+', "%2B").replace(':', "%3A")
}

/// A page of the history `target` names, as the query `pairs` ask.
pub async fn history(cx: &Cx, target: &HistoryTarget, pairs: &[(String, String)]) -> Result<HistoryPage> {
    let params = HistoryParams::parse(pairs)?;
    let services = &cx.services;
    let (scope, path) = match target {
        HistoryTarget::System => (HistoryScope::System, "_history".to_owned()),
        HistoryTarget::Type(t) => (HistoryScope::Type(*t), format!("{t}/_history")),
        HistoryTarget::Instance(t, id) => {
            let id = Id::parse(id)?;
            let path = format!("{t}/{id}/_history");
            (HistoryScope::Instance(*t, id), path)
        }
    };
    // An instance's history needs `r`, a type's or the system's `s`; a restricted caller sees the
    // versions within its reach, counted in SQL.
    let (types, permission) = match target {
        HistoryTarget::System => (Vec::new(), Permission::Search),
        HistoryTarget::Type(t) => (vec![*t], Permission::Search),
        HistoryTarget::Instance(t, _) => (vec![*t], Permission::Read),
    };
    let mut reach = access::narrow::history_reach(cx, &types, permission)?;
    let consents = access::consent::view(cx).await?;
    if let Some(view) = &consents {
        // An instance whose current version the consents withhold is as unknown as to a read.
        if let HistoryTarget::Instance(t, id) = target
            && let Some(current) = services.store.read(*t, id).await?
            && let Some(content) = &current.content
            && !access::disclose::consents_admit(cx, Some(view), *t, id, current.version_id, content)?
        {
            return Err(Error::not_found(format!("{t}/{id} is not known")));
        }
        let reach = reach.get_or_insert_with(|| crate::store::HistoryReach {
            everything: true,
            ..Default::default()
        });
        access::consent_narrow::narrow_history(view, &types, reach);
    }
    let count = params.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    let cursor = match (params.page_before, params.page_after) {
        (Some(seq), _) => HistoryCursor::OlderThan(seq),
        (_, Some(seq)) => HistoryCursor::NewerThan(seq),
        _ => HistoryCursor::Newest,
    };
    let query = HistoryQuery {
        scope,
        since: params
            .since
            .as_deref()
            .map(|s| InstantRange::parse(s).map(|r| r.start))
            .transpose()?,
        at: params.at.as_deref().map(InstantRange::parse).transpose()?,
        cursor,
        count,
        reach,
    };
    let mut entries = services.store.history(&query).await?;

    // The store returns one entry beyond the page when there is more in the direction of travel.
    let more = entries.len() > count as usize;
    if more {
        match cursor {
            HistoryCursor::NewerThan(_) => entries.remove(0),
            _ => entries.pop().expect("more than count entries"),
        };
    }
    let (has_older, has_newer) = match cursor {
        HistoryCursor::Newest => (more, false),
        HistoryCursor::OlderThan(_) => (more, true),
        HistoryCursor::NewerThan(_) => (true, more),
    };
    let total = match &query.scope {
        HistoryScope::Instance(t, id) => {
            let total = services.store.history_total(&query).await?;
            if total == 0 && query.since.is_none() && query.at.is_none() {
                return Err(Error::not_found(format!("{t}/{id} is not known")));
            }
            // Versions are judged one by one against the consents (a past version may be
            // withheld where the current one is not): a count of them would tell.
            match &consents {
                Some(view) if view.any_in_force() => None,
                _ => Some(total),
            }
        }
        _ => None,
    };

    let url = |cursor| format!("{}/{path}?{}", services.base_url, params.link_query(count, cursor));
    let mut links = vec![
        Link::new("self", url(cursor)),
        Link::new("first", url(HistoryCursor::Newest)),
    ];
    if let (true, Some(newest)) = (has_newer, entries.first()) {
        links.push(Link::new("previous", url(HistoryCursor::NewerThan(newest.seq))));
    }
    if let (true, Some(oldest)) = (has_older, entries.last()) {
        links.push(Link::new("next", url(HistoryCursor::OlderThan(oldest.seq))));
    }
    let mut versions = Vec::with_capacity(entries.len());
    for mut entry in entries {
        if let Some(content) = entry.content.take() {
            // Narrowed in SQL by the owners recorded with each version; checked again here.
            match disclose::row(
                cx,
                &entry.resource_type,
                &entry.id,
                entry.version_id,
                content,
                permission,
            )? {
                Some(content) => {
                    let admitted = match ResourceType::parse(&entry.resource_type) {
                        Some(t) => access::disclose::consents_admit(
                            cx,
                            consents.as_deref(),
                            t,
                            &entry.id,
                            entry.version_id,
                            &content,
                        )?,
                        None => true,
                    };
                    if !admitted {
                        continue;
                    }
                    entry.content = Some(content)
                }
                None => {
                    tracing::error!(resource_type = %entry.resource_type, "a version out of the caller's reach was left out");
                    continue;
                }
            }
        }
        versions.push(history_version(entry));
    }
    Ok(HistoryPage {
        total,
        links,
        entries: versions,
    })
}

/// A stored version as a history entry: the request that made it and how it was answered.
fn history_version(entry: HistoryEntry) -> HistoryVersion {
    let instance = || format!("{}/{}", entry.resource_type, entry.id);
    let (url, status) = match entry.method {
        Method::Post => (entry.resource_type.clone(), "201 Created"),
        Method::Put if entry.version_id == 1 => (instance(), "201 Created"),
        Method::Put => (instance(), "200 OK"),
        Method::Delete => (instance(), "204 No Content"),
    };
    HistoryVersion {
        method: entry.method.as_str(),
        url,
        status,
        version_id: entry.version_id,
        last_updated: entry.last_updated,
        resource_type: entry.resource_type,
        id: entry.id,
        content: entry.content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn parses_known_parameters_and_ignores_others() {
        let p = HistoryParams::parse(&pairs(&[("_count", "5"), ("_since", "2020-01-01"), ("foo", "bar")])).unwrap();
        assert_eq!(p.count, Some(5));
        assert_eq!(p.since.as_deref(), Some("2020-01-01"));
        assert_eq!(
            p.link_query(5, HistoryCursor::OlderThan(9)),
            "_count=5&_since=2020-01-01&_page_before=9"
        );
    }

    #[test]
    fn malformed_values_name_their_parameter() {
        for (name, value) in [
            ("_count", "-1"),
            ("_count", "ten"),
            ("_since", "yesterday"),
            ("_at", "2020-13"),
        ] {
            let e = HistoryParams::parse(&pairs(&[(name, value)])).unwrap_err();
            assert_eq!(e.issues[0].expression.as_deref(), Some(name));
        }
    }

    #[test]
    fn link_values_are_query_safe() {
        let p = HistoryParams {
            since: Some("2020-01-01T10:00:00+01:00".into()),
            ..Default::default()
        };
        assert_eq!(
            p.link_query(1, HistoryCursor::Newest),
            "_count=1&_since=2020-01-01T10%3A00%3A00%2B01%3A00"
        );
    }
}
