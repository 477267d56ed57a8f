//! Replies: Azure's `<Error>` bodies and status codes, messages with their `BrokerProperties`
//! and user-property headers, and the decoding of single and batch sends.

use base64::Engine as _;
use serde_json::json;
use warp::Reply;
use warp::http::{HeaderName, HeaderValue, StatusCode};
use warp::reply::Response;

use super::{BATCH_CONTENT_TYPE, DEFAULT_CONTENT_TYPE, Request};
use crate::Broker;
use crate::core::{BrokerError, ReceiveMode};
use docflow_servicebus::http_body::BodyError;
use docflow_servicebus::message::{
    BrokerProperties, Message, PropertyValue, ReceivedMessage, format_http_date,
    is_user_property_header,
};

/// An error reply: status plus Azure's `<Error>` detail.
pub(super) struct Failure {
    status: StatusCode,
    detail: String,
}

impl Failure {
    pub(super) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub(super) fn into_response(self, request: &Request) -> Response {
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
pub(super) fn body_failure(error: &BodyError) -> Response {
    let status = match error {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Broken(_) => StatusCode::BAD_REQUEST,
    };
    docflow_servicebus::http_body::close_if_unread(error_response(status, &error.to_string()))
}

pub(super) fn error_response(status: StatusCode, detail: &str) -> Response {
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

pub(super) fn xml_escape(s: &str) -> String {
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

pub(super) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

pub(super) fn set_header(response: &mut Response, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        response.headers_mut().insert(name, value);
    }
}

/// Decodes a single or batch send.
pub(super) fn read_send(broker: &Broker, request: &Request) -> Result<Vec<Message>, Failure> {
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
        return docflow_servicebus::message::decode_batch(&request.body)
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
pub(super) fn message_response(
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

pub(super) fn browse_item(m: &ReceivedMessage) -> serde_json::Value {
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
