//! A [`BlobStore`] on Azure Blob Storage (or Azurite), with the official `azure_storage_blob`
//! client. The conditional writes map to the service's own preconditions: create-if-absent is
//! `If-None-Match: *` (409/412 → [`BlobError::AlreadyExists`]), put-if-match is
//! `If-Match: <etag>` (412 → [`BlobError::ConditionNotMet`], 404 → [`BlobError::NotFound`]).
//! Containers are created on first write. Shared-key connections sign an account SAS (the SDK
//! authenticates with Entra tokens or SAS URLs), renewed well before it expires.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{Etag, RequestContent, StatusCode, Url};
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders, BlobClientUploadOptions,
    BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::connection::{BlobConnection, account_sas};
use super::{Blob, BlobError, BlobItem, BlobProperties, BlobStore, ETag, validate_name};

/// Lifetime of a signed account SAS; renewed when less than half is left.
const SAS_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// How requests are authorised.
enum Auth {
    /// Entra ID tokens.
    Token(Arc<dyn TokenCredential>),
    /// A fixed SAS token from the connection string.
    Sas(String),
    /// An account SAS signed with the key, renewed as it ages.
    Key {
        account: String,
        key: String,
        signed: Mutex<Option<(String, Instant)>>,
    },
}

/// Blob storage in an Azure storage account.
pub struct AzureBlobStore {
    endpoint: String,
    auth: Auth,
    containers: Mutex<HashSet<String>>,
    list_page_size: Option<i32>,
}

impl AzureBlobStore {
    /// A store for a connection; identity-based ones need `credential`.
    pub fn new(
        connection: &BlobConnection,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, String> {
        let auth = match connection {
            BlobConnection::SharedKey { account, key, .. } => Auth::Key {
                account: account.clone(),
                key: key.clone(),
                signed: Mutex::new(None),
            },
            BlobConnection::Sas { token, .. } => Auth::Sas(token.clone()),
            BlobConnection::Identity { .. } => {
                Auth::Token(credential.ok_or("identity-based blob access needs a credential")?)
            }
        };
        Url::parse(connection.endpoint()).map_err(|e| format!("invalid blob endpoint: {e}"))?;
        Ok(Self {
            endpoint: connection.endpoint().trim_end_matches('/').to_string(),
            auth,
            containers: Mutex::new(HashSet::new()),
            list_page_size: None,
        })
    }

    /// Lists `size` names per page (the service's default is 5000), to exercise paging.
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = Some(size.max(1));
        self
    }

    fn sas(&self) -> Result<Option<String>, BlobError> {
        match &self.auth {
            Auth::Token(_) => Ok(None),
            Auth::Sas(token) => Ok(Some(token.clone())),
            Auth::Key {
                account,
                key,
                signed,
            } => {
                let mut signed = signed.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((token, at)) = signed.as_ref()
                    && at.elapsed() < SAS_LIFETIME / 2
                {
                    return Ok(Some(token.clone()));
                }
                let expiry = (Utc::now()
                    + chrono::Duration::from_std(SAS_LIFETIME).unwrap_or_default())
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
                let token =
                    account_sas(account, key, &expiry).map_err(|e| io_error("sign", "", "", e))?;
                *signed = Some((token.clone(), Instant::now()));
                Ok(Some(token))
            }
        }
    }

    fn credential(&self) -> Option<Arc<dyn TokenCredential>> {
        match &self.auth {
            Auth::Token(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The URL of a container, or of a blob in it, with the SAS when there is one.
    fn url(&self, container: &str, name: Option<&str>) -> Result<Url, BlobError> {
        let mut url = Url::parse(&self.endpoint)
            .map_err(|e| io_error("url", container, name.unwrap_or(""), e.to_string()))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| io_error("url", container, "", "not a base URL".into()))?;
            segments.pop_if_empty().push(container);
            if let Some(name) = name {
                segments.extend(name.split('/'));
            }
        }
        if let Some(sas) = self.sas()? {
            url.set_query(Some(&sas));
        }
        Ok(url)
    }

    fn container_client(&self, container: &str) -> Result<BlobContainerClient, BlobError> {
        BlobContainerClient::new(self.url(container, None)?, self.credential(), None)
            .map_err(|e| io_error("client", container, "", e.to_string()))
    }

    fn blob_client(&self, container: &str, name: &str) -> Result<BlobClient, BlobError> {
        BlobClient::new(self.url(container, Some(name))?, self.credential(), None)
            .map_err(|e| io_error("client", container, name, e.to_string()))
    }

    /// Creates the container once per process (an existing one is fine).
    async fn ensure_container(&self, container: &str) -> Result<(), BlobError> {
        if self
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(container)
        {
            return Ok(());
        }
        match self.container_client(container)?.create(None).await {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {}
            Err(e) => return Err(io_error("create container", container, "", e.to_string())),
        }
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_string());
        Ok(())
    }

