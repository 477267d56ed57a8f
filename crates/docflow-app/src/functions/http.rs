//! HTTP-triggered functions, served in both of the host's modes: the default payload mode
//! (`POST /{Function}` with `Data.req`, answered with `Outputs.res`) and forwarding mode
//! (`enableForwardingHttpRequest`, the original request at its own path), so that binary
//! bodies such as PDFs arrive intact. Both end in [`HttpFunction::handle`].

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::outcome::Outcome;
use crate::pipeline::submission::HttpInput;
use docflow_custom_handler::protocol::{
    HttpRequestData, HttpResponseData, InvocationRequest, InvocationResponse,
};

/// The HTTP trigger binding's name in every HTTP function's `function.json`.
pub const REQUEST_BINDING: &str = "req";
/// The HTTP output binding's name.
pub const RESPONSE_BINDING: &str = "res";

/// A request to an HTTP function.
#[derive(Debug, Clone, Default)]
pub struct HttpCall {
    /// Upper-case method.
    pub method: String,
    /// Route parameters.
    pub params: Vec<(String, String)>,
    /// Query, headers and body.
    pub input: HttpInput,
}

impl HttpCall {
    /// A route parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.input
            .query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer: status, headers, a JSON body (or a plain-text one).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers besides `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` for a text answer).
    pub body: Value,
    /// A plain-text body (`text/plain; charset=utf-8`) instead of the JSON one.
    pub text: Option<String>,
}

/// The content type of plain-text answers.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

impl HttpReply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
            text: None,
        }
    }

    /// A plain-text answer (`text/plain; charset=utf-8`).
    pub fn text(status: u16, text: String) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Value::Null,
            text: Some(text),
        }
    }

    /// `{"error": {"code", "message", "field"?}}`.
    pub fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Self {
        let mut error = json!({"code": code, "message": message});
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        Self::json(status, json!({ "error": error }))
    }

    /// `503 StorageUnavailable` with `Retry-After`: reading the document's records failed, and
    /// the same request is worth repeating shortly. Logged once, here.
    pub fn storage_unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "reading the document's records failed");
        Self::error(503, "StorageUnavailable", &error.to_string(), None).header("Retry-After", "5")
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The `res` output of payload mode.
    pub fn into_response_data(self) -> HttpResponseData {
        let mut data = match self.text {
            Some(text) => HttpResponseData {
                status_code: self.status,
                headers: Default::default(),
                body: text,
            }
            .header("Content-Type", TEXT_CONTENT_TYPE),
            None => HttpResponseData::json(self.status, &self.body),
        };
        for (name, value) in self.headers {
            data = data.header(&name, value);
        }
        data
    }
}

/// A function behind an HTTP trigger.
#[async_trait]
pub trait HttpFunction: Send + Sync {
    /// The folder name at the app root.
    fn name(&self) -> &'static str;

    /// The methods it serves, upper case (as in its `function.json`).
    fn methods(&self) -> &'static [&'static str];

    /// Its route template below the route prefix (as in its `function.json`).
    fn route(&self) -> &'static str;

    /// Largest request body it reads (forwarding mode refuses longer ones with 413 before
    /// buffering them).
    fn max_body_bytes(&self) -> usize {
        crate::server::MAX_REQUEST_BYTES
    }

    /// Answers one request.
    async fn handle(&self, call: HttpCall) -> HttpReply;
}

/// Payload mode: decodes `Data.req`, answers with `Outputs.res`.
pub async fn invoke_payload_mode(
    function: &dyn HttpFunction,
    request: InvocationRequest,
) -> Outcome {
    let data = match request.http_request(REQUEST_BINDING) {
        Ok(data) => data,
        Err(e) => return Outcome::BadRequest(e),
    };
    let reply = function.handle(call_from_payload(data)).await;
    Outcome::Done(InvocationResponse::new().http(RESPONSE_BINDING, reply.into_response_data()))
}

/// The host's `Data.req` as a call: repeated query names arrive comma-joined; the body is text,
/// or base64 for `application/octet-stream` and `multipart/*` (protocol doc §4.2).
pub fn call_from_payload(data: HttpRequestData) -> HttpCall {
    let headers: Vec<(String, String)> = data
        .headers
        .iter()
        .filter_map(|(name, values)| values.first().map(|v| (name.clone(), v.clone())))
        .collect();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let body = data.body.unwrap_or_default();
    let body = if content_type.starts_with("application/octet-stream")
        || content_type.starts_with("multipart/")
    {
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from(body))
    } else {
        Bytes::from(body)
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    HttpCall {
        method: data.method,
        params: data
            .params
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect(),
        input: HttpInput {
            query: data
                .query
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
            headers,
            body,
        },
    }
}
