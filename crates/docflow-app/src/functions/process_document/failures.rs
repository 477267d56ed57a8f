//! What a failed delivery leaves behind: a scheduled retry, the last-error record, the poison
//! record, and the failed outcome reported on the last delivery.

use tracing::{error, info, warn};

use super::{Delivery, ProcessDocument, Retry, TRIGGER_QUEUE};
use crate::functions::last_delivery;
use crate::functions::retry::{RetryPlan, scheduled_copy};
use crate::last_errors::LastError;
use crate::outcome::Outcome;
use crate::poison::{POISON_SCHEMA, PoisonRecord};
use crate::task::{AiTask, task_id_of};
use docflow_custom_handler::protocol::{InvocationResponse, ServiceBusMessage};

impl ProcessDocument {
    /// On a failing message's last delivery, tells the aggregator the task failed.
    pub(super) async fn report_last_failure(
        &self,
        message: &ServiceBusMessage,
        reason: &str,
        description: &str,
    ) {
        let Some(bus) = &self.bus else {
            return;
        };
        if !last_delivery::is_last(message, self.options.max_delivery_count) {
            return;
        }
        match crate::task::outcome_identity(&message.body) {
            Some(identity) => {
                last_delivery::report_failed(bus.as_ref(), message, &identity, reason, description)
                    .await
            }
            None => warn!(
                "last delivery of a failing message without a task id; no outcome can be reported"
            ),
        }
    }

    /// Sends the scheduled copy and completes; past the caps, abandons the message so that it
    /// dead-letters (its remaining deliveries fail fast from the last-error record, and the last
    /// one reports the failed outcome with this reason).
    pub(super) async fn retry_later(
        &self,
        task: &AiTask,
        delivery: &Delivery<'_>,
        stop: Retry,
    ) -> Outcome {
        let Retry {
            reason,
            description,
            delay,
            rate_limited,
            usage,
        } = stop;
        let Some(bus) = &self.bus else {
            warn!(%reason, %description, "transient failure; the message will be redelivered");
            return Outcome::transient(reason, description);
        };
        let plan =
            self.options
                .retry_policy()
                .plan(delivery.counts, rate_limited.then_some(delay), usage);
        let (counts, delay) = match plan {
            RetryPlan::Later { counts, delay } => (counts, delay),
            RetryPlan::Exhausted { cap } => {
                let description = format!("gave up after {cap} retries: {description}");
                warn!(%reason, "retries exhausted; the message goes to the dead-letter queue");
                self.remember(
                    delivery.message,
                    Some(&task.task_id),
                    reason,
                    &description,
                    true,
                )
                .await;
                return Outcome::transient(reason, description);
            }
        };
        let copy = scheduled_copy(
            delivery.message,
            &task.task_id,
            task.correlation_id.as_deref(),
            counts,
            delay,
        );
        match bus.send(TRIGGER_QUEUE, &copy).await {
            Ok(()) => {
                info!(%reason, %description, delay_ms = delay.as_millis() as u64, retry = counts.retries, "retrying later; original completed");
                Outcome::Done(InvocationResponse::new().log(format!(
                    "task {}: {reason}; retry {} scheduled in {delay:?}",
                    task.task_id, counts.retries
                )))
            }
            Err(e) => {
                warn!(error = %e, "scheduling the retry failed; the message will be redelivered");
                self.remember(
                    delivery.message,
                    Some(&task.task_id),
                    reason,
                    &description,
                    false,
                )
                .await;
                Outcome::transient(reason, description)
            }
        }
    }

    /// Keeps the last error of a failing message by its id (best effort).
    pub(super) async fn remember(
        &self,
        message: &ServiceBusMessage,
        task_id: Option<&str>,
        reason: &str,
        description: &str,
        exhausted: bool,
    ) {
        let Some(id) = &message.properties.message_id else {
            return;
        };
        let record = LastError::new(
            id,
            task_id.map(str::to_owned),
            reason,
            description,
            exhausted,
            message.properties.delivery_count,
        );
        if let Err(e) = self.last_errors.record(&record).await {
            warn!(error = %e, "recording the last error failed");
        }
    }

    pub(super) async fn record_poison(
        &self,
        key: &str,
        body_sha256: &str,
        message: &ServiceBusMessage,
        reason: String,
        description: String,
    ) -> Outcome {
        error!(poison_key = %key, %reason, %description, "message is poison; recording the reason");
        let record = PoisonRecord {
            schema: POISON_SCHEMA.into(),
            key: key.to_string(),
            reason: reason.clone(),
            description: description.clone(),
            body_sha256: body_sha256.to_string(),
            message_id: message.properties.message_id.clone(),
            delivery_count: message.properties.delivery_count,
            recorded_at: chrono::Utc::now(),
        };
        if let Err(e) = self.poison.record(&record).await {
            // Still poison: the next delivery re-validates and tries to record again.
            error!(error = %e, poison_key = %key, "recording the poison reason failed");
        }
        self.remember(
            message,
            task_id_of(&message.body).as_deref(),
            &reason,
            &description,
            false,
        )
        .await;
        Outcome::Poison {
            reason,
            description,
            known: false,
        }
    }
}
