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
//! **Local only** (no Azure equivalent; `$` cannot begin an Azure entity name), under
//! `/{entity}/$local/…`: `peek`, `counts`, `purge`, `scheduled/{seq}` (cancel), `deferred/{seq}`,
//! `sessions/head`, `sessions/{id}/messages/head`, `sessions/{id}/lock`, `sessions/{id}/state`;
//! `{Location}/$local/defer` and `{Location}/$local/deadletter`; and `POST /$local/clock?advance=PT65S`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::Broker;
use super::clock::to_datetime;
use super::core::{BrokerError, ReceiveMode, Settlement};
use crate::http_body::BodyError;
use crate::servicebus::message::{
    BrokerProperties, Message, PropertyValue, ReceivedMessage, format_http_date,
    is_user_property_header,
};
use crate::servicebus::sas::{self, Right};
use crate::topology::parse_iso8601_duration;

/// The batch send content type.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.microsoft.servicebus.json";
/// Content type returned for messages sent without one (as in Azure's examples).
pub const DEFAULT_CONTENT_TYPE: &str = crate::servicebus::message::REST_DEFAULT_CONTENT_TYPE;
/// Receive long-poll when `timeout` is absent.
pub const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// The furthest one `POST /$local/clock?advance=` moves time.
pub const MAX_CLOCK_ADVANCE: Duration = Duration::from_secs(100 * 366 * 86_400);

/// The REST API as one warp filter.
pub fn routes(broker: Broker) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // Room for a batch of base64 bodies around the largest message.
    let max_body = broker.options().max_message_bytes.saturating_mul(2) + 64 * 1024;
    crate::http_body::request_parts(max_body)
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

/// An error reply: status plus Azure's `<Error>` detail.
struct Failure {
    status: StatusCode,
    detail: String,
}

impl Failure {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    fn into_response(self, request: &Request) -> Response {
        let detail = format!(
            "{}. TrackingId:{}, SystemTracker:{}{}, Timestamp:{}",
            self.detail.trim_end_matches('.'),
            uuid::Uuid::new_v4(),
            request.host(),
            request.path,
            format_http_date(chrono::Utc::now())
        );
        error_response(self.status, &detail)
    }
}

/// `413` for a body over the limit (Azure: `MessageSizeExceeded`-style detail), `400` for one
/// that broke off.
fn body_failure(error: &BodyError) -> Response {
    let status = match error {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Broken(_) => StatusCode::BAD_REQUEST,
    };
    crate::http_body::close_if_unread(error_response(status, &error.to_string()))
}

fn error_response(status: StatusCode, detail: &str) -> Response {
    let body = format!(
        "<Error><Code>{}</Code><Detail>{}</Detail></Error>",
        status.as_u16(),
        xml_escape(detail)
    );
    let mut response = warp::reply::with_status(body, status).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl From<BrokerError> for Failure {
    fn from(e: BrokerError) -> Self {
        let status = match &e {
            BrokerError::EntityNotFound(_) => StatusCode::GONE,
            BrokerError::LockLost
            | BrokerError::MessageNotFound(_)
            | BrokerError::SessionLockLost => StatusCode::NOT_FOUND,
            BrokerError::SessionRequired => StatusCode::METHOD_NOT_ALLOWED,
            BrokerError::SessionIdMissing
            | BrokerError::NotSessionful(_)
            | BrokerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BrokerError::SessionLocked(_) => StatusCode::CONFLICT,
            BrokerError::TooLarge { .. } => StatusCode::FORBIDDEN,
            BrokerError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure::new(status, e.to_string())
    }
}

fn parse_query(raw: &str) -> HashMap<String, String> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_string()
            };
            (decode(k).to_ascii_lowercase(), decode(v))
        })
        .collect()
}

/// What the path asks for.
enum Route {
    Clock,
    Send {
        entity: String,
    },
    Receive {
        entity: String,
        dlq: bool,
    },
    Lock {
        entity: String,
        dlq: bool,
        id: String,
        token: String,
        local: Option<String>,
    },
    Local {
        entity: String,
        dlq: bool,
        rest: Vec<String>,
    },
}

