//! A [`BlobStore`] in a folder: `{root}/{container}/{name}` holds each blob's bytes, so results
//! can be read with any tool.
//!
//! - **Crash safety.** Every write goes to a temporary file that is fsynced and then renamed over
//!   the target, and the directory is fsynced: a blob is always either its old or its new bytes.
//! - **Concurrency.** Each blob has a lock file; writers hold it exclusively and readers shared
//!   (`flock`), across threads and processes alike, so the conditional writes are atomic.
//! - **ETags.** Each write records a fresh ETag and the content type in a sidecar file under
//!   `{root}/.docflow-meta/`, written *before* the data is renamed into place. A crash between
//!   the two leaves a new ETag on the old bytes, which is harmless: a writer holding the
//!   pre-crash ETag is refused, and one that read after the crash saw the bytes the tag names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Blob, BlobError, BlobItem, BlobProperties, BlobStore, ETag, validate_name};

const META_DIR: &str = ".docflow-meta";
const LOCK_DIR: &str = ".docflow-locks";
const TMP_DIR: &str = ".docflow-tmp";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Blob storage in a local folder.
#[derive(Debug, Clone)]
pub struct LocalFolderStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    etag: String,
    content_type: String,
}

/// What a write requires of the blob's current state.
#[derive(Clone, Copy)]
enum Condition<'a> {
    None,
    Absent,
    Matches(&'a ETag),
}

impl LocalFolderStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder this store writes to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_path(&self, container: &str, name: &str) -> PathBuf {
        self.root.join(container).join(name)
    }

    fn meta_path(&self, container: &str, name: &str) -> PathBuf {
        self.root
            .join(META_DIR)
            .join(container)
            .join(format!("{name}.json"))
    }

    /// Takes the blob's lock: exclusive for writers, shared for readers.
    ///
    /// Readers do not create lock files: a blob without one was never written through a store,
    /// so there is no writer to wait for (`None`).
    fn lock(&self, container: &str, name: &str, exclusive: bool) -> io::Result<Option<File>> {
        let path = self
            .root
            .join(LOCK_DIR)
            .join(container)
            .join(format!("{name}.lock"));
        if !exclusive {
            return match File::open(&path) {
                Ok(file) => file.lock_shared().map(|()| Some(file)),
                Err(e) if is_missing(&e) => Ok(None),
                Err(e) => Err(e),
            };
        }
        fs::create_dir_all(path.parent().expect("lock path has a parent"))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.lock()?;
        Ok(Some(file))
    }

    fn read_properties(&self, container: &str, name: &str) -> io::Result<Option<BlobProperties>> {
        let metadata = match fs::metadata(self.data_path(container, name)) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let sidecar = match fs::read(self.meta_path(container, name)) {
            Ok(bytes) => serde_json::from_slice::<Sidecar>(&bytes).ok(),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(e),
        };
        // A blob copied into the folder by hand has no sidecar: derive a stable tag.
        let sidecar = sidecar.unwrap_or_else(|| Sidecar {
            etag: format!("\"0x{:X}{:X}\"", metadata.len(), mtime_nanos(&metadata)),
            content_type: DEFAULT_CONTENT_TYPE.into(),
        });
        Ok(Some(BlobProperties {
            etag: ETag(sidecar.etag),
            content_type: sidecar.content_type,
            size: metadata.len(),
            last_modified: metadata
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now()),
        }))
    }

    fn get_sync(&self, container: &str, name: &str) -> Result<Blob, BlobError> {
        let io_err = io_error("get", container, name);
        let _lock = self.lock(container, name, false).map_err(&io_err)?;
        let properties = self
            .read_properties(container, name)
            .map_err(&io_err)?
            .ok_or_else(|| not_found(container, name))?;
        let data = fs::read(self.data_path(container, name)).map_err(&io_err)?;
        let size = data.len() as u64;
        Ok(Blob {
            data: Bytes::from(data),
            properties: BlobProperties { size, ..properties },
        })
    }

    fn write_sync(
        &self,
        container: &str,
        name: &str,
        data: &[u8],
        content_type: &str,
        condition: Condition<'_>,
    ) -> Result<ETag, BlobError> {
        let io_err = io_error("put", container, name);
        let _lock = self.lock(container, name, true).map_err(&io_err)?;
        let current = self.read_properties(container, name).map_err(&io_err)?;
        match (condition, &current) {
            (Condition::Absent, Some(_)) => {
                return Err(BlobError::AlreadyExists {
                    container: container.into(),
                    name: name.into(),
                });
            }
            (Condition::Matches(_), None) => return Err(not_found(container, name)),
            (Condition::Matches(expected), Some(p)) if &p.etag != expected => {
                return Err(BlobError::ConditionNotMet {
                    container: container.into(),
                    name: name.into(),
                });
            }
            _ => {}
        }
        let etag = ETag(format!("\"0x{}\"", uuid::Uuid::new_v4().simple()).to_uppercase());
        let sidecar = serde_json::to_vec(&Sidecar {
            etag: etag.0.clone(),
            content_type: content_type.to_string(),
        })
        .expect("a sidecar serializes");
        let tmp = self.root.join(TMP_DIR);
        atomic_write(&tmp, &self.meta_path(container, name), &sidecar).map_err(&io_err)?;
        atomic_write(&tmp, &self.data_path(container, name), data).map_err(|e| {
            if is_path_conflict(&e) {
                BlobError::InvalidName {
                    container: container.into(),
                    name: name.into(),
                    reason: "a local folder cannot hold both a blob and a blob under it as a folder",
                }
            } else {
                io_err(e)
            }
        })?;
        Ok(etag)
    }

    fn delete_sync(&self, container: &str, name: &str) -> Result<(), BlobError> {
        let io_err = io_error("delete", container, name);
        let _lock = self.lock(container, name, true).map_err(&io_err)?;
        match fs::remove_file(self.data_path(container, name)) {
            Ok(()) => {}
            Err(e) if is_missing(&e) => return Err(not_found(container, name)),
            Err(e) => return Err(io_err(e)),
        }
        match fs::remove_file(self.meta_path(container, name)) {
            Err(e) if !is_missing(&e) => return Err(io_err(e)),
            _ => {}
        }
        sync_dir(&self.data_path(container, name)).map_err(&io_err)
    }

    fn list_sync(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, BlobError> {
        let base = self.root.join(container);
        let mut items = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(io_error("list", container, prefix)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_error("list", container, prefix))?;
                let path = entry.path();
                let metadata = entry
                    .metadata()
                    .map_err(io_error("list", container, prefix))?;
                if metadata.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(name) = blob_name(&base, &path) else {
                    continue;
                };
                if name.starts_with(prefix) {
                    items.push(BlobItem {
                        name,
                        size: metadata.len(),
                        last_modified: metadata
                            .modified()
                            .map(DateTime::<Utc>::from)
                            .unwrap_or_else(|_| Utc::now()),
                    });
                }
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, BlobError>
    where
        T: Send + 'static,
        F: FnOnce(LocalFolderStore) -> Result<T, BlobError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| BlobError::Io {
                operation: "spawn",
                container: String::new(),
                name: String::new(),
                source: io::Error::other(e.to_string()),
            })?
    }
}

