//! Request bodies for every server docflow runs (the handler, the broker's REST API, the local
//! host's HTTP triggers): read up to a limit, so that no client can make a process buffer
//! without bound, and the `413` that answers a longer one.

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// A request body that could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the server accepts (answer `413`).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body broke off or could not be read (answer `400`).
    #[error("the request body could not be read: {0}")]
    Broken(String),
}

/// Every part of a request, for servers that route by hand (the broker's REST API, the local
/// host's HTTP triggers): method, path, raw query (empty when absent), headers, and the body
/// read up to `max_body_bytes` (reading stops as soon as a body shows to be longer).
pub fn request_parts(
    max_body_bytes: usize,
) -> impl Filter<
    Extract = (
        warp::http::Method,
        warp::path::FullPath,
        String,
        warp::http::HeaderMap,
        Result<bytes::Bytes, BodyError>,
    ),
    Error = Rejection,
> + Clone {
    let body = warp::body::stream().then(move |body| async move {
        match read_body_up_to(body, max_body_bytes).await {
            Ok(bytes) => Ok(bytes::Bytes::from(bytes)),
            Err(e) => Err(e),
        }
    });
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(body)
}

/// Reads a body of at most `limit` bytes, refusing a longer one as soon as it shows.
pub async fn read_body_up_to<S, B>(body: S, limit: usize) -> Result<Vec<u8>, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|e| BodyError::Broken(format!("reading the request body failed: {e}")))?;
        if bytes.len() + chunk.remaining() > limit {
            drain(body, MAX_DRAIN_BYTES.saturating_sub(chunk.remaining())).await;
            return Err(BodyError::TooLarge { limit });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes)
}

/// Most bytes of an over-long body read and dropped after the limit, so that a client still
/// sending gets to read its `413` (past this, the connection is closed under it).
const MAX_DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// Reads and drops up to `budget` more bytes of a refused body (memory stays bounded).
async fn drain<S, B>(mut body: std::pin::Pin<&mut S>, budget: usize)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut left = budget;
    while left > 0 {
        match body.next().await {
            Some(Ok(chunk)) => left = left.saturating_sub(chunk.remaining()),
            _ => return,
        }
    }
}

/// A `413` is sent before the rest of the body was read: `Connection: close` tells the client
/// not to reuse a connection with request bytes still in flight.
pub fn close_if_unread(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            warp::http::header::CONNECTION,
            warp::http::HeaderValue::from_static("close"),
        );
    }
    response
}