fn route(path: &str) -> Result<Route, Failure> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .to_string()
        })
        .collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let not_found = || {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("no Service Bus operation at {path}"),
        )
    };
    if lower.first().map(String::as_str) == Some("$local") {
        return if lower.get(1).map(String::as_str) == Some("clock") && lower.len() == 2 {
            Ok(Route::Clock)
        } else {
            Err(not_found())
        };
    }
    let entity_of = |end: usize| -> (String, bool) { super::split_dlq(&segments[..end].join("/")) };
    if let Some(local) = lower.iter().position(|s| s == "$local") {
        let rest: Vec<String> = segments[local + 1..].to_vec();
        // {Location}/$local/defer|deadletter: …/messages/{id}/{token}/$local/…
        if local >= 4 && lower[local - 3] == "messages" {
            let (entity, dlq) = entity_of(local - 3);
            return Ok(Route::Lock {
                entity,
                dlq,
                id: segments[local - 2].clone(),
                token: segments[local - 1].clone(),
                local: Some(rest.join("/").to_ascii_lowercase()),
            });
        }
        if local == 0 {
            return Err(not_found());
        }
        let (entity, dlq) = entity_of(local);
        return Ok(Route::Local { entity, dlq, rest });
    }
    let m = lower
        .iter()
        .rposition(|s| s == "messages")
        .ok_or_else(not_found)?;
    if m == 0 {
        return Err(not_found());
    }
    let (entity, dlq) = entity_of(m);
    match &lower[m + 1..] {
        [] if !dlq => Ok(Route::Send { entity }),
        [head] if head == "head" => Ok(Route::Receive { entity, dlq }),
        [_, _] => Ok(Route::Lock {
            entity,
            dlq,
            id: segments[m + 1].clone(),
            token: segments[m + 2].clone(),
            local: None,
        }),
        [] => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "a dead-letter queue only receives messages through dead-lettering",
        )),
        _ => Err(not_found()),
    }
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
    let route = route(&request.path)?;
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
            local(broker, request, &entity, dlq, &rest).await
        }
    }
}

async fn local(
    broker: &Broker,
    request: &Request,
    entity: &str,
    dlq: bool,
    rest: &[String],
) -> Result<Response, Failure> {
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let seq_of = |s: &str| {
        s.parse::<i64>().map_err(|_| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "sequence number must be an integer",
            )
        })
    };
    let session_token = || {
        request
            .header("x-local-session-lock-token")
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "x-local-session-lock-token header is required",
                )
            })
    };
    let method = &request.method;
    match (method, lower.as_slice()) {
        (&Method::GET, ["peek"]) => {
            let from = request
                .query
                .get("from")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let max = request
                .query
                .get("max")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100usize)
                .min(10_000);
            let messages = broker.browse(entity, dlq, from, max).await?;
            let items: Vec<serde_json::Value> = messages.iter().map(browse_item).collect();
            Ok(json_response(
                StatusCode::OK,
                &serde_json::Value::Array(items),
            ))
        }
        (&Method::GET, ["counts"]) => Ok(json_response(
            StatusCode::OK,
            &json!(broker.counts(entity).await?),
        )),
        (&Method::POST | &Method::DELETE, ["purge"]) => {
            let purged = broker.purge(entity, dlq).await?;
            Ok(json_response(StatusCode::OK, &json!({"purged": purged})))
        }
        (&Method::DELETE, ["scheduled", seq]) => {
            broker.cancel_scheduled(entity, seq_of(seq)?).await?;
            Ok(warp::reply().into_response())
        }
        (&Method::POST, ["deferred", seq]) => {
            let message = broker.receive_deferred(entity, seq_of(seq)?).await?;
            Ok(message_response(
                request,
                entity,
                &message,
                ReceiveMode::PeekLock,
            ))
        }
        (&Method::POST, ["sessions", "head"]) => {
            let Some(lock) = broker
                .accept_session(entity, None, request.timeout()?)
                .await?
            else {
                return Ok(
                    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response(),
                );
            };
            let message = broker
                .receive_in_session(entity, &lock, ReceiveMode::PeekLock, Duration::ZERO)
                .await?;
            let mut response = match message {
                Some(m) => message_response(request, entity, &m, ReceiveMode::PeekLock),
                None => {
                    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
                }
            };
            set_header(&mut response, "x-local-session-id", &lock.session_id);
            set_header(
                &mut response,
                "x-local-session-lock-token",
                &lock.lock_token,
            );
            set_header(
                &mut response,
                "x-local-session-locked-until",
                &format_http_date(to_datetime(lock.locked_until)),
            );
            Ok(response)
        }
        (&Method::POST | &Method::DELETE, ["sessions", _, "messages", "head"]) => {
            let lock = super::SessionLock {
                session_id: rest[1].clone(),
                lock_token: session_token()?,
                locked_until: 0,
            };
            let mode = if method == Method::POST {
                ReceiveMode::PeekLock
            } else {
                ReceiveMode::ReceiveAndDelete
            };
            match broker
                .receive_in_session(entity, &lock, mode, request.timeout()?)
                .await?
            {
                Some(m) => Ok(message_response(request, entity, &m, mode)),
                None => Ok(
                    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response(),
                ),
            }
        }
        (_, ["sessions", _, "lock"]) => {
            let lock = super::SessionLock {
                session_id: rest[1].clone(),
                lock_token: session_token()?,
                locked_until: 0,
            };
            match *method {
                Method::POST => {
                    let until = broker.renew_session_lock(entity, &lock).await?;
                    let mut response = warp::reply().into_response();
                    set_header(
                        &mut response,
                        "x-local-session-locked-until",
                        &format_http_date(to_datetime(until)),
                    );
                    Ok(response)
                }
                Method::DELETE => {
                    broker.close_session(entity, &lock).await?;
                    Ok(warp::reply().into_response())
                }
                _ => Err(method_not_allowed()),
            }
        }
        (_, ["sessions", _, "state"]) => {
            let lock = super::SessionLock {
                session_id: rest[1].clone(),
                lock_token: session_token()?,
                locked_until: 0,
            };
            match *method {
                Method::GET => match broker.session_state(entity, &lock).await? {
                    Some(state) => {
                        let mut response =
                            warp::reply::with_status(state, StatusCode::OK).into_response();
                        set_header(&mut response, "content-type", "application/octet-stream");
                        Ok(response)
                    }
                    None => Ok(
                        warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT)
                            .into_response(),
                    ),
                },
                Method::PUT => {
                    let state = (!request.body.is_empty()).then(|| request.body.to_vec());
                    broker.set_session_state(entity, &lock, state).await?;
                    Ok(warp::reply().into_response())
                }
                _ => Err(method_not_allowed()),
            }
        }
        _ => Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("no local operation {} {}", method, rest.join("/")),
        )),
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

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

