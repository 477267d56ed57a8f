//! The blob storage seam: payloads (claim-check), task results and processing state.
//!
//! Every effect docflow must do once is a conditional write here: [`BlobStore::create_if_absent`]
//! for "first writer wins" and [`BlobStore::put_if_match`] for read-modify-write with ETags, as
//! Azure Blob Storage offers them (`If-None-Match: *`, `If-Match: <etag>`).
//!
//! # Layout
//! - [`local`]: a folder on disk, crash-safe and safe under concurrent writers.
//! - [`azure`]: Azure Blob Storage (or Azurite) through the official SDK.
//! - [`connection`]: Functions-style connection settings and account SAS signing.
//!
//! Depends on no other docflow crate: the app and the local host both write through it.

pub mod azure;
pub mod connection;
pub mod local;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use azure::AzureBlobStore;
pub use local::LocalFolderStore;

/// An opaque version tag; it changes on every write of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobProperties {
    /// Current version.
    pub etag: ETag,
    /// MIME type given when it was written.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Time of the last write.
    pub last_modified: DateTime<Utc>,
}

/// A blob's content with its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    /// The bytes.
    pub data: Bytes,
    /// The properties at the time of reading.
    pub properties: BlobProperties,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobItem {
    /// Full blob name within the container.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Time of the last write.
    pub last_modified: DateTime<Utc>,
}

/// Blob operation failures. Conditional failures are values the caller branches on.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No such blob.
    #[error("blob not found: {container}/{name}")]
    NotFound {
        /// Container.
        container: String,
        /// Blob name.
        name: String,
    },
    /// `create_if_absent` found the blob already there.
    #[error("blob already exists: {container}/{name}")]
    AlreadyExists {
        /// Container.
        container: String,
        /// Blob name.
        name: String,
    },
    /// `put_if_match` found another version.
    #[error("blob was changed by another writer: {container}/{name}")]
    ConditionNotMet {
        /// Container.
        container: String,
        /// Blob name.
        name: String,
    },
    /// The container or blob name is not allowed.
    #[error("invalid blob name {container}/{name}: {reason}")]
    InvalidName {
        /// Container.
        container: String,
        /// Blob name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The storage itself failed (disk, network); worth retrying.
    #[error("blob storage {operation} failed for {container}/{name}: {source}")]
    Io {
        /// The operation (`get`, `put`, …).
        operation: &'static str,
        /// Container.
        container: String,
        /// Blob name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Blob storage as docflow uses it: whole-blob reads and writes, conditional writes, listings.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Reads a blob.
    async fn get(&self, container: &str, name: &str) -> Result<Blob, BlobError>;

    /// Reads a blob's properties, or `None` when it does not exist.
    async fn properties(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<BlobProperties>, BlobError>;

    /// Writes a blob unconditionally.
    async fn put(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError>;

    /// Writes a blob only if it does not exist yet ([`BlobError::AlreadyExists`] otherwise).
    async fn create_if_absent(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError>;

    /// Replaces a blob only if its current version is `etag` ([`BlobError::ConditionNotMet`]
    /// otherwise, [`BlobError::NotFound`] if it is gone).
    async fn put_if_match(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        etag: &ETag,
    ) -> Result<ETag, BlobError>;

    /// Lists the blobs whose names start with `prefix`, sorted by name.
    async fn list(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, BlobError>;

    /// Deletes a blob ([`BlobError::NotFound`] if it does not exist).
    async fn delete(&self, container: &str, name: &str) -> Result<(), BlobError>;
}

/// Checks names against Azure's rules, so that what works locally also works on Azure.
pub fn validate_name(container: &str, name: &str) -> Result<(), BlobError> {
    let invalid = |reason| BlobError::InvalidName {
        container: container.to_string(),
        name: name.to_string(),
        reason,
    };
    let container_ok = (3..=63).contains(&container.len())
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if !container_ok {
        return Err(invalid(
            "container names are 3-63 lowercase letters, digits and single hyphens",
        ));
    }
    if name.is_empty() || name.chars().count() > 1024 {
        return Err(invalid("blob names are 1 to 1024 characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid(
            "blob names may not contain control characters or backslashes",
        ));
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(invalid("blob name segments may not be empty, '.' or '..'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azure_rules() {
        assert!(validate_name("results", "tasks/doc-1%3Asummarize.json").is_ok());
        for (c, n) in [
            ("Results", "a"),
            ("ab", "a"),
            ("a--b", "a"),
            ("results", ""),
            ("results", "../etc/passwd"),
            ("results", "a//b"),
            ("results", "a/"),
            ("results", "a\\b"),
        ] {
            assert!(validate_name(c, n).is_err(), "{c}/{n}");
        }
    }
}
