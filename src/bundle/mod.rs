//! Bundles the server writes: history, searchset, transaction-response and batch-response. Stored resources are embedded as raw JSON, never re-parsed into a `Value`.

use crate::error::{Error, Result};
use crate::model::{Id, Instant};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Serialize)]
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
