//! The Service Bus REST data plane on loopback (`servicebus.md` §1–2), plus local-only extras.
//!
//! Azure's seven message operations, with Azure's URLs, headers and status codes:
//! - `POST /{queue|topic}/messages` — send (or batch send with
//!   `Content-Type: application/vnd.microsoft.servicebus.json`);
//! - `POST /{entity}/messages/head?timeout=N` — peek-lock; `DELETE …/head` — receive and delete;
//! - `PUT|DELETE|POST /{entity}/messages/{seq|messageId}/{lockToken}` — unlock, complete, renew.
//!
//! `{entity}` is a queue, `{topic}/subscriptions/{sub}`, or either followed by
//! `/$DeadLetterQueue`. Path segments match case-insensitively.
//!
//! The ATOM management API's reads (`servicebus.md` §2.11), with the Manage right, as Azure
//! answers them: `GET /$Resources/Queues`, `GET /$Resources/Topics`, `GET /{topic}/Subscriptions`
//! (feeds, `$skip`/`$top`), `GET /{queue}`, `GET /{topic}`, `GET /{topic}/Subscriptions/{sub}`
//! (entries with the entity's settings and `CountDetails`; `200` and an empty feed when there is
//! no such entity). Entities come from the topology file: `PUT` and `DELETE` are `405`.
//!
//! **Local only** (no Azure equivalent; `$` cannot begin an Azure entity name), under
//! `/{entity}/$local/…`: `peek`, `counts`, `purge`, `scheduled/{seq}` (cancel), `deferred/{seq}`,
//! `sessions/head`, `sessions/{id}/messages/head`, `sessions/{id}/lock`, `sessions/{id}/state`;
//! on a dead-letter queue `restore/{seq}` (a send's body and headers: the dead letter goes back
//! to its own queue or subscription as that message) and `DELETE {seq}` (remove it);
//! `{Location}/$local/defer` and `{Location}/$local/deadletter`; and `POST /$local/clock?advance=PT65S`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

mod atom;
mod local;
mod reply;
mod route;

use self::reply::{
    Failure, body_failure, error_response, json_response, message_response, read_send, set_header,
};
use self::route::Route;
use super::Broker;
use super::clock::{Millis, to_datetime};
use super::core::{ReceiveMode, Settlement};
use docflow_servicebus::http_body::BodyError;
use docflow_servicebus::message::{BrokerProperties, format_http_date};
use docflow_servicebus::sas::{self, Right};
use docflow_servicebus::topology::parse_iso8601_duration;

/// The batch send content type.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.microsoft.servicebus.json";
/// Content type returned for messages sent without one (as in Azure's examples).
pub const DEFAULT_CONTENT_TYPE: &str = docflow_servicebus::message::REST_DEFAULT_CONTENT_TYPE;
/// Receive long-poll when `timeout` is absent.
pub const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// The furthest one `POST /$local/clock?advance=` moves time.
pub const MAX_CLOCK_ADVANCE: Duration = Duration::from_secs(100 * 366 * 86_400);

/// The REST API as one warp filter.
pub fn routes(broker: Broker) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // Room for a batch of base64 bodies around the largest message.
    let max_body = broker.options().max_message_bytes.saturating_mul(2) + 64 * 1024;
    let serving_since = broker.now();
    docflow_servicebus::http_body::request_parts(max_body)
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body: Result<Bytes, BodyError>| {
                let broker = broker.clone();
                async move {
                    let body = match body {
                        Ok(body) => body,
                        Err(e) => return body_failure(&e),
                    };
                    let request = Request {
                        method,
                        path: path.as_str().to_string(),
                        query: parse_query(&query),
                        headers,
                        body,
                        serving_since,
                    };
                    match handle(&broker, &request).await {
                        Ok(response) => response,
                        Err(e) => e.into_response(&request),
                    }
                }
            },
        )
        .recover(|_rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(error_response(
                StatusCode::BAD_REQUEST,
                "the request could not be read",
            ))
        })
        .unify()
}

/// Serves the REST API on a listener until `shutdown` resolves.
pub async fn serve(
    broker: Broker,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(broker))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

struct Request {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
    /// When this API began serving, by the broker's clock: its entities' creation time (they
    /// come from the topology file it was started with).
    serving_since: Millis,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn host(&self) -> String {
        self.header("host").unwrap_or("127.0.0.1").to_string()
    }

    /// `timeout=N`: whole seconds (the broker cuts long ones to its `max_receive_timeout`);
    /// anything else is a 400.
    fn timeout(&self) -> Result<Duration, Failure> {
        let Some(text) = self.query.get("timeout") else {
            return Ok(DEFAULT_RECEIVE_TIMEOUT);
        };
        let seconds = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: only overflow can fail, and an overflowing value is just long.
            text.parse::<u64>().unwrap_or(u64::MAX)
        } else {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("timeout must be a whole number of seconds, not {text:?}"),
            ));
        };
        Ok(Duration::from_secs(seconds))
    }
}

