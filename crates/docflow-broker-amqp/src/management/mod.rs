//! `$management` request/response links on `<entity>/$management`: the client attaches a
//! sender link to the node (its requests) and a receiver link from it (the replies); each reply
//! goes on the session's receiver link of that node whose target address equals the request's
//! `reply-to`, with `correlation-id` = the request's `message-id` in the same AMQP type and the
//! application properties `statusCode` (int), `statusDescription` (string) and, on errors,
//! `errorCondition` (symbol).
//!
//! Requests are checked on the connection task (operation, body types, the CBS token's right
//! for the entity) and carried out in order by one worker per request link, which reports each
//! reply back as a [`Completion`]. Lock tokens are the broker's, whichever link issued them, so
//! `update-disposition` and `renew-lock` serve messages received on receiver links too.
//!
//! # Layout
//! - this file: attach checks, dispatch, authorisation, the worker, replies, error mapping.
//! - `request`: a request's body read into an [`Operation`] with the exact value types.
//! - `operations`: each operation against the broker, and its response body.

mod operations;
mod request;

use docflow_amqp::message::{Body, Message as AmqpMessage, Properties};
use docflow_amqp::{AmqpError, Value};
use docflow_broker::entities::Target;
use docflow_broker::{Broker, BrokerError, split_dlq};
use docflow_servicebus::sas::Right;
use tokio::sync::mpsc;

use crate::engine::{Completion, Connection};
use crate::links::{LINK_CREDIT, LinkKind};

use request::Operation;

/// The suffix of a management node's address.
const MANAGEMENT_SUFFIX: &str = "/$management";

/// The entity path a management node serves (`q/$management` → `q`,
/// `q/$deadletterqueue/$management` → `q/$deadletterqueue`), from a normalised address.
pub(crate) fn entity_of(normalized: &str) -> Option<&str> {
    normalized
        .strip_suffix(MANAGEMENT_SUFFIX)
        .filter(|entity| !entity.is_empty())
}

/// The broker entity behind a management node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The broker's key of the queue, topic or subscription.
    pub(crate) key: String,
    /// Whether the node is that entity's dead-letter queue.
    pub(crate) dlq: bool,
}

/// The client's request link to a management node.
pub(crate) struct ManagementRequests {
    /// The node's normalised address (`q/$management`), to find the reply links.
    node: String,
    /// The normalised entity path the CBS tokens are checked against (`q/$deadletterqueue`).
    path: String,
    /// The broker's key of the entity, to find the sessions this connection holds on it.
    key: String,
    /// The worker carrying the requests out in order.
    worker: mpsc::Sender<Job>,
}

/// A checked request on its way to the worker.
struct Job {
    reply_to: Option<String>,
    correlation_id: Option<Value>,
    operation: Operation,
}

/// A reply, from the worker back to the connection task.
pub(crate) struct Reply {
    channel: u16,
    handle: u32,
    link_id: u64,
    node: String,
    reply_to: Option<String>,
    message: AmqpMessage,
}

/// A successful response: `200` with a body, or `204` (nothing to return).
#[derive(Debug)]
pub(crate) struct Response {
    status: i32,
    body: Option<Value>,
}

impl Response {
    /// `200 OK` with a map body (string keys).
    pub(crate) fn ok(entries: Vec<(&str, Value)>) -> Self {
        let map = entries
            .into_iter()
            .map(|(k, v)| (Value::String(k.into()), v))
            .collect();
        Self {
            status: 200,
            body: Some(Value::Map(map)),
        }
    }

    /// `200 OK` without a body.
    pub(crate) fn done() -> Self {
        Self {
            status: 200,
            body: None,
        }
    }

    /// `204 No Content`.
    pub(crate) fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
        }
    }
}

/// A failed request: its status code, the error condition the SDKs map, and a description.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub(crate) status: i32,
    pub(crate) condition: &'static str,
    pub(crate) description: String,
}

impl Failure {
    /// `400 com.microsoft:argument-error`: the request's body or properties are wrong.
    pub(crate) fn argument(description: impl Into<String>) -> Self {
        Self {
            status: 400,
            condition: "com.microsoft:argument-error",
            description: description.into(),
        }
    }

    /// `404 com.microsoft:message-not-found`.
    pub(crate) fn message_not_found(description: impl Into<String>) -> Self {
        Self {
            status: 404,
            condition: "com.microsoft:message-not-found",
            description: description.into(),
        }
    }

    /// `501 amqp:not-implemented`: an operation the broker does not serve (yet).
    pub(crate) fn not_implemented(description: impl Into<String>) -> Self {
        Self {
            status: 501,
            condition: "amqp:not-implemented",
            description: description.into(),
        }
    }