    async fn upload(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        condition: Condition<'_>,
    ) -> Result<ETag, BlobError> {
        validate_name(container, name)?;
        self.ensure_container(container).await?;
        let options = BlobClientUploadOptions {
            blob_content_type: Some(content_type.to_string()),
            if_none_match: matches!(condition, Condition::Absent).then(|| Etag::from("*")),
            if_match: match condition {
                Condition::Matches(etag) => Some(Etag::from(etag.0.clone())),
                _ => None,
            },
            ..Default::default()
        };
        // Shares the Bytes handle instead of copying it: one copy of a large payload in memory.
        let content: RequestContent<Bytes, azure_core::http::NoFormat> = data.into();
        match self
            .blob_client(container, name)?
            .upload(content, Some(options))
            .await
        {
            Ok(response) => {
                let etag = response.etag.map(|e| e.to_string()).unwrap_or_default();
                Ok(ETag(etag))
            }
            Err(e) => Err(match (e.http_status(), condition) {
                (
                    Some(StatusCode::Conflict | StatusCode::PreconditionFailed),
                    Condition::Absent,
                ) => BlobError::AlreadyExists {
                    container: container.into(),
                    name: name.into(),
                },
                (Some(StatusCode::PreconditionFailed), Condition::Matches(_)) => {
                    BlobError::ConditionNotMet {
                        container: container.into(),
                        name: name.into(),
                    }
                }
                (Some(StatusCode::NotFound), Condition::Matches(_)) => BlobError::NotFound {
                    container: container.into(),
                    name: name.into(),
                },
                _ => io_error("put", container, name, e.to_string()),
            }),
        }
    }
}

/// What a write requires of the blob's current state.
#[derive(Clone, Copy)]
enum Condition<'a> {
    None,
    Absent,
    Matches(&'a ETag),
}

fn io_error(operation: &'static str, container: &str, name: &str, detail: String) -> BlobError {
    BlobError::Io {
        operation,
        container: container.to_string(),
        name: name.to_string(),
        source: std::io::Error::other(detail),
    }
}

fn not_found(container: &str, name: &str) -> BlobError {
    BlobError::NotFound {
        container: container.to_string(),
        name: name.to_string(),
    }
}

fn to_utc(t: Option<azure_core::time::OffsetDateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()))
        .unwrap_or_else(Utc::now)
}

/// Largest buffer reserved up front from a response's `Content-Length`.
const MAX_PRESIZE: u64 = 256 * 1024 * 1024;

/// The body in one buffer sized from `Content-Length`, so that a large payload is held once
/// (no doubling reallocations, no list of chunks beside the result).
async fn collect_sized(
    mut body: azure_core::http::AsyncResponseBody,
    content_length: Option<u64>,
) -> azure_core::Result<Bytes> {
    use futures_util::StreamExt;
    let capacity = content_length.unwrap_or(0).min(MAX_PRESIZE) as usize;
    let mut buffer = bytes::BytesMut::with_capacity(capacity);
    while let Some(chunk) = body.next().await {
        buffer.extend_from_slice(&chunk?);
    }
    Ok(buffer.freeze())
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn get(&self, container: &str, name: &str) -> Result<Blob, BlobError> {
        validate_name(container, name)?;
        let result = match self.blob_client(container, name)?.download(None).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                return Err(not_found(container, name));
            }
            Err(e) => return Err(io_error("get", container, name, e.to_string())),
        };
        let properties = result.properties;
        let data = collect_sized(result.body, properties.content_length)
            .await
            .map_err(|e| io_error("get", container, name, e.to_string()))?;
        Ok(Blob {
            properties: BlobProperties {
                etag: ETag(properties.etag.map(|e| e.to_string()).unwrap_or_default()),
                content_type: properties
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                size: data.len() as u64,
                last_modified: to_utc(properties.last_modified),
            },
            data,
        })
    }

    async fn properties(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<BlobProperties>, BlobError> {
        validate_name(container, name)?;
        match self
            .blob_client(container, name)?
            .get_properties(None)
            .await
        {
            Ok(r) => Ok(Some(BlobProperties {
                etag: ETag(
                    r.etag()
                        .ok()
                        .flatten()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                ),
                content_type: r
                    .content_type()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                size: r.content_length().ok().flatten().unwrap_or(0),
                last_modified: to_utc(r.last_modified().ok().flatten()),
            })),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(io_error("properties", container, name, e.to_string())),
        }
    }

    async fn put(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError> {
        self.upload(container, name, data, content_type, Condition::None)
            .await
    }

    async fn create_if_absent(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError> {
        self.upload(container, name, data, content_type, Condition::Absent)
            .await
    }

    async fn put_if_match(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        etag: &ETag,
    ) -> Result<ETag, BlobError> {
        self.upload(
            container,
            name,
            data,
            content_type,
            Condition::Matches(etag),
        )
        .await
    }

    async fn list(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, BlobError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            maxresults: self.list_page_size,
            ..Default::default()
        };
        let mut pager = self
            .container_client(container)?
            .list_blobs(Some(options))
            .map_err(|e| io_error("list", container, prefix, e.to_string()))?;
        let mut items = Vec::new();
        loop {
            match pager.try_next().await {
                Ok(Some(blob)) => {
                    let properties = blob.properties.unwrap_or_default();
                    items.push(BlobItem {
                        name: blob.name.unwrap_or_default(),
                        size: properties.content_length.unwrap_or(0),
                        last_modified: to_utc(properties.last_modified),
                    });
                }
                Ok(None) => break,
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(Vec::new()),
                Err(e) => return Err(io_error("list", container, prefix, e.to_string())),
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    async fn delete(&self, container: &str, name: &str) -> Result<(), BlobError> {
        validate_name(container, name)?;
        match self.blob_client(container, name)?.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                Err(not_found(container, name))
            }
            Err(e) => Err(io_error("delete", container, name, e.to_string())),
        }
    }
}
