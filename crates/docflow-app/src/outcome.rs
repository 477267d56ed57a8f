//! The one place where a function's result becomes the host's response.
//!
//! The host can only complete (2xx) or abandon (anything else) a message, so every outcome maps
//! to a status: done → 200 with outputs; transient → 503 (abandon, Service Bus redelivers at
//! once); poison → 422 (abandon; the function has recorded the reason and fails fast on every
//! redelivery, so the message reaches the dead-letter queue after `MaxDeliveryCount` cheap
//! deliveries); a request that is not the host's schema → 400. Every reply is a JSON object.

use serde_json::{Value, json};
use warp::http::StatusCode;

use docflow_custom_handler::protocol::{InvocationResponse, ProtocolError};

/// What became of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished: complete the message and apply the outputs.
    Done(InvocationResponse),
    /// Failed for now; a redelivery may succeed.
    Transient {
        /// Machine-readable reason.
        reason: String,
        /// What happened.
        description: String,
    },
    /// Can never succeed; the reason is recorded under the task's key.
    Poison {
        /// Machine-readable reason (`UnknownTaskKind`, `ContentNotFound`, …).
        reason: String,
        /// What happened.
        description: String,
        /// Whether this delivery only found an existing record (no work was attempted).
        known: bool,
    },
    /// The request itself is malformed; nothing was done.
    BadRequest(ProtocolError),
    /// No function of that name.
    UnknownFunction(String),
}

impl Outcome {
    /// A transient outcome.
    pub fn transient(reason: &str, description: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.to_string(),
            description: description.into(),
        }
    }

    /// A poison outcome found now (not from a record).
    pub fn poison(reason: &str, description: impl Into<String>) -> Self {
        Self::Poison {
            reason: reason.to_string(),
            description: description.into(),
            known: false,
        }
    }

    /// The reason and description of a failure the host abandons (poison or transient): what
    /// a last delivery reports before Service Bus dead-letters the message.
    pub fn abandon_reason(&self) -> Option<(&str, &str)> {
        match self {
            Self::Poison {
                reason,
                description,
                ..
            }
            | Self::Transient {
                reason,
                description,
            } => Some((reason, description)),
            _ => None,
        }
    }

    /// The `outcome` label of the invocation metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Done(_) => "done",
            Self::Transient { .. } => "transient",
            Self::Poison { .. } => "poison",
            Self::BadRequest(_) => "bad_request",
            Self::UnknownFunction(_) => "unknown_function",
        }
    }

    /// The HTTP status and JSON body the host receives.
    pub fn into_reply(self) -> (StatusCode, Value) {
        match self {
            Self::Done(response) => (
                StatusCode::OK,
                serde_json::to_value(response).expect("a response serializes"),
            ),
            Self::Transient {
                reason,
                description,
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                error_body("transient", &reason, &description),
            ),
            Self::Poison {
                reason,
                description,
                known,
            } => {
                let mut body = error_body("poison", &reason, &description);
                body["error"]["alreadyRecorded"] = Value::Bool(known);
                (StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            Self::BadRequest(e) => (
                match e {
                    ProtocolError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                },
                error_body("bad_request", e.code(), &e.to_string()),
            ),
            Self::UnknownFunction(name) => (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "FunctionNotFound", "message": format!("no function named {name:?}"), "function": name}}),
            ),
        }
    }
}

/// `{"error": {"outcome", "code", "message"}}`.
pub fn error_body(outcome: &str, code: &str, message: &str) -> Value {
    json!({"error": {"outcome": outcome, "code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            Outcome::Done(InvocationResponse::new()).into_reply().0,
            StatusCode::OK
        );
        assert_eq!(
            Outcome::transient("X", "y").into_reply().0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (status, body) = Outcome::Poison {
            reason: "UnknownTaskKind".into(),
            description: "d".into(),
            known: true,
        }
        .into_reply();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "UnknownTaskKind");
        assert_eq!(body["error"]["alreadyRecorded"], true);
        let (status, body) = Outcome::BadRequest(ProtocolError::MissingField {
            path: "$.Data".into(),
        })
        .into_reply();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "request is missing $.Data");
    }
}
