//! Forwarding mode for HTTP functions: route matching under the route prefix, the body read
//! with a bound, the invocation span with the host's invocation id.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use tracing::{Instrument, info};
use warp::http::{HeaderMap, StatusCode};

use crate::functions::Registry;
use crate::functions::http::{HttpCall, HttpFunction, HttpReply};
use crate::pipeline::submission::HttpInput;
use docflow_custom_handler::protocol::match_route;
use docflow_servicebus::http_url::parse_query;

/// A request matched to a function, with its route parameters.
pub struct Found {
    function: Arc<dyn HttpFunction>,
    method: String,
    params: Vec<(String, String)>,
}

/// The HTTP function serving `method path`, if any. Paths are `/{prefix}/{route}`; the prefix
/// is the first segment (host.json's `routePrefix`, `api` by default).
pub fn find(registry: &Registry, method: &str, path: &str) -> Option<Found> {
    let below = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, rest)| rest)?;
    registry.http_functions().iter().find_map(|f| {
        if !f.methods().iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return None;
        }
        match_route(f.route(), below).map(|params| Found {
            function: f.clone(),
            method: method.to_ascii_uppercase(),
            params,
        })
    })
}

/// Reads the body and answers.
pub async fn serve<S, B>(
    found: Found,
    query: &str,
    headers: &HeaderMap,
    body: S,
) -> (StatusCode, HttpReply)
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let invocation_id = headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (span, incoming) = super::spans::server(
        &invocation_id,
        found.function.name(),
        &format!("{} /{}", found.method, found.function.route()),
        header("traceparent").map(|parent| (parent, header("tracestate"))),
    );
    let method = found.method.clone();
    async move {
        let started = std::time::Instant::now();
        let limit = found.function.max_body_bytes();
        let reply = match docflow_servicebus::http_body::read_body_up_to(body, limit).await {
            Ok(bytes) => {
                let call = HttpCall {
                    method: method.clone(),
                    params: found.params,
                    input: HttpInput {
                        query: parse_query(query),
                        headers: headers
                            .iter()
                            .filter_map(|(k, v)| {
                                v.to_str()
                                    .ok()
                                    .map(|v| (k.as_str().to_string(), v.to_string()))
                            })
                            .collect(),
                        body: Bytes::from(bytes),
                    },
                };
                crate::telemetry::messaging::with_incoming(incoming, found.function.handle(call))
                    .await
            }
            Err(e @ docflow_servicebus::http_body::BodyError::TooLarge { .. }) => HttpReply::error(
                413,
                "PayloadTooLarge",
                &format!("{e} (DOCFLOW_MAX_SUBMISSION_BYTES)"),
                Some("body"),
            ),
            Err(e) => HttpReply::error(400, "UnreadableBody", &e.to_string(), Some("body")),
        };
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let metrics = crate::metrics::global();
        metrics.invocation(found.function.name(), http_outcome(status));
        metrics.http_request(
            &method,
            found.function.route(),
            status.as_u16(),
            started.elapsed(),
        );
        super::spans::finish(&tracing::Span::current(), status.is_server_error());
        info!(
            status = reply.status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "invocation finished"
        );
        (status, reply)
    }
    .instrument(span)
    .await
}

/// The `outcome` label of an HTTP function's invocation: `done` (2xx, 3xx), `client_error`
/// (4xx: the caller's), `server_error` (5xx).
fn http_outcome(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "done"
    }
}
