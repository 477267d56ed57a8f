//! [`NamespaceBus`]: a Service Bus namespace reached over the network, as `docflow dashboard`
//! reads a deployed app's: the topology and the counts from the management API (what
//! `CountDetails` gives: active, scheduled, dead-lettered), dead letters and their actions
//! over the REST API (through the client's [`DeadLetterBus`]).
//!
//! Azure's REST API cannot browse: reading a dead-letter queue locks each message and
//! releases it (its delivery count there goes up by one), and neither the oldest message nor
//! the last sequence number is known, so the Queues view shows no age or rates. The embedded
//! broker reached this way browses without side effects, as `docflow dlq` does.

use async_trait::async_trait;
use chrono::Utc;

use super::{Bus, EntityInfo, EntitySample};
use docflow_app::dead_letters::DeadLetterBus;
use docflow_servicebus::admin::EntityRuntime;
use docflow_servicebus::message::{Message, ReceivedMessage};
use docflow_servicebus::{ClientError, ServiceBusClient};

/// A namespace over its REST and management APIs.
#[derive(Clone)]
pub struct NamespaceBus(pub ServiceBusClient);

fn info(e: &EntityRuntime) -> EntityInfo {
    EntityInfo {
        path: e.path.clone(),
        subscription: e.subscription,
        forward_to: e.forward_to.clone().filter(|f| !f.is_empty()),
    }
}

/// A sample of the figures the management API gives.
pub fn sample_of(e: &EntityRuntime) -> EntitySample {
    EntitySample {
        active: e.active,
        scheduled: e.scheduled,
        deferred: 0,
        dead_lettered: e.dead_lettered,
        oldest_active: None,
        last_sequence_number: 0,
        browsed: false,
        at: Utc::now(),
    }
}

#[async_trait]
impl DeadLetterBus for NamespaceBus {
    async fn read(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        self.0.read(entity, max).await
    }

    async fn take(&self, entity: &str, max: usize) -> Result<Vec<ReceivedMessage>, ClientError> {
        self.0.take(entity, max).await
    }

    async fn release(&self, messages: &[ReceivedMessage]) -> Result<(), ClientError> {
        self.0.release(messages).await
    }

    async fn resubmit(
        &self,
        entity: &str,
        m: &ReceivedMessage,
        copy: &Message,
    ) -> Result<(), ClientError> {
        self.0.resubmit(entity, m, copy).await
    }

    async fn discard(&self, entity: &str, m: &ReceivedMessage) -> Result<(), ClientError> {
        self.0.discard(entity, m).await
    }
}

#[async_trait]
impl Bus for NamespaceBus {
    async fn entities(&self) -> Result<Vec<EntityInfo>, ClientError> {
        Ok(self.samples().await?.into_iter().map(|(e, _)| e).collect())
    }

    async fn sample(&self, path: &str) -> Result<EntitySample, ClientError> {
        Ok(sample_of(&self.0.entity_runtime(path).await?))
    }

    /// The lists carry every entity's counts: one request for the queues, one for the topics
    /// and one per topic.
    async fn samples(&self) -> Result<Vec<(EntityInfo, EntitySample)>, ClientError> {
        let mut all = self.0.queue_runtimes().await?;
        for topic in self.0.topic_names().await? {
            all.extend(self.0.subscription_runtimes(&topic).await?);
        }
        Ok(all.iter().map(|e| (info(e), sample_of(e))).collect())
    }

    fn as_dead_letter_bus(&self) -> &dyn DeadLetterBus {
        self
    }
}