    /// `410 com.microsoft:session-lock-lost`: no receiver link of this connection holds the
    /// session (it was never accepted here, or its link is gone).
    pub(crate) fn session_not_held(session_id: &str) -> Self {
        Self {
            status: 410,
            condition: "com.microsoft:session-lock-lost",
            description: format!(
                "the session '{session_id}' is not locked by a receiver on this connection"
            ),
        }
    }

    fn unauthorized(description: String) -> Self {
        Self {
            status: 401,
            condition: "amqp:unauthorized-access",
            description,
        }
    }

    fn busy() -> Self {
        Self {
            status: 503,
            condition: "com.microsoft:server-busy",
            description: "too many management requests in flight on this link".into(),
        }
    }
}

impl From<BrokerError> for Failure {
    fn from(e: BrokerError) -> Self {
        let (status, condition) = match &e {
            BrokerError::EntityNotFound(_) => (404, "amqp:not-found"),
            BrokerError::LockLost => (410, "com.microsoft:message-lock-lost"),
            BrokerError::MessageNotFound(_) => (404, "com.microsoft:message-not-found"),
            BrokerError::SessionLocked(_) => (409, "com.microsoft:session-cannot-be-locked"),
            BrokerError::SessionLockLost => (410, "com.microsoft:session-lock-lost"),
            BrokerError::TooLarge { .. } => (413, "amqp:link:message-size-exceeded"),
            BrokerError::SessionRequired
            | BrokerError::SessionIdMissing
            | BrokerError::NotSessionful(_)
            | BrokerError::BadRequest(_) => (400, "com.microsoft:argument-error"),
            BrokerError::Storage(_) => (500, "amqp:internal-error"),
        };
        Self {
            status,
            condition,
            description: e.to_string(),
        }
    }
}

/// The reply message: `correlation-id` = the request's `message-id`, the status properties,
/// and the body as an amqp-value when there is one.
fn reply_message(correlation_id: Option<Value>, result: Result<Response, Failure>) -> AmqpMessage {
    let (status, description, condition, body) = match result {
        Ok(r) => {
            let description = if r.status == 204 { "No Content" } else { "OK" };
            (r.status, description.to_string(), None, r.body)
        }
        Err(f) => (f.status, f.description, Some(f.condition), None),
    };
    let mut properties = vec![
        ("statusCode".to_string(), Value::Int(status)),
        ("statusDescription".to_string(), Value::String(description)),
    ];
    if let Some(condition) = condition {
        properties.push(("errorCondition".into(), Value::Symbol(condition.into())));
    }
    AmqpMessage {
        properties: Some(Properties {
            correlation_id,
            ..Properties::default()
        }),
        application_properties: Some(properties),
        body: body.map(Body::Value).unwrap_or_default(),
        ..AmqpMessage::default()
    }
}

impl Connection {
    /// Checks an attach to `<entity>/$management`: the entity exists and the connection holds
    /// a token for it. A request link (`client_sends`) gets its worker; a reply link is an
    /// ordinary reply link of the node (`None`).
    pub(crate) fn management_link(
        &mut self,
        entity: &str,
        client_sends: bool,
        (channel, handle, link_id): (u16, u32, u64),
    ) -> Result<Option<ManagementRequests>, AmqpError> {
        let (base, dlq) = split_dlq(entity);
        let key = match self.broker.entities().resolve(&base) {
            Some(t @ (Target::Queue(_) | Target::Subscription(..))) => Some(t.key()),
            Some(t @ Target::Topic(_)) if !dlq => Some(t.key()),
            _ => None,
        };
        let key = key.ok_or_else(|| {
            AmqpError::new(
                "amqp:not-found",
                format!("the messaging entity '{entity}' could not be found"),
            )
        })?;
        let now = self.now_secs();
        let rights = [Right::Listen, Right::Send, Right::Manage];
        if !rights.iter().any(|r| self.auth.allows(entity, *r, now)) {
            return Err(AmqpError::new(
                "amqp:unauthorized-access",
                format!("no valid token for '{entity}' on this connection"),
            ));
        }
        if !client_sends {
            return Ok(None);
        }
        let (worker, jobs) = mpsc::channel(LINK_CREDIT as usize);
        let node = Node {
            key: key.clone(),
            dlq,
        };
        let ids = (channel, handle, link_id);
        let node_address = format!("{entity}{MANAGEMENT_SUFFIX}");
        tokio::spawn(run_worker(
            self.broker.clone(),
            node,
            node_address.clone(),
            jobs,
            self.done_tx.clone(),
            ids,
        ));
        Ok(Some(ManagementRequests {
            node: node_address,
            path: entity.to_string(),
            key,
            worker,
        }))
    }

