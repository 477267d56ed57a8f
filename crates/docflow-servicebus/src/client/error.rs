//! What can go wrong talking to Service Bus, by what the caller should do about it, and how
//! an HTTP status becomes one of those errors.

use reqwest::{Response, StatusCode};

use crate::connection::ConnectionError;

/// Client errors, by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 404/410 on an entity path.
    #[error("Service Bus entity {entity} does not exist: {detail}")]
    EntityNotFound {
        /// The entity path.
        entity: String,
        /// The service's detail.
        detail: String,
    },
    /// 404/409/410 on a lock URI: the lock expired or the message is gone.
    #[error("message lock lost: {0}")]
    MessageLockLost(String),
    /// 401.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// 403/413.
    #[error("quota exceeded or message too large: {0}")]
    QuotaOrTooLarge(String),
    /// 405 (session entity).
    #[error("the entity requires sessions: {0}")]
    SessionRequired(String),
    /// 400 and other 4xx.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Still failing after the retries (transport, 500, 503).
    #[error("Service Bus is unavailable after {attempts} attempts: {detail}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// The operation exists only on the embedded broker.
    #[error("{0} is available only on the local broker (Azure offers it over AMQP only)")]
    Unsupported(&'static str),
    /// An answer of the management API that does not hold what it must (what is missing or
    /// malformed, and where).
    #[error(transparent)]
    Unreadable(#[from] crate::admin::AtomError),
    /// The connection setting is unusable.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The credential could not produce a token.
    #[error("cannot get a Service Bus token: {0}")]
    Credential(String),
}

/// Which kind of path a request targets, for mapping 404/410.
#[derive(Clone, Copy)]
pub(crate) enum PathKind {
    /// A queue, topic or subscription (or one of its sub-paths).
    Entity,
    /// A message's lock URI.
    Lock,
}

/// The `<Detail>` of Azure's `<Error>` body, or the start of whatever else the body holds.
pub(super) async fn error_detail(response: Response) -> String {
    let text = response.text().await.unwrap_or_default();
    match (text.find("<Detail>"), text.find("</Detail>")) {
        (Some(a), Some(b)) if b > a => text[a + 8..b].to_string(),
        _ => text.chars().take(500).collect(),
    }
}

/// The error a non-retried failure status means on a path of this kind.
pub(super) fn classify(
    status: StatusCode,
    kind: PathKind,
    entity: &str,
    detail: String,
) -> ClientError {
    match (status.as_u16(), kind) {
        (401, _) => ClientError::Unauthorized(detail),
        (403 | 413, _) => ClientError::QuotaOrTooLarge(detail),
        (405, _) => ClientError::SessionRequired(detail),
        (404 | 409 | 410, PathKind::Lock) => ClientError::MessageLockLost(detail),
        (404 | 410, PathKind::Entity) => ClientError::EntityNotFound {
            entity: entity.to_string(),
            detail,
        },
        _ => ClientError::BadRequest(format!("{status}: {detail}")),
    }
}
