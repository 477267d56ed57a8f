//! Where the pipeline keeps what it knows, on the [`BlobStore`] seam: claim-check payloads,
//! document state records (read-modify-write with ETags), the recent-documents index,
//! idempotency keys, combined analyses and refine-summary steps.
//!
//! Every write is conditional, so redeliveries and concurrent functions agree: payloads, index
//! entries, idempotency keys, analyses and steps are create-if-absent; state records change
//! only through [`DocumentStore::update`], which retries on a lost ETag race.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::state::DocumentState;
use crate::poison::sha256_hex;
use crate::task::{ContentRef, ResultRef, encode_segment};
use docflow_blob::{BlobError, BlobStore};

/// Most attempts of one read-modify-write before giving up: far beyond any real contention
/// (one writer per task of a document), small enough to surface a livelock.
const MAX_UPDATE_ATTEMPTS: u32 = 64;

/// Containers the pipeline writes to.
#[derive(Debug, Clone)]
pub struct Containers {
    /// Claim-check payloads.
    pub payloads: String,
    /// Task results, analyses, refine steps.
    pub results: String,
    /// State records, index, idempotency keys, poison records.
    pub state: String,
    /// Audit records.
    pub audit: String,
}

impl Default for Containers {
    fn default() -> Self {
        Self {
            payloads: "documents".into(),
            results: "results".into(),
            state: "state".into(),
            audit: "audit".into(),
        }
    }
}

/// Failures of the pipeline's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage failed; worth retrying.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A stored document is not what it should be.
    #[error("stored {name} is unreadable: {detail}")]
    Corrupt {
        /// Blob name.
        name: String,
        /// The parser's message.
        detail: String,
    },
    /// Too many writers raced on one record.
    #[error("state of document {0} changed under every one of {MAX_UPDATE_ATTEMPTS} attempts")]
    Contention(String),
}

/// An idempotency key's record: the document it started and the request it was for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The document started under the key.
    pub document_id: String,
    /// Its correlation id.
    pub correlation_id: String,
    /// SHA-256 of the request it was first used with.
    pub request_sha256: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An entry of the recent-documents index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// The document.
    pub document_id: String,
    /// When it was accepted.
    pub submitted_at: DateTime<Utc>,
}

/// One page of the recent-documents index, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexPage {
    /// The entries.
    pub entries: Vec<IndexEntry>,
    /// Pass this as `after` for the next page.
    pub next: Option<String>,
}

/// The pipeline's storage.
#[derive(Clone)]
pub struct DocumentStore {
    blobs: Arc<dyn BlobStore>,
    containers: Containers,
}

impl DocumentStore {
    /// A store over `blobs`.
    pub fn new(blobs: Arc<dyn BlobStore>, containers: Containers) -> Self {
        Self { blobs, containers }
    }