    /// A request arrived on a management request link: check it and hand it to the worker,
    /// or answer its failure at once.
    pub(crate) fn on_management_request(
        &mut self,
        channel: u16,
        handle: u32,
        request: &AmqpMessage,
    ) {
        let now = self.now_secs();
        let Some(link) = self.session(channel).links.get(&handle) else {
            return;
        };
        let LinkKind::Management(requests) = &link.kind else {
            return;
        };
        let (node, path, key) = (
            requests.node.clone(),
            requests.path.clone(),
            requests.key.clone(),
        );
        let properties = request.properties.as_ref();
        let reply_to = properties.and_then(|p| p.reply_to.clone());
        let correlation_id = properties.and_then(|p| p.message_id.clone());
        let checked = request::operation_name(request)
            .and_then(|name| request::parse(name, &request.body))
            .and_then(|operation| {
                let right = operation.right();
                if self.auth.allows(&path, right, now) {
                    Ok(operation)
                } else {
                    Err(Failure::unauthorized(format!(
                        "no valid token with the {} right for '{path}' on this connection",
                        right.name()
                    )))
                }
            });
        let failure = match checked {
            Ok(mut operation) => {
                if let Operation::Session {
                    session_id, lock, ..
                } = &mut operation
                {
                    *lock = self.held_session(&key, session_id);
                }
                let job = Job {
                    reply_to: reply_to.clone(),
                    correlation_id: correlation_id.clone(),
                    operation,
                };
                let Some(link) = self.session(channel).links.get_mut(&handle) else {
                    return;
                };
                let LinkKind::Management(requests) = &link.kind else {
                    return;
                };
                if requests.worker.try_send(job).is_ok() {
                    link.in_flight += 1;
                    return;
                }
                Failure::busy()
            }
            Err(failure) => failure,
        };
        let reply = reply_message(correlation_id, Err(failure));
        self.queue_reply(channel, &node, reply_to.as_deref(), reply.encode());
    }

    /// The worker answered a request: give the link its credit back and send the reply.
    pub(crate) fn on_managed(&mut self, reply: Reply) {
        let Reply {
            channel,
            handle,
            link_id,
            node,
            reply_to,
            message,
        } = reply;
        let Some(session) = self.sessions.get_mut(&channel) else {
            return;
        };
        let link = session.links.get_mut(&handle).filter(|l| l.id == link_id);
        if let Some(link) = link {
            link.in_flight = link.in_flight.saturating_sub(1);
            self.grant_credit(channel, handle);
        }
        self.queue_reply(channel, &node, reply_to.as_deref(), message.encode());
    }
}

/// Carries out a request link's requests one at a time, in order.
async fn run_worker(
    broker: Broker,
    node: Node,
    node_address: String,
    mut jobs: mpsc::Receiver<Job>,
    done: mpsc::Sender<Completion>,
    (channel, handle, link_id): (u16, u32, u64),
) {
    while let Some(job) = jobs.recv().await {
        let result = operations::execute(&broker, &node, job.operation).await;
        if let Err(failure) = &result {
            tracing::debug!(
                node = %node_address,
                condition = failure.condition,
                description = %failure.description,
                "a management request failed"
            );
        }
        let reply = Reply {
            channel,
            handle,
            link_id,
            node: node_address.clone(),
            reply_to: job.reply_to,
            message: reply_message(job.correlation_id, result),
        };
        if done
            .send(Completion::Managed(Box::new(reply)))
            .await
            .is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_nodes_name_their_entity() {
        assert_eq!(entity_of("q/$management"), Some("q"));
        assert_eq!(
            entity_of("q/$deadletterqueue/$management"),
            Some("q/$deadletterqueue")
        );
        assert_eq!(
            entity_of("t/subscriptions/s/$management"),
            Some("t/subscriptions/s")
        );
        assert_eq!(entity_of("$management"), None);
        assert_eq!(entity_of("q"), None);
    }

    #[test]
    fn replies_carry_the_status_types_the_sdks_read() {
        let failed = reply_message(
            Some(Value::Uuid([7; 16])),
            Err(Failure::from(BrokerError::LockLost)),
        );
        assert_eq!(
            failed.properties.unwrap().correlation_id,
            Some(Value::Uuid([7; 16]))
        );
        let props = failed.application_properties.unwrap();
        assert_eq!(props[0], ("statusCode".into(), Value::Int(410)));
        assert!(matches!(&props[1].1, Value::String(_)));
        assert_eq!(
            props[2],
            (
                "errorCondition".into(),
                Value::Symbol("com.microsoft:message-lock-lost".into())
            )
        );
        let ok = reply_message(None, Ok(Response::ok(vec![("k", Value::Long(1))])));
        assert_eq!(
            ok.body,
            Body::Value(Value::Map(vec![(
                Value::String("k".into()),
                Value::Long(1)
            )]))
        );
        assert_eq!(ok.application_properties.unwrap().len(), 2);
    }
}
