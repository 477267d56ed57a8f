//! HTTP triggers on `http://127.0.0.1:{port}/{routePrefix}/{route}`, as `func start` serves them:
//! default payload mode (`Data.req` in, `Outputs.res` out) or, for HTTP-only functions with
//! `enableForwardingHttpRequest`, the request forwarded to the handler unchanged. With several
//! instances, each request goes to the next instance in turn.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tracing::{Instrument, info_span, warn};
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::Context;
use super::config::{FunctionDef, HttpTrigger, Trigger};
use super::instance::RoundRobin;
use super::invoke::{self, HttpCall};
use docflow_custom_handler::protocol::match_route;
use docflow_servicebus::http_body::BodyError;
use docflow_servicebus::http_url::parse_query;

/// The HTTP trigger server as a warp filter, over the host's instances: each request is
/// served by the next instance's handler in turn.
pub fn routes(
    instances: Arc<RoundRobin<Arc<Context>>>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let max_body = instances.first().max_request_body_bytes();
    docflow_servicebus::http_body::request_parts(max_body)
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body: Result<Bytes, BodyError>| {
                let ctx = instances.next_item().clone();
                async move {
                    match body {
                        Ok(body) => {
                            handle(&ctx, method, path.as_str(), &query, &headers, body).await
                        }
                        Err(e @ BodyError::TooLarge { .. }) => {
                            docflow_servicebus::http_body::close_if_unread(error(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                &e.to_string(),
                            ))
                        }
                        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
                    }
                }
            },
        )
        .recover(|_rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(error(
                StatusCode::BAD_REQUEST,
                "the request could not be read",
            ))
        })
        .unify()
}

fn error(status: StatusCode, message: &str) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": status.as_u16(), "message": message}})),
        status,
    )
    .into_response()
}

/// A function matched by a request, with its route parameters.
type Matched<'a> = (&'a FunctionDef, &'a HttpTrigger, Vec<(String, String)>);

fn find<'a>(ctx: &'a Context, method: &Method, path: &str) -> Option<Matched<'a>> {
    ctx.app.functions.iter().find_map(|f| {
        let Trigger::Http(trigger) = &f.trigger else {
            return None;
        };
        if !trigger.methods.is_empty() && !trigger.methods.iter().any(|m| m == method.as_str()) {
            return None;
        }
        match_route(&trigger.route, path).map(|params| (f, trigger, params))
    })
}

async fn handle(
    ctx: &Arc<Context>,
    method: Method,
    full_path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let prefix = &ctx.app.host.route_prefix;
    let below = if prefix.is_empty() {
        Some(full_path)
    } else {
        full_path
            .strip_prefix(&format!("/{prefix}"))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let Some((def, trigger, params)) = below.and_then(|p| find(ctx, &method, p)) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no function serves {method} {full_path}"),
        );
    };
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let span = info_span!("invocation", function = %def.name, invocation_id = %invocation_id);
    async {
        if ctx.app.host.forward_http && def.is_http_only() {
            return forward(ctx, &invocation_id, method, full_path, query, headers, body).await;
        }
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let url = if query.is_empty() {
            format!("http://{host}{full_path}")
        } else {
            format!("http://{host}{full_path}?{query}")
        };
        let call = HttpCall {
            url,
            method: method.to_string(),
            query: parse_query(query),
            headers: headers
                .iter()
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (canonical_header(k.as_str()), v.to_string()))
                })
                .collect(),
            params,
            body,
        };
        let (request, data) = invoke::http_request(&def.name, &trigger.name, &call);
        match ctx.invoke(def, &invocation_id, &request, &data).await {
            Ok(Some(res)) => response_from(&res),
            Ok(None) => warp::reply::with_status(String::new(), StatusCode::OK).into_response(),
            Err(reason) => {
                warn!(%reason, "HTTP invocation failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, &reason)
            }
        }
    }
    .instrument(span)
    .await
}

/// `content-type` → `Content-Type`, as the .NET host presents header names.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Turns `Outputs.res` into the HTTP response (§4.3).
pub fn response_from(res: &Value) -> Response {
    let res = match res {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let status = match res.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|n| StatusCode::from_u16(n as u16).ok())
    .unwrap_or(StatusCode::OK);
    let body = match res.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let mut response = warp::reply::with_status(body, status).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(Value::Object(headers)) = res.get("headers") {
        for (k, v) in headers {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

async fn forward(
    ctx: &Context,
    invocation_id: &str,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let method =
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = ctx.handler.forward(method, &target);
    for (k, v) in headers {
        if k.as_str() != "host" && k.as_str() != "content-length" {
            request = request.header(k.as_str(), v.as_bytes());
        }
    }
    let request = request
        .header("X-Azure-Functions-InvocationId", invocation_id)
        .header(
            "X-Azure-Functions-HostVersion",
            super::handler::HOST_VERSION,
        )
        .body(body);
    let timeout = ctx.app.host.function_timeout;
    match ctx.handler.send_forwarded(request, timeout).await {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let headers = answer.headers().clone();
            let read = match timeout {
                Some(limit) => tokio::time::timeout(limit, answer.bytes()).await,
                None => Ok(answer.bytes().await),
            };
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Err(_) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the handler's answer did not end within functionTimeout",
                    );
                }
                Ok(Err(e)) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        &format!("the handler's answer broke off: {e}"),
                    );
                }
            };
            let mut response = warp::reply::with_status(bytes.to_vec(), status).into_response();
            for (k, v) in &headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(k.as_str().as_bytes()),
                    HeaderValue::from_bytes(v.as_bytes()),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Err(e @ super::handler::HandlerError::Timeout(_)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!("the handler did not answer: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates() {
        assert_eq!(
            match_route("documents/{id}", "/documents/doc-1"),
            Some(vec![("id".into(), "doc-1".into())])
        );
        assert_eq!(match_route("documents/{id}", "/Documents/doc-1/x"), None);
        assert_eq!(match_route("documents/{id?}", "/documents"), Some(vec![]));
        assert_eq!(match_route("items/{n:int}", "/items/x"), None);
        assert_eq!(
            match_route("files/{*path}", "/files/a/b"),
            Some(vec![("path".into(), "a/b".into())])
        );
        assert_eq!(match_route("documents", "/documents/"), Some(vec![]));
    }

    #[test]
    fn res_mapping() {
        let r = response_from(
            &json!({"statusCode": "202", "headers": {"Location": "/x", "Content-Type": "application/json"}, "body": {"a": 1}}),
        );
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["location"], "/x");
        assert_eq!(r.headers()["content-type"], "application/json");
        let plain = response_from(&json!("{\"body\": \"hi\"}"));
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()["content-type"], "text/plain; charset=utf-8");
    }
}
