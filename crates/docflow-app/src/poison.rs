//! Poison records: why a message can never succeed, kept under its task's key.
//!
//! A record remembers the SHA-256 of the body it was made for. A redelivery of that same body
//! fails fast from the record, with no provider call and no content read; a *different* body
//! for the same task (a corrected resend) is processed afresh. Bodies without a usable `taskId`
//! are keyed by their hash.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::task::encode_segment;
use docflow_blob::{BlobError, BlobStore};

/// Schema id of a poison record.
pub const POISON_SCHEMA: &str = "docflow.poison.v1";

/// One recorded poison message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoisonRecord {
    /// Always [`POISON_SCHEMA`].
    pub schema: String,
    /// The task id, or `body-sha256-…` for bodies without one.
    pub key: String,
    /// Machine-readable reason.
    pub reason: String,
    /// What is wrong.
    pub description: String,
    /// SHA-256 of the message body, lower-case hex.
    pub body_sha256: String,
    /// Service Bus `MessageId` of the delivery that found the problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Its delivery count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_count: Option<u32>,
    /// When the problem was found.
    pub recorded_at: DateTime<Utc>,
}

/// The poison-record store, on top of the blob store.
#[derive(Clone)]
pub struct PoisonRecords {
    blobs: Arc<dyn BlobStore>,
    container: String,
}

impl PoisonRecords {
    /// Records kept in `container` under `poison/`.
    pub fn new(blobs: Arc<dyn BlobStore>, container: impl Into<String>) -> Self {
        Self {
            blobs,
            container: container.into(),
        }
    }

    /// The blob name of a key's record.
    pub fn blob_name(key: &str) -> String {
        format!("poison/{}.json", encode_segment(key))
    }

    /// The record for `key`, if any. An unreadable record counts as none.
    pub async fn find(&self, key: &str) -> Result<Option<PoisonRecord>, BlobError> {
        match self.blobs.get(&self.container, &Self::blob_name(key)).await {
            Ok(blob) => Ok(serde_json::from_slice(&blob.data).ok()),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes (or replaces) the record for its key.
    pub async fn record(&self, record: &PoisonRecord) -> Result<(), BlobError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a poison record serializes");
        self.blobs
            .put(
                &self.container,
                &Self::blob_name(&record.key),
                Bytes::from(bytes),
                "application/json",
            )
            .await
            .map(|_| ())
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hexadecimal of a digest.
pub fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of a message: its task id, or its body hash when it has none.
pub fn poison_key(task_id: Option<String>, body_sha256: &str) -> String {
    task_id.unwrap_or_else(|| format!("body-sha256-{body_sha256}"))
}
