//! What the dashboard reads and acts on, behind traits so that another implementation (Azure
//! Service Bus and a storage account) can stand in for the local stack: the document store,
//! the last-error records and the audit trail of the app, and a [`Bus`] for the topology, its
//! samples and dead-letter triage. [`LocalBroker`] is the embedded broker in process.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use docflow_app::dead_letters::{AuditTrail, DeadLetterBus, Reasons};
use docflow_app::pipeline::store::DocumentStore;
use docflow_broker::{Broker, BrokerError};
use docflow_servicebus::ClientError;
use docflow_servicebus::message::{Message, ReceivedMessage};

/// A queue or a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityInfo {
    /// `queue` or `topic/subscriptions/sub`.
    pub path: String,
    /// Whether it is a subscription.
    pub subscription: bool,
    /// Where it forwards to (`ForwardTo`), if it does.
    pub forward_to: Option<String>,
}

/// One sample of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitySample {
    /// Active messages (locked ones included).
    pub active: u64,
    /// Scheduled.
    pub scheduled: u64,
    /// Deferred.
    pub deferred: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// When its oldest active message was enqueued.
    pub oldest_active: Option<DateTime<Utc>>,
    /// Its last sequence number (for a subscription, its topic's): growth means messages in.
    pub last_sequence_number: i64,
    /// When the sample was taken.
    pub at: DateTime<Utc>,
}

/// A Service Bus namespace as the dashboard sees it.
#[async_trait]
pub trait Bus: DeadLetterBus {
    /// Every queue and subscription.
    fn entities(&self) -> Vec<EntityInfo>;
    /// A sample of one.
    async fn sample(&self, path: &str) -> Result<EntitySample, ClientError>;
    /// The triage operations, as the library takes them.
    fn as_dead_letter_bus(&self) -> &dyn DeadLetterBus;
}

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
        let mut out = Vec::new();
        let mut from = 0;
        while out.len() < max {
            let page = self
                .0
                .browse(&entity, true, from, (max - out.len()).min(500))
                .await
                .map_err(client_error)?;
            let Some(last) = page.last() else { break };
            from = last.sequence_number + 1;
            out.extend(page);
        }
        Ok(out)
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
    fn entities(&self) -> Vec<EntityInfo> {
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
        out
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
            at: docflow_broker::clock::to_datetime(self.0.now()),
        })
    }

    fn as_dead_letter_bus(&self) -> &dyn DeadLetterBus {
        self
    }
}

/// Everything the dashboard reads and acts on.
#[derive(Clone)]
pub struct Sources {
    /// The app's documents.
    pub store: DocumentStore,
    /// The Service Bus namespace.
    pub bus: Arc<dyn Bus>,
    /// The handler's last-error records.
    pub reasons: Reasons,
    /// Where dead-letter actions are audited.
    pub audit: AuditTrail,
}
