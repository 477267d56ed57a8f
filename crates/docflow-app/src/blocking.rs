//! CPU work off the async workers: hashing and decoding megabytes on a reactor thread stalls
//! every other invocation on it.

/// Runs CPU work on a blocking thread when `size` says it is large (hashing megabytes on an
/// async worker stalls every other invocation on it); small inputs run in place.
pub async fn off_the_reactor<T, F>(size: usize, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size < 64 * 1024 {
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        // Blocking tasks are never cancelled: only a panic of `work` gets here; pass it on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The SHA-256 (lower-case hex) of `bytes`, hashed off the reactor when they are large.
pub async fn sha256_hex(bytes: bytes::Bytes) -> String {
    off_the_reactor(bytes.len(), move || crate::poison::sha256_hex(&bytes)).await
}
