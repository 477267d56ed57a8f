//! The Functions host ⇄ custom handler wire protocol (`shared/docs/custom-handler-protocol.md`).
//!
//! Host JSON lives here and nowhere else: functions receive decoded messages and build replies
//! with [`InvocationResponse`].

pub mod host_rules;
mod request;
mod response;
mod route;

pub use request::{
    HttpRequestData, InvocationRequest, MessageProperties, ServiceBusMessage, SystemData,
    TriggerDataType, parse_timestamp, scalar_string, unwrap_json_string,
};
pub use response::{HttpResponseData, InvocationResponse};
pub use route::match_route;

/// Header carrying the host's invocation id.
pub const INVOCATION_ID_HEADER: &str = "X-Azure-Functions-InvocationId";

/// A request that is not what the host sends; answered with 400 and no side effect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// The body is not JSON at all.
    #[error("request body is not JSON: {detail}")]
    NotJson {
        /// The parser's message.
        detail: String,
    },
    /// A required field is absent.
    #[error("request is missing {path}")]
    MissingField {
        /// JSON path of the field.
        path: String,
    },
    /// A field has the wrong shape.
    #[error("request field {path} is not {expected}")]
    Schema {
        /// JSON path of the field.
        path: String,
        /// What the field should be.
        expected: &'static str,
    },
    /// The body is larger than the handler accepts.
    #[error("request body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl ProtocolError {
    /// A stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson { .. } => "RequestNotJson",
            Self::MissingField { .. } => "RequestFieldMissing",
            Self::Schema { .. } => "RequestSchemaInvalid",
            Self::TooLarge { .. } => "RequestTooLarge",
        }
    }
}
