//! The HTTP server the Functions host talks to (`docflow serve`).
//!
//! Routes: `GET /` (readiness), `GET /metrics` (the process's metrics in Prometheus text; a
//! function named `metrics` would still be `POST /metrics`) and `POST /{FunctionName}`. Every
//! other reply, error or not, is a JSON object with `Content-Type: application/json`: the host
//! fails an invocation whose reply has no content type and hangs on an empty one (protocol doc
//! §2.1).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::functions::{Invocation, Registry};

mod http_api;
mod spans;
use crate::outcome::{Outcome, error_body};
use crate::telemetry::messaging;
use docflow_custom_handler::protocol::{InvocationRequest, ProtocolError};
use docflow_servicebus::http_body::{BodyError, read_body_up_to};

/// Largest request body accepted: Premium Service Bus messages reach 100 MB, and the host's
/// double encoding adds escapes on top.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024 * 1024;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the handler's listener on the IPv4 loopback, where the host connects.
pub async fn bind(port: u16) -> Result<TcpListener, ServeError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// All routes, with every rejection turned into a JSON reply.
pub fn routes(
    registry: Arc<Registry>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    readiness()
        .or(metrics())
        .unify()
        .or(invoke(registry.clone()))
        .unify()
        .or(forwarded_http(registry))
        .unify()
        .recover(rejection_reply)
        .unify()
}

/// `{method} /{routePrefix}/{route}`: HTTP functions in forwarding mode
/// (`enableForwardingHttpRequest`), where the host sends the original request unchanged.
fn forwarded_http(
    registry: Arc<Registry>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and_then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap| {
                let registry = registry.clone();
                async move {
                    match http_api::find(&registry, method.as_str(), path.as_str()) {
                        Some(found) => Ok((found, query, headers)),
                        None => Err(warp::reject::not_found()),
                    }
                }
            },
        )
        .untuple_one()
        .and(warp::body::stream())
        .then(|found, query: String, headers, body| async move {
            let (status, reply) = http_api::serve(found, &query, &headers, body).await;
            let mut response = match reply.text {
                Some(text) => text_reply(status, text),
                None => json_reply(status, &reply.body),
            };
            for (name, value) in reply.headers {
                if let (Ok(name), Ok(value)) = (
                    warp::http::HeaderName::from_bytes(name.as_bytes()),
                    warp::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        })
}

/// GET /
fn readiness() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .map(|| json_reply(StatusCode::OK, &json!({"status": "ready"})))
}

/// GET /metrics
fn metrics() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).map(|| {
        warp::reply::with_header(
            crate::telemetry::metrics::text(),
            "content-type",
            crate::telemetry::metrics::CONTENT_TYPE,
        )
        .into_response()
    })
}

/// POST /{FunctionName}
fn invoke(
    registry: Arc<Registry>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::param::<String>()
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::header::optional::<String>(
            "x-azure-functions-invocationid",
        ))
        .and(warp::body::stream())
        .then(
            move |function: String, invocation_id: Option<String>, body| {
                let registry = registry.clone();
                async move {
                    let invocation = Invocation {
                        invocation_id,
                        function,
                    };
                    let (status, value) = dispatch(registry, invocation, body).await;
                    json_reply(status, &value)
                }
            },
        )
}