/// Query pairs with their names lowercased (Service Bus matches them case-insensitively).
fn parse_query(raw: &str) -> HashMap<String, String> {
    docflow_servicebus::http_url::parse_query(raw)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

fn authorize(
    broker: &Broker,
    request: &Request,
    resource_path: &str,
    right: Right,
) -> Result<(), Failure> {
    let target = format!(
        "{}/{}",
        request.host(),
        resource_path.trim_start_matches('/')
    );
    let now = (broker.now() / 1000).max(0) as u64;
    sas::validate(
        request.header("authorization"),
        &target,
        right,
        &broker.options().sas_rules,
        now,
    )
    .map_err(|e| Failure::new(StatusCode::UNAUTHORIZED, e.to_string()))
}

async fn handle(broker: &Broker, request: &Request) -> Result<Response, Failure> {
    let route = route::parse(&request.path)?;
    let resource = request.path.clone();
    match route {
        Route::Clock => {
            authorize(broker, request, &resource, Right::Manage)?;
            if request.method == Method::POST {
                let by = request
                    .query
                    .get("advance")
                    .and_then(|a| parse_iso8601_duration(a))
                    .filter(|by| *by <= MAX_CLOCK_ADVANCE)
                    .ok_or_else(|| {
                        Failure::new(
                            StatusCode::BAD_REQUEST,
                            "advance must be an ISO 8601 duration such as PT65S, at most 100 years",
                        )
                    })?;
                broker.advance_clock(by);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"now": format_http_date(to_datetime(broker.now()))}),
            ))
        }
        Route::Send { entity } => {
            require(&request.method, &[Method::POST])?;
            authorize(broker, request, &resource, Right::Send)?;
            let messages = read_send(broker, request)?;
            let sequence_numbers = broker.send(&entity, messages).await?;
            let mut response =
                warp::reply::with_status(warp::reply(), StatusCode::CREATED).into_response();
            if let Some(Some(seq)) = sequence_numbers.first() {
                response
                    .headers_mut()
                    .insert("x-local-sequence-number", HeaderValue::from(*seq));
            }
            Ok(response)
        }
        Route::Receive { entity, dlq } => {
            authorize(broker, request, &resource, Right::Listen)?;
            let mode = match request.method {
                Method::POST => ReceiveMode::PeekLock,
                Method::DELETE => ReceiveMode::ReceiveAndDelete,
                _ => return Err(method_not_allowed()),
            };
            let path = if dlq {
                format!("{entity}/$DeadLetterQueue")
            } else {
                entity.clone()
            };
            match broker
                .receive(&entity, dlq, mode, request.timeout()?)
                .await?
            {
                Some(message) => Ok(message_response(request, &path, &message, mode)),
                None => Ok(
                    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response(),
                ),
            }
        }
        Route::Lock {
            entity,
            dlq,
            id,
            token,
            local,
        } => {
            authorize(broker, request, &resource, Right::Listen)?;
            match (local.as_deref(), &request.method) {
                (None, &Method::PUT) => {
                    broker
                        .settle(&entity, dlq, &token, Some(&id), Settlement::Abandon)
                        .await?
                }
                (None, &Method::DELETE) => {
                    broker
                        .settle(&entity, dlq, &token, Some(&id), Settlement::Complete)
                        .await?
                }
                (None, &Method::POST) => {
                    let until = broker
                        .renew_message_lock(&entity, dlq, &token, Some(&id))
                        .await?;
                    let props = BrokerProperties {
                        locked_until_utc: Some(format_http_date(to_datetime(until))),
                        ..Default::default()
                    };
                    let mut response = warp::reply().into_response();
                    set_header(
                        &mut response,
                        "brokerproperties",
                        &serde_json::to_string(&props).unwrap_or_default(),
                    );
                    return Ok(response);
                }
                (Some("defer"), &Method::POST) => {
                    broker
                        .settle(&entity, dlq, &token, Some(&id), Settlement::Defer)
                        .await?
                }
                (Some("deadletter"), &Method::POST) => {
                    #[derive(Deserialize, Default)]
                    #[serde(rename_all = "PascalCase")]
                    struct Reason {
                        dead_letter_reason: Option<String>,
                        dead_letter_error_description: Option<String>,
                    }
                    let reason: Reason = if request.body.is_empty() {
                        Reason::default()
                    } else {
                        serde_json::from_slice(&request.body).map_err(|e| {
                            Failure::new(
                                StatusCode::BAD_REQUEST,
                                format!("invalid dead-letter body: {e}"),
                            )
                        })?
                    };
                    let settlement = Settlement::DeadLetter {
                        reason: reason.dead_letter_reason.unwrap_or_default(),
                        description: reason.dead_letter_error_description.unwrap_or_default(),
                    };
                    broker
                        .settle(&entity, dlq, &token, Some(&id), settlement)
                        .await?;
                }
                _ => return Err(method_not_allowed()),
            }
            Ok(warp::reply().into_response())
        }
        Route::Local { entity, dlq, rest } => {
            authorize(broker, request, &resource, Right::Listen)?;
            local::handle(broker, request, &entity, dlq, &rest).await
        }
        Route::Management { segments } => {
            if request.method != Method::GET {
                return Err(Failure::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the management API is read-only here: entities come from the broker's topology file, so edit it to create, change or delete them",
                ));
            }
            authorize(broker, request, &resource, Right::Manage)?;
            atom::handle(broker, request, &segments).await
        }
    }
}

fn require(method: &Method, allowed: &[Method]) -> Result<(), Failure> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(method_not_allowed())
    }
}

fn method_not_allowed() -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "the HTTP method is not supported on this path",
    )
}