#[async_trait]
impl BlobStore for LocalFolderStore {
    async fn get(&self, container: &str, name: &str) -> Result<Blob, BlobError> {
        validate_name(container, name)?;
        let (c, n) = (container.to_string(), name.to_string());
        self.blocking(move |s| s.get_sync(&c, &n)).await
    }

    async fn properties(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<BlobProperties>, BlobError> {
        validate_name(container, name)?;
        let (c, n) = (container.to_string(), name.to_string());
        self.blocking(move |s| {
            let _lock = s
                .lock(&c, &n, false)
                .map_err(io_error("properties", &c, &n))?;
            s.read_properties(&c, &n)
                .map_err(io_error("properties", &c, &n))
        })
        .await
    }

    async fn put(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError> {
        self.write(container, name, data, content_type, None).await
    }

    async fn create_if_absent(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<ETag, BlobError> {
        self.write(container, name, data, content_type, Some(None))
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
        self.write(
            container,
            name,
            data,
            content_type,
            Some(Some(etag.clone())),
        )
        .await
    }

    async fn list(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, BlobError> {
        validate_name(container, "x")?;
        let (c, p) = (container.to_string(), prefix.to_string());
        self.blocking(move |s| s.list_sync(&c, &p)).await
    }

    async fn delete(&self, container: &str, name: &str) -> Result<(), BlobError> {
        validate_name(container, name)?;
        let (c, n) = (container.to_string(), name.to_string());
        self.blocking(move |s| s.delete_sync(&c, &n)).await
    }
}

impl LocalFolderStore {
    /// `condition`: `None` unconditional, `Some(None)` must be absent, `Some(Some(e))` must match.
    async fn write(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        condition: Option<Option<ETag>>,
    ) -> Result<ETag, BlobError> {
        validate_name(container, name)?;
        let (c, n, t) = (
            container.to_string(),
            name.to_string(),
            content_type.to_string(),
        );
        self.blocking(move |s| {
            let condition = match &condition {
                None => Condition::None,
                Some(None) => Condition::Absent,
                Some(Some(etag)) => Condition::Matches(etag),
            };
            s.write_sync(&c, &n, &data, &t, condition)
        })
        .await
    }
}

/// Writes `data` to `target` through a fsynced temporary file and a rename.
fn atomic_write(tmp_dir: &Path, target: &Path, data: &[u8]) -> io::Result<()> {
    fs::create_dir_all(tmp_dir)?;
    let parent = target.parent().expect("blob paths have a parent");
    fs::create_dir_all(parent)?;
    let tmp = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, target)?;
        sync_dir(target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or removal in the directory of `path` durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn blob_name(base: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(base).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

fn mtime_nanos(metadata: &fs::Metadata) -> u128 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn is_path_conflict(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory | io::ErrorKind::AlreadyExists
    )
}

fn not_found(container: &str, name: &str) -> BlobError {
    BlobError::NotFound {
        container: container.into(),
        name: name.into(),
    }
}

fn io_error<'a>(
    operation: &'static str,
    container: &'a str,
    name: &'a str,
) -> impl Fn(io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        operation,
        container: container.into(),
        name: name.into(),
        source,
    }
}

#[cfg(test)]
mod tests;
