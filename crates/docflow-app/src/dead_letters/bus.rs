//! [`DeadLetterBus`]: what triage needs of a Service Bus, and its implementation over the REST
//! client. Another implementation (the embedded broker in process) lives with its user.

use std::time::Duration;

use async_trait::async_trait;

use super::dlq_path;
use docflow_servicebus::message::{Message, ReceivedMessage};
use docflow_servicebus::{ClientError, ServiceBusClient};

/// A Service Bus as dead-letter triage uses it. `entity` is a queue or
/// `topic/subscriptions/sub`; the messages are those of its dead-letter queue.
#[async_trait]
pub trait DeadLetterBus: Send + Sync {
    /// Up to `max` dead letters, in sequence order, changing nothing (or as little as the
    /// service allows: Azure's REST API can only lock and release).
    async fn read(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError>;
    /// Up to `max` dead letters, held for [`Self::resubmit`] or [`Self::discard`] (locked where
    /// the service needs a lock to settle); what is not acted on goes to [`Self::release`].
    async fn take(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError>;
    /// Lets go of taken messages without acting on them.
    async fn release(&self, messages: &[ReceivedMessage]) -> Result<(), ClientError>;
    /// Puts `copy` in the entity `m` was dead-lettered from (never its topic) and removes `m`.
    async fn resubmit(
        &self,
        entity: &str,
        m: &ReceivedMessage,
        copy: &Message,
    ) -> Result<(), ClientError>;
    /// Removes `m`.
    async fn discard(&self, entity: &str, m: &ReceivedMessage) -> Result<(), ClientError>;
}

/// Up to `max` messages in sequence order, read a page at a time (at most 500) with `page`,
/// which returns the messages from a sequence number on.
pub async fn browse_all<F, Fut>(
    max: usize,
    mut page: F,
) -> Result<Vec<ReceivedMessage>, ClientError>
where
    F: FnMut(i64, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<ReceivedMessage>, ClientError>>,
{
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < max {
        let next = page(from, (max - out.len()).min(500)).await?;
        let Some(last) = next.last() else { break };
        from = last.sequence_number + 1;
        out.extend(next);
    }
    Ok(out)
}

/// Whether `entity` is a subscription (`topic/subscriptions/sub`).
pub fn is_subscription(entity: &str) -> bool {
    entity.to_ascii_lowercase().contains("/subscriptions/")
}

#[async_trait]
impl DeadLetterBus for ServiceBusClient {
    async fn read(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        let path = dlq_path(entity);
        if self.is_local() {
            return browse_all(max, |from, n| self.browse(&path, from, n)).await;
        }
        let locked = self.take(entity, max).await?;
        self.release(&locked).await?;
        Ok(locked)
    }

    async fn take(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        let path = dlq_path(entity);
        let mut locked = Vec::new();
        while locked.len() < max {
            match self.peek_lock(&path, Duration::from_secs(1)).await? {
                Some(m) => locked.push(m),
                None => break,
            }
        }
        Ok(locked)
    }

    async fn release(&self, messages: &[ReceivedMessage]) -> Result<(), ClientError> {
        for m in messages {
            self.abandon_message(m).await?;
        }
        Ok(())
    }

    /// A queue's copy is sent, then the original completed (a crash in between can duplicate,
    /// never lose). A subscription's goes back in place on the embedded broker; Azure cannot
    /// send to one subscription, and its topic would deliver the copy to every subscription,
    /// so that is refused.
    async fn resubmit(
        &self,
        entity: &str,
        m: &ReceivedMessage,
        copy: &Message,
    ) -> Result<(), ClientError> {
        if is_subscription(entity) {
            if !self.is_local() {
                return Err(ClientError::BadRequest(format!(
                    "Service Bus cannot send to one subscription, and resubmitting to the topic would reach every subscription of it again; {entity}'s dead letters can be resubmitted on the local broker only"
                )));
            }
            return self
                .restore_dead_lettered(entity, m.sequence_number, copy)
                .await;
        }
        self.send_message(entity, copy).await?;
        self.complete_message(m).await
    }

    async fn discard(&self, _entity: &str, m: &ReceivedMessage) -> Result<(), ClientError> {
        self.complete_message(m).await
    }
}