    /// The underlying blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The containers.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    fn state_name(document_id: &str) -> String {
        format!("documents/{}.json", encode_segment(document_id))
    }

    /// The claim-check reference a document's text (`size` bytes, SHA-256 `sha256`) is stored
    /// under.
    pub fn payload_ref(&self, document_id: &str, size: usize, sha256: String) -> ContentRef {
        ContentRef {
            container: self.containers.payloads.clone(),
            blob: format!("{}/content.txt", encode_segment(document_id)),
            content_type: Some("text/plain; charset=utf-8".into()),
            size_bytes: Some(size as u64),
            sha256: Some(sha256),
        }
    }

    /// The claim-check reference a submitted file read by OCR is kept under.
    pub fn source_ref(
        &self,
        document_id: &str,
        content_type: &str,
        size: usize,
        sha256: String,
    ) -> ContentRef {
        let extension = match content_type {
            "application/pdf" => "pdf",
            "image/png" => "png",
            "image/jpeg" => "jpg",
            "image/tiff" => "tiff",
            _ => "bin",
        };
        ContentRef {
            container: self.containers.payloads.clone(),
            blob: format!("{}/source.{extension}", encode_segment(document_id)),
            content_type: Some(content_type.into()),
            size_bytes: Some(size as u64),
            sha256: Some(sha256),
        }
    }

    /// Stores a document's text once (an existing identical payload is kept).
    pub async fn store_payload(
        &self,
        reference: &ContentRef,
        text: Bytes,
    ) -> Result<(), StoreError> {
        let content_type = reference.content_type.as_deref().unwrap_or("text/plain");
        match self
            .blobs
            .create_if_absent(&reference.container, &reference.blob, text, content_type)
            .await
        {
            Ok(_) | Err(BlobError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a document's state record; an existing one is kept and returned.
    pub async fn create_state(&self, state: &DocumentState) -> Result<DocumentState, StoreError> {
        let name = Self::state_name(&state.document_id);
        match self
            .create_json(&self.containers.state, &name, state)
            .await?
        {
            true => Ok(state.clone()),
            false => self
                .state(&state.document_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    name,
                    detail: "vanished right after being found".into(),
                }),
        }
    }

    /// A document's state record.
    pub async fn state(&self, document_id: &str) -> Result<Option<DocumentState>, StoreError> {
        self.read_json(&self.containers.state, &Self::state_name(document_id))
            .await
    }

    /// Applies `change` to a document's state and writes it if it says it changed, retrying
    /// with the fresh record whenever another writer got there first. Returns the record as
    /// written (or as found, when nothing changed) and whether this call changed it.
    pub async fn update<F>(
        &self,
        document_id: &str,
        mut change: F,
    ) -> Result<Option<(DocumentState, bool)>, StoreError>
    where
        F: FnMut(&mut DocumentState) -> bool + Send,
    {
        let name = Self::state_name(document_id);
        let container = &self.containers.state;
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            let blob = match self.blobs.get(container, &name).await {
                Ok(blob) => blob,
                Err(BlobError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut state: DocumentState = parse(&name, &blob.data)?;
            if !change(&mut state) {
                return Ok(Some((state, false)));
            }
            let bytes = serde_json::to_vec_pretty(&state).map_err(|e| corrupt(&name, e))?;
            match self
                .blobs
                .put_if_match(
                    container,
                    &name,
                    Bytes::from(bytes),
                    "application/json",
                    &blob.properties.etag,
                )
                .await
            {
                Ok(_) => return Ok(Some((state, true))),
                Err(BlobError::ConditionNotMet { .. }) => {
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) + jitter))
                        .await;
                }
                Err(BlobError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention(document_id.to_string()))
    }

    /// Adds a document to the recent-documents index (names sort newest first).
    pub async fn index(&self, entry: &IndexEntry) -> Result<(), StoreError> {
        let inverted = i64::MAX - entry.submitted_at.timestamp_micros().max(0);
        let name = format!(
            "index/documents/{inverted:019}-{}",
            encode_segment(&entry.document_id)
        );
        self.create_json(&self.containers.state, &name, entry)
            .await
            .map(|_| ())
    }

    /// A page of the recent-documents index, newest first, starting after the `after` cursor.
    pub async fn recent(&self, after: Option<&str>, limit: usize) -> Result<IndexPage, StoreError> {
        let items = self
            .blobs
            .list(&self.containers.state, "index/documents/")
            .await?;
        let mut entries = Vec::new();
        let mut next = None;
        for item in items
            .iter()
            .filter(|i| after.is_none_or(|a| i.name.as_str() > a))
        {
            if entries.len() == limit {
                next = entries
                    .last()
                    .map(|(name, _): &(String, IndexEntry)| name.clone());
                break;
            }
            if let Some(entry) = self
                .read_json::<IndexEntry>(&self.containers.state, &item.name)
                .await?
            {
                entries.push((item.name.clone(), entry));
            }
        }
        Ok(IndexPage {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            next,
        })
    }

    fn idempotency_name(key: &str) -> String {
        format!("idempotency/{}.json", sha256_hex(key.as_bytes()))
    }

    /// The record of an idempotency key, if it was used before.
    pub async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.read_json(&self.containers.state, &Self::idempotency_name(key))
            .await
    }

    /// Claims an idempotency key for `record`; when another request claimed it first, returns
    /// that request's record instead.
    pub async fn claim_idempotency(
        &self,
        key: &str,
        record: &IdempotencyRecord,
    ) -> Result<IdempotencyRecord, StoreError> {
        let name = Self::idempotency_name(key);
        if self
            .create_json(&self.containers.state, &name, record)
            .await?
        {
            return Ok(record.clone());
        }
        self.read_json(&self.containers.state, &name)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                name,
                detail: "vanished right after being found".into(),
            })
    }

    /// Where a document's combined analysis is stored (revision 0).
    pub fn analysis_ref(&self, document_id: &str) -> ResultRef {
        self.analysis_revision_ref(document_id, 0)
    }

    /// Where a revision of a document's combined analysis is stored.
    pub fn analysis_revision_ref(&self, document_id: &str, revision: u32) -> ResultRef {
        let suffix = if revision == 0 {
            String::new()
        } else {
            format!(".r{revision}")
        };
        ResultRef {
            container: self.containers.results.clone(),
            blob: format!("analyses/{}{suffix}.json", encode_segment(document_id)),
        }
    }

    /// Where step `index` of a refine summary is stored.
    pub fn step_ref(&self, task_id: &str, index: usize) -> ResultRef {
        ResultRef {
            container: self.containers.results.clone(),
            blob: format!("chunks/{}/{index:06}.json", encode_segment(task_id)),
        }
    }

    /// Writes a JSON document once; returns false when it already existed (it is kept).
    pub async fn create_json<T: Serialize>(
        &self,
        container: &str,
        name: &str,
        value: &T,
    ) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| corrupt(name, e))?;
        match self
            .blobs
            .create_if_absent(container, name, Bytes::from(bytes), "application/json")
            .await
        {
            Ok(_) => Ok(true),
            Err(BlobError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a JSON document, `None` when absent.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.blobs.get(container, name).await {
            Ok(blob) => parse(name, &blob.data).map(Some),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        name: name.to_string(),
        detail: e.to_string(),
    }
}

fn parse<T: DeserializeOwned>(name: &str, data: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(data).map_err(|e| corrupt(name, e))
}
