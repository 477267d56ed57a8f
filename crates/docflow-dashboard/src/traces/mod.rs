//! The spans of `docflow dev`'s handler, received on `POST /v1/traces` (OTLP/JSON) and kept in
//! memory by trace, so that a document's page can draw its trace as a waterfall without any
//! collector. Each body is also passed on, unchanged, to the user's own OTLP endpoint.
//!
//! - [`otlp`]: the wire: `ExportTraceServiceRequest` in the OTLP/JSON mapping, parsed into
//!   [`Span`]s in one typed pass.
//! - [`forward`]: the best-effort copy to the user's endpoint.
//! - [`TraceStore`]: the spans by trace, bounded.
//! - [`ingest`]: the endpoint's handler.

pub mod forward;
pub mod otlp;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use warp::http::StatusCode;
use warp::reply::Response;

pub use self::otlp::{
    AttrValue, Link, Span, SpanEvent, SpanId, SpanKind, StatusCode as SpanStatus, TraceId,
};
use crate::Dashboard;
use crate::guard::ApiError;

/// Spans kept at most: a few thousand documents' traces, tens of megabytes.
pub const MAX_SPANS: usize = 100_000;
/// Largest body accepted: the SDK's batches (512 spans by default) stay well below.
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The spans received, by trace; the least recently updated traces go first when full.
#[derive(Debug)]
pub struct TraceStore {
    max_spans: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<TraceId, Trace>,
    /// Traces by their last update (a sequence number), oldest first.
    order: BTreeMap<u64, TraceId>,
    next: u64,
    spans: usize,
}

#[derive(Debug, Default)]
struct Trace {
    spans: Vec<Span>,
    /// Its key in `order`.
    seq: u64,
    /// Spans received for it so far (a page re-renders when it changes).
    received: u64,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new(MAX_SPANS)
    }
}

impl TraceStore {
    /// A store of at most `max_spans` spans.
    pub fn new(max_spans: usize) -> Self {
        Self {
            max_spans: max_spans.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Adds spans (a span received again replaces its earlier copy), then evicts the least
    /// recently updated traces beyond the bound.
    pub fn insert(&self, spans: Vec<Span>) {
        let mut inner = self
            .inner
            .lock()
            .expect("the trace store's lock is not poisoned");
        let inner = &mut *inner;
        for span in spans {
            let seq = inner.next;
            inner.next += 1;
            let trace = inner.traces.entry(span.trace_id).or_default();
            if trace.received > 0 {
                inner.order.remove(&trace.seq);
            }
            trace.seq = seq;
            trace.received += 1;
            inner.order.insert(seq, span.trace_id);
            match trace.spans.iter_mut().find(|s| s.span_id == span.span_id) {
                Some(old) => *old = span,
                None => {
                    trace.spans.push(span);
                    inner.spans += 1;
                }
            }
        }
        while inner.spans > self.max_spans {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(trace) = inner.traces.remove(&oldest) {
                inner.spans -= trace.spans.len();
            }
        }
    }

    /// The spans of a trace, as received.
    pub fn trace(&self, id: TraceId) -> Vec<Span> {
        let inner = self
            .inner
            .lock()
            .expect("the trace store's lock is not poisoned");
        inner
            .traces
            .get(&id)
            .map(|t| t.spans.clone())
            .unwrap_or_default()
    }

    /// How many spans of a trace were received so far: it changes when the trace does.
    pub fn received(&self, id: TraceId) -> u64 {
        let inner = self
            .inner
            .lock()
            .expect("the trace store's lock is not poisoned");
        inner.traces.get(&id).map_or(0, |t| t.received)
    }

    /// Spans held.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .expect("the trace store's lock is not poisoned")
            .spans
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `POST /v1/traces`: an OTLP/JSON export from a loopback peer. Passed on to the user's
/// endpoint as received, parsed, kept; answered with an empty `ExportTraceServiceResponse`.
pub fn ingest(
    d: Arc<Dashboard>,
    peer: Option<SocketAddr>,
    host: Option<String>,
    content_type: Option<String>,
    encoding: Option<String>,
    body: bytes::Bytes,
) -> Response {
    let (host, content_type, encoding) = (
        host.as_deref(),
        content_type.as_deref(),
        encoding.as_deref(),
    );
    if let Err(e) = crate::guard::check_loopback(peer, host) {
        return e.into_response();
    }
    let json = content_type.is_none_or(|t| t.trim_start().starts_with("application/json"));
    if !json {
        return unsupported(format!(
            "traces are accepted as OTLP/JSON only (content-type application/json, not {}): set OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json",
            content_type.unwrap_or_default()
        ));
    }
    if encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
        return unsupported(format!(
            "traces are accepted uncompressed only (content-encoding {})",
            encoding.unwrap_or_default()
        ));
    }
    if let Some(forward) = d.forward.get() {
        forward.send(body.clone());
    }
    match otlp::parse(&body) {
        Ok(spans) => {
            d.traces.insert(spans);
            warp::reply::Reply::into_response(warp::reply::with_header(
                "{}",
                "content-type",
                "application/json",
            ))
        }
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

fn unsupported(message: String) -> Response {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        message,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u128, id: u64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            parent_span_id: None,
            name: format!("span {id}"),
            kind: SpanKind::Internal,
            start_time_unix_nano: id,
            end_time_unix_nano: id + 1,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: Default::default(),
        }
    }

    #[test]
    fn the_least_recently_updated_traces_are_evicted_beyond_the_bound() {
        let store = TraceStore::new(4);
        store.insert(vec![span(1, 1), span(1, 2)]);
        store.insert(vec![span(2, 3), span(2, 4)]);
        store.insert(vec![span(1, 5)]);
        assert_eq!(store.len(), 3, "trace 2 went: trace 1 was updated after it");
        assert!(store.trace(TraceId(2)).is_empty());
        assert_eq!(store.trace(TraceId(1)).len(), 3);
        store.insert(vec![span(1, 5)]);
        assert_eq!(store.len(), 3, "a span received again replaces its copy");
        assert_eq!(store.received(TraceId(1)), 4);
    }
}