async fn dispatch<S, B>(
    registry: Arc<Registry>,
    invocation: Invocation,
    body: S,
) -> (StatusCode, Value)
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let function = registry.get(&invocation.function);
    let limit = registry.max_request_bytes().unwrap_or(MAX_REQUEST_BYTES);
    // The request is read before the span starts: a span's parent (the message's trace
    // context) must be known when it is created.
    let request = match &function {
        Some(_) => Some(
            read_body_up_to(body, limit)
                .await
                .map_err(protocol_error)
                .and_then(|bytes| InvocationRequest::parse(&bytes)),
        ),
        None => None,
    };
    let source = function.as_ref().and_then(|f| f.service_bus_source());
    let mut enqueued = None;
    let (span, incoming) = match (source, &request) {
        (Some(source), Some(Ok(request))) => {
            let (span, incoming, at) = spans::consumer(&invocation, source, request);
            enqueued = at;
            (span, incoming)
        }
        _ => {
            let header = |request: &InvocationRequest, name: &str| {
                let req = request.http_request("req").ok()?;
                req.header(name).map(str::to_owned)
            };
            let (parent, state) = match &request {
                Some(Ok(r)) => (header(r, "traceparent"), header(r, "tracestate")),
                _ => (None, None),
            };
            spans::server(
                invocation.invocation_id.as_deref().unwrap_or(""),
                &invocation.function,
                &format!("POST /{}", invocation.function),
                parent.as_deref().map(|p| (p, state.as_deref())),
            )
        }
    };
    async move {
        let Some(function) = function else {
            warn!("no such function");
            return Outcome::UnknownFunction(invocation.function.clone()).into_reply();
        };
        let name = function.name();
        let metrics = crate::metrics::global();
        let request = match request.expect("read for a known function") {
            Ok(request) => request,
            Err(e) => {
                warn!(error = %e, "malformed invocation request");
                metrics.invocation(name, "bad_request");
                return Outcome::BadRequest(e).into_reply();
            }
        };
        if let (Some(source), Some(at)) = (source, enqueued) {
            let wait = (chrono::Utc::now() - at).to_std().unwrap_or_default();
            metrics.waited(source, wait);
        }
        let started = std::time::Instant::now();
        // A panic in a function becomes a 500 for that invocation, not a dropped connection.
        let run = tokio::spawn(
            messaging::with_incoming(incoming, async move {
                function.invoke(&invocation, request).await
            })
            .instrument(tracing::Span::current()),
        );
        let (label, (status, value)) = match run.await {
            Ok(outcome) => (outcome.label(), outcome.into_reply()),
            Err(e) => {
                error!(error = %e, "function panicked");
                (
                    "panicked",
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        error_body("transient", "FunctionPanicked", &e.to_string()),
                    ),
                )
            }
        };
        metrics.invocation(name, label);
        if let Some(source) = source {
            metrics.processed(source, started.elapsed(), status.as_u16() >= 400);
        }
        spans::finish(&tracing::Span::current(), status.as_u16() >= 400);
        info!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "invocation finished"
        );
        (status, value)
    }
    .instrument(span)
    .await
}

/// A body that could not be taken, as the protocol error the host is answered with.
pub(crate) fn protocol_error(error: BodyError) -> ProtocolError {
    match error {
        BodyError::TooLarge { limit } => ProtocolError::TooLarge { limit },
        BodyError::Broken(detail) => ProtocolError::NotJson { detail },
    }
}

async fn rejection_reply(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, code, message) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such route; the host calls POST /{FunctionName}".to_string(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use POST /{FunctionName} or GET /".to_string(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("{rejection:?}"),
        )
    };
    Ok(json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
    ))
}

fn text_reply(status: StatusCode, text: String) -> Response {
    let reply = warp::reply::with_header(
        text,
        "content-type",
        crate::functions::http::TEXT_CONTENT_TYPE,
    );
    docflow_servicebus::http_body::close_if_unread(
        warp::reply::with_status(reply, status).into_response(),
    )
}

fn json_reply(status: StatusCode, value: &Value) -> Response {
    docflow_servicebus::http_body::close_if_unread(
        warp::reply::with_status(warp::reply::json(value), status).into_response(),
    )
}

/// Cancels `shutdown` once the local host that started this handler is gone (it named itself
/// in [`docflow_custom_handler::HOST_PID_ENV`]): this process has then been handed to another
/// parent. Without that variable (the Functions host on Azure), nothing is watched.
pub fn stop_with_local_host(shutdown: CancellationToken) {
    let Some(host) = std::env::var(docflow_custom_handler::HOST_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return;
    };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if std::os::unix::process::parent_id() != host {
                tracing::warn!(
                    host,
                    "the local host that started this handler is gone: stopping"
                );
                shutdown.cancel();
                return;
            }
        }
    });
}

/// Serves until `shutdown` is cancelled, then stops accepting and waits for in-flight
/// invocations, at most `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) {
    let addr = listener.local_addr().ok();
    info!(?addr, functions = ?registry.names().collect::<Vec<_>>(), "handler listening");
    let signal = shutdown.clone();
    let server = warp::serve(routes(registry))
        .incoming(listener)
        .graceful(async move { signal.cancelled().await })
        .run();
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        () = server => info!("drained; stopped"),
        () = deadline => warn!("drain timeout reached; stopping with invocations still in flight"),
    }
}
