//! [`LocalBroker`]: the embedded broker in process, read by browsing (no side effects) and
//! acted on by sequence number.

use async_trait::async_trait;

use super::{Bus, EntityInfo, EntitySample};
use docflow_app::dead_letters::DeadLetterBus;
use docflow_app::dead_letters::bus::browse_all;
use docflow_broker::{Broker, BrokerError};
use docflow_servicebus::ClientError;
use docflow_servicebus::message::{Message, ReceivedMessage};

/// The embedded broker, in process.
#[derive(Clone)]
pub struct LocalBroker(pub Broker);

fn client_error(e: BrokerError) -> ClientError {
    match e {
        BrokerError::EntityNotFound(entity) => ClientError::EntityNotFound {
            detail: format!("no queue or subscription {entity}"),
            entity,
        },
        BrokerError::MessageNotFound(seq) => ClientError::BadRequest(format!(
            "no dead-lettered message with sequence number {seq}"
        )),
        other => ClientError::BadRequest(other.to_string()),
    }
}

fn split(path: &str) -> (String, bool) {
    docflow_broker::split_dlq(path)
}

#[async_trait]
impl DeadLetterBus for LocalBroker {
    async fn read(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        let (entity, _) = split(entity);
        let entity = &entity;
        browse_all(max, |from, n| async move {
            self.0
                .browse(entity, true, from, n)
                .await
                .map_err(client_error)
        })
        .await
    }

    /// Browsing is enough: the in-process operations act by sequence number.
    async fn take(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        self.read(entity, max).await
    }

    async fn release(&self, _messages: &[ReceivedMessage]) -> Result<(), ClientError> {
        Ok(())
    }

    async fn resubmit(
        &self,
        entity: &str,
        m: &ReceivedMessage,
        copy: &Message,
    ) -> Result<(), ClientError> {
        self.0
            .restore_dead_lettered(entity, m.sequence_number, copy.clone())
            .await
            .map_err(client_error)
    }

    async fn discard(&self, entity: &str, m: &ReceivedMessage) -> Result<(), ClientError> {
        self.0
            .remove_dead_lettered(entity, m.sequence_number)
            .await
            .map_err(client_error)
    }
}

#[async_trait]
impl Bus for LocalBroker {
    async fn entities(&self) -> Result<Vec<EntityInfo>, ClientError> {
        let entities = self.0.entities();
        let mut out: Vec<EntityInfo> = entities
            .queues()
            .map(|q| EntityInfo {
                path: q.name.clone(),
                subscription: false,
                forward_to: q.settings.forward_to.clone(),
            })
            .collect();
        for topic in entities.topics() {
            for sub in &topic.subscriptions {
                out.push(EntityInfo {
                    path: format!("{}/subscriptions/{}", topic.name, sub.name),
                    subscription: true,
                    forward_to: sub.settings.forward_to.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn sample(&self, path: &str) -> Result<EntitySample, ClientError> {
        let counts = self.0.counts(path).await.map_err(client_error)?;
        let activity = self.0.activity(path).await.map_err(client_error)?;
        Ok(EntitySample {
            active: counts.active,
            scheduled: counts.scheduled,
            deferred: counts.deferred,
            dead_lettered: counts.dead_lettered,
            oldest_active: activity
                .oldest_active
                .map(docflow_broker::clock::to_datetime),
            last_sequence_number: activity.last_sequence_number,
            browsed: true,
            at: docflow_broker::clock::to_datetime(self.0.now()),
        })
    }

    fn as_dead_letter_bus(&self) -> &dyn DeadLetterBus {
        self
    }
}
