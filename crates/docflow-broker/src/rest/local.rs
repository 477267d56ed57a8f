//! The local-only operations under `/{entity}/$local/…` (no Azure equivalent).

use std::time::Duration;

use serde_json::json;
use warp::Reply;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::reply::{Failure, browse_item, json_response, message_response, read_send, set_header};
use super::{Request, method_not_allowed};
use crate::clock::to_datetime;
use crate::core::ReceiveMode;
use crate::{Broker, SessionLock};
use docflow_servicebus::message::format_http_date;

/// Serves one local-only operation on `entity` (`rest`: the segments after `$local`).
pub(super) async fn handle(
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
        // {queue or subscription}/$DeadLetterQueue/$local/restore/{seq}, the body and headers
        // of a send: the dead letter goes back to where it came from as that message.
        (&Method::POST, ["restore", seq]) if dlq => {
            let mut messages = read_send(broker, request)?;
            let (Some(message), true) = (messages.pop(), messages.is_empty()) else {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "restore takes exactly one message",
                ));
            };
            broker
                .restore_dead_lettered(entity, seq_of(seq)?, message)
                .await?;
            Ok(warp::reply().into_response())
        }
        (&Method::DELETE, [seq]) if dlq && seq.parse::<i64>().is_ok() => {
            broker.remove_dead_lettered(entity, seq_of(seq)?).await?;
            Ok(warp::reply().into_response())
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
            let lock = SessionLock {
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
            let lock = SessionLock {
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
            let lock = SessionLock {
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
