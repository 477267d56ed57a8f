//! Reading a task's text: inline, or a claim-check blob checked against its reference (size,
//! SHA-256, a textual content type) before use. Shared by ProcessDocument and SummarizeChunk.

use crate::poison::sha256_hex;
use crate::task::{ContentRef, TaskInput};
use docflow_blob::{BlobError, BlobStore};

/// Why a task's text cannot be read.
#[derive(Debug)]
pub enum ContentError {
    /// Never readable: poison, with a reason.
    Poison(&'static str, String),
    /// Storage failed: worth retrying.
    Storage(BlobError),
}

/// The text of a task's input.
pub async fn load_text(
    blobs: &dyn BlobStore,
    input: &TaskInput,
    max_bytes: u64,
) -> Result<String, ContentError> {
    let reference = match input {
        TaskInput::Text(text) => return Ok(text.clone()),
        TaskInput::ContentRef(reference) => reference,
    };
    let blob = fetch(blobs, reference).await?;
    // Hashing and decoding megabytes is CPU work: off the async workers.
    let reference = reference.clone();
    let checked = tokio::task::spawn_blocking(move || {
        check_content(
            &reference,
            &blob.data,
            &blob.properties.content_type,
            max_bytes,
        )
    })
    .await
    .map_err(|e| {
        ContentError::Poison(
            "ContentUnreadable",
            format!("checking the content failed: {e}"),
        )
    })?;
    checked.map_err(|(reason, description)| ContentError::Poison(reason, description))
}

/// Checks referenced content against its reference and decodes it as text.
pub fn check_content(
    reference: &ContentRef,
    data: &[u8],
    stored_type: &str,
    max_bytes: u64,
) -> Result<String, (&'static str, String)> {
    check_reference(reference, data, max_bytes)?;
    let name = format!("{}/{}", reference.container, reference.blob);
    let content_type = reference.content_type.as_deref().unwrap_or(stored_type);
    if !is_textual(content_type) {
        return Err((
            "UnsupportedContentType",
            format!("{name} is {content_type}; only text content can be processed"),
        ));
    }
    String::from_utf8(data.to_vec())
        .map_err(|e| ("ContentNotText", format!("{name} is not UTF-8 text: {e}")))
}

/// The bytes of a referenced file (a scan for OCR), checked like text is.
pub async fn load_file(
    blobs: &dyn BlobStore,
    reference: &ContentRef,
    max_bytes: u64,
) -> Result<bytes::Bytes, ContentError> {
    let blob = fetch(blobs, reference).await?;
    let checked = reference.clone();
    let data = blob.data.clone();
    crate::blocking::off_the_reactor(data.len(), move || {
        check_reference(&checked, &data, max_bytes)
    })
    .await
    .map_err(|(reason, description)| ContentError::Poison(reason, description))?;
    Ok(blob.data)
}

/// The blob a reference names: a missing or invalid one is poison, a storage failure is not.
async fn fetch(
    blobs: &dyn BlobStore,
    reference: &ContentRef,
) -> Result<docflow_blob::Blob, ContentError> {
    match blobs.get(&reference.container, &reference.blob).await {
        Ok(blob) => Ok(blob),
        Err(BlobError::NotFound { container, name }) => Err(ContentError::Poison(
            "ContentNotFound",
            format!("referenced content {container}/{name} does not exist"),
        )),
        Err(e @ BlobError::InvalidName { .. }) => {
            Err(ContentError::Poison("InvalidContentRef", e.to_string()))
        }
        Err(e) => Err(ContentError::Storage(e)),
    }
}

/// Checks content against its reference: size limit, size, SHA-256.
fn check_reference(
    reference: &ContentRef,
    data: &[u8],
    max_bytes: u64,
) -> Result<(), (&'static str, String)> {
    let name = format!("{}/{}", reference.container, reference.blob);
    if data.len() as u64 > max_bytes {
        return Err((
            "ContentTooLarge",
            format!("{name} is {} bytes; the limit is {max_bytes}", data.len()),
        ));
    }
    if let Some(expected) = reference.size_bytes
        && expected != data.len() as u64
    {
        return Err((
            "ContentSizeMismatch",
            format!(
                "{name} is {} bytes, the reference says {expected}",
                data.len()
            ),
        ));
    }
    if let Some(expected) = &reference.sha256 {
        let actual = sha256_hex(data);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err((
                "ContentHashMismatch",
                format!("{name} has SHA-256 {actual}, the reference says {expected}"),
            ));
        }
    }
    Ok(())
}

fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/octet-stream"
                | "application/markdown"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ContentRef {
        ContentRef {
            container: "documents".into(),
            blob: "d".into(),
            content_type: None,
            size_bytes: None,
            sha256: None,
        }
    }

    #[test]
    fn content_checks() {
        let data = b"hello";
        assert_eq!(
            check_content(&reference(), data, "text/plain", 100).unwrap(),
            "hello"
        );
        let sized = ContentRef {
            size_bytes: Some(4),
            ..reference()
        };
        assert_eq!(
            check_content(&sized, data, "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentSizeMismatch"
        );
        let hashed = ContentRef {
            sha256: Some("0".repeat(64)),
            ..reference()
        };
        assert_eq!(
            check_content(&hashed, data, "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentHashMismatch"
        );
        let good_hash = ContentRef {
            sha256: Some(sha256_hex(data)),
            ..reference()
        };
        assert!(check_content(&good_hash, data, "text/plain", 100).is_ok());
        assert_eq!(
            check_content(&reference(), data, "application/pdf", 100)
                .unwrap_err()
                .0,
            "UnsupportedContentType"
        );
        assert_eq!(
            check_content(&reference(), &[0xff, 0xfe], "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentNotText"
        );
        assert_eq!(
            check_content(&reference(), data, "text/plain", 2)
                .unwrap_err()
                .0,
            "ContentTooLarge"
        );
    }
}
