//! The sending seam the functions use: "put this message on that entity". Functions send
//! directly (not through output bindings) whenever a message needs a `MessageId`, `SessionId`,
//! `CorrelationId`, application properties or a schedule, which the host cannot carry.
//!
//! [`ServiceBusClient`] is the implementation for Azure and the embedded broker alike;
//! [`RecordingSender`] keeps messages in memory for unit tests of the functions.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::client::{ClientError, ServiceBusClient};
use super::message::Message;

/// Sends messages to queues and topics.
#[async_trait]
pub trait MessageSender: Send + Sync {
    /// Sends one message to `entity` (a queue or a topic).
    async fn send(&self, entity: &str, message: &Message) -> Result<(), ClientError>;

    /// Sends messages to `entity` together: all or none are accepted.
    async fn send_all(&self, entity: &str, messages: &[Message]) -> Result<(), ClientError> {
        for message in messages {
            self.send(entity, message).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl MessageSender for ServiceBusClient {
    async fn send(&self, entity: &str, message: &Message) -> Result<(), ClientError> {
        self.send_message(entity, message).await.map(|_| ())
    }

    async fn send_all(&self, entity: &str, messages: &[Message]) -> Result<(), ClientError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.send_messages(entity, messages).await
    }
}

/// The sender of an app without a Service Bus connection: every send fails, saying which
/// setting is missing.
pub struct NotConfigured(pub String);

#[async_trait]
impl MessageSender for NotConfigured {
    async fn send(&self, _entity: &str, _message: &Message) -> Result<(), ClientError> {
        Err(ClientError::Connection(
            super::connection::ConnectionError::NotConfigured {
                name: self.0.clone(),
            },
        ))
    }
}

/// Keeps every sent message in memory, in order, with its entity.
#[derive(Clone, Default)]
pub struct RecordingSender {
    sent: Arc<Mutex<Vec<(String, Message)>>>,
}

impl RecordingSender {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything sent so far.
    pub fn sent(&self) -> Vec<(String, Message)> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The messages sent to one entity.
    pub fn sent_to(&self, entity: &str) -> Vec<Message> {
        self.sent()
            .into_iter()
            .filter(|(e, _)| e == entity)
            .map(|(_, m)| m)
            .collect()
    }
}

#[async_trait]
impl MessageSender for RecordingSender {
    async fn send(&self, entity: &str, message: &Message) -> Result<(), ClientError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((entity.to_string(), message.clone()));
        Ok(())
    }
}
