//! Bundles the server writes: history, searchset, transaction-response and batch-response. A
//! searchset or history page is first a typed value (`Searchset`, `HistoryPage`: which resources
//! and versions it holds), turned into JSON at the edge. Stored resources are embedded as raw
//! JSON, never re-parsed into a `Value`.

use crate::error::{Error, Result};
use crate::model::{Id, Instant, VersionId};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

impl Link {
    pub fn new(relation: &'static str, url: String) -> Link {
        Link { relation, url }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<EntrySearch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<EntryRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<EntryResponse>,
}

/// Why an entry is in a searchset: `match`, `include` or `outcome`.
#[derive(Debug, Serialize)]
pub struct EntrySearch {
    pub mode: &'static str,
}

#[derive(Debug, Serialize)]
pub struct EntryRequest {
    pub method: &'static str,
    pub url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResponse {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// An OperationOutcome: why a batch entry failed, or what a write did when asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Box<RawValue>>,
}

impl EntryResponse {
    /// A response with only a status (`200 OK`).
    pub fn status(status: &str) -> EntryResponse {
        EntryResponse {
            status: status.to_owned(),
            location: None,
            etag: None,
            last_modified: None,
            outcome: None,
        }
    }
}

impl BundleEntry<'_> {
    /// An entry with only a response.
    pub fn response(response: EntryResponse) -> Self {
        BundleEntry {
            full_url: None,
            resource: None,
            search: None,
            request: None,
            response: Some(response),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bundle<'a> {
    resource_type: &'static str,
    id: Id,
    meta: BundleMeta,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    link: &'a [Link],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    entry: &'a [BundleEntry<'a>],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BundleMeta {
    last_updated: String,
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A stored resource as an embeddable raw JSON value.
pub fn raw_json(content: &[u8]) -> Result<&RawValue> {
    let text =
        std::str::from_utf8(content).map_err(|e| Error::internal(format!("stored content is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored content is not JSON: {e}")))
}

/// Serialises a Bundle of type `kind` with a fresh id and `meta.lastUpdated` of now.
pub fn serialise(kind: &'static str, total: Option<i64>, links: &[Link], entries: &[BundleEntry<'_>]) -> Result<Bytes> {
    let bundle = Bundle {
        resource_type: "Bundle",
        id: Id::generate(),
        meta: BundleMeta {
            last_updated: Instant::now().to_fhir(),
        },
        kind,
        total,
        link: links,
        entry: entries,
    };
    serde_json::to_vec(&bundle)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("serialising a Bundle: {e}")))
}

/// A page of search results (a `searchset` Bundle), before it is serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Searchset {
    pub total: Option<i64>,
    pub links: Vec<Link>,
    pub entries: Vec<SearchEntry>,
}

/// Why an entry is in a searchset (search.html#mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Match,
    Include,
}

/// One entry of a searchset.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchEntry {
    /// A stored resource: its type, id, current version and served JSON (possibly a
    /// `_summary`/`_elements` subset).
    Resource {
        mode: SearchMode,
        resource_type: String,
        id: String,
        version_id: VersionId,
        content: Bytes,
    },
    /// An OperationOutcome about the search itself (parameters it ignored).
    Outcome(Bytes),
}

impl Searchset {
    /// The `searchset` Bundle; `base_url` makes each entry's `fullUrl`.
    pub fn to_json(&self, base_url: &str) -> Result<Bytes> {
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                let (full_url, content, mode) = match entry {
                    SearchEntry::Resource {
                        mode,
                        resource_type,
                        id,
                        content,
                        ..
                    } => (
                        Some(format!("{base_url}/{resource_type}/{id}")),
                        content,
                        match mode {
                            SearchMode::Match => "match",
                            SearchMode::Include => "include",
                        },
                    ),
                    SearchEntry::Outcome(content) => (None, content, "outcome"),
                };
                Ok(BundleEntry {
                    full_url,
                    resource: Some(raw_json(content)?),
                    search: Some(EntrySearch { mode }),
                    request: None,
                    response: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        serialise("searchset", self.total, &self.links, &entries)
    }
}

/// A page of history (a `history` Bundle), before it is serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub total: Option<i64>,
    pub links: Vec<Link>,
    pub entries: Vec<HistoryVersion>,
}

/// One version in a history page, with the request that made it and how it was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryVersion {
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub last_updated: Instant,
    /// `POST`, `PUT` or `DELETE`, and the URL it was sent to (`Patient`, `Patient/1`).
    pub method: &'static str,
    pub url: String,
    /// `201 Created`, `200 OK`, `204 No Content`.
    pub status: &'static str,
    /// The version's JSON; `None` for a delete.
    pub content: Option<Bytes>,
}

impl HistoryPage {
    /// The `history` Bundle; `base_url` makes each entry's `fullUrl`.
    pub fn to_json(&self, base_url: &str) -> Result<Bytes> {
        let entries = self
            .entries
            .iter()
            .map(|version| {
                Ok(BundleEntry {
                    full_url: Some(format!("{base_url}/{}/{}", version.resource_type, version.id)),
                    resource: version.content.as_deref().map(raw_json).transpose()?,
                    search: None,
                    request: Some(EntryRequest {
                        method: version.method,
                        url: version.url.clone(),
                    }),
                    response: Some(EntryResponse {
                        status: version.status.to_owned(),
                        etag: Some(format!("W/\"{}\"", version.version_id)),
                        last_modified: Some(version.last_updated.to_fhir()),
                        location: None,
                        outcome: None,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        serialise("history", self.total, &self.links, &entries)
    }
}