fn set_header(response: &mut Response, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        response.headers_mut().insert(name, value);
    }
}

/// Decodes a single or batch send.
fn read_send(broker: &Broker, request: &Request) -> Result<Vec<Message>, Failure> {
    let limit = broker.options().max_message_bytes;
    let content_type = request.header("content-type").map(str::to_owned);
    let is_batch = content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(BATCH_CONTENT_TYPE)
    });
    if request.body.len() > limit {
        return Err(BrokerError::TooLarge {
            size: request.body.len(),
            limit,
        }
        .into());
    }
    if is_batch {
        return crate::servicebus::message::decode_batch(&request.body)
            .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e));
    }
    let mut message = Message::new(request.body.to_vec());
    message.content_type = content_type;
    if let Some(props) = request.header("brokerproperties") {
        let props: BrokerProperties = serde_json::from_str(props).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("BrokerProperties is not valid JSON: {e}"),
            )
        })?;
        props
            .apply_to(&mut message)
            .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    }
    for (name, value) in &request.headers {
        if !is_user_property_header(name.as_str()) {
            continue;
        }
        let text = value.to_str().map_err(|_| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("custom property {name} is not text"),
            )
        })?;
        let parsed = PropertyValue::from_header(text).ok_or_else(|| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("custom property {name} has the value {text:?}, which is neither quoted text, a number nor true/false"),
            )
        })?;
        message.properties.insert(name.as_str().to_string(), parsed);
    }
    Ok(vec![message])
}

/// A received message as an HTTP response (201 peek-lock with Location, 200 receive-and-delete).
fn message_response(
    request: &Request,
    entity_path: &str,
    message: &ReceivedMessage,
    mode: ReceiveMode,
) -> Response {
    let status = if mode == ReceiveMode::PeekLock {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response =
        warp::reply::with_status(message.message.body.clone(), status).into_response();
    let content_type = message
        .message
        .content_type
        .as_deref()
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    set_header(&mut response, "content-type", content_type);
    let props = BrokerProperties::for_receive(message);
    set_header(
        &mut response,
        "brokerproperties",
        &serde_json::to_string(&props).unwrap_or_default(),
    );
    if let (ReceiveMode::PeekLock, Some(token)) = (mode, &message.lock_token) {
        let location = format!(
            "http://{}/{}/messages/{}/{}",
            request.host(),
            entity_path.trim_matches('/').to_ascii_lowercase(),
            message.sequence_number,
            token
        );
        set_header(&mut response, "location", &location);
    }
    for (name, value) in &message.message.properties {
        if is_user_property_header(name) {
            set_header(&mut response, name, &value.to_header());
        }
    }
    response
}

fn browse_item(m: &ReceivedMessage) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = m
        .message
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.to_header())))
        .collect();
    json!({
        "Body": base64::engine::general_purpose::STANDARD.encode(&m.message.body),
        "ContentType": m.message.content_type,
        "BrokerProperties": BrokerProperties::for_receive(m),
        "UserProperties": properties,
    })
}
