//! The last delivery of a failing message: Service Bus dead-letters it after this abandon, so
//! the function tells the aggregator now that the task failed (directly over Service Bus, as a
//! non-2xx reply cannot carry outputs). Fan-in then completes without waiting for the deadline.

use tracing::{error, info};

use super::retry::RetryCounts;
use crate::poison::sha256_hex;
use crate::task::{TaskIdentity, TaskOutcome};
use docflow_custom_handler::protocol::ServiceBusMessage;
use docflow_servicebus::{Message, MessageSender};

/// The queue outcomes go to.
pub const OUTCOME_QUEUE: &str = "task-results";

/// Whether this delivery is the last before dead-lettering (`max`: the entity's
/// `MaxDeliveryCount`, when known).
pub fn is_last(message: &ServiceBusMessage, max: Option<u32>) -> bool {
    matches!((max, message.properties.delivery_count), (Some(max), Some(count)) if count >= max)
}

/// Sends the `failed` outcome of `task` for a message that is about to be dead-lettered. The
/// `MessageId` is stable per task and body, so a repeat is de-duplicated.
pub async fn report_failed(
    bus: &dyn MessageSender,
    message: &ServiceBusMessage,
    task: &TaskIdentity,
    reason: &str,
    description: &str,
) {
    let mut outcome = TaskOutcome::failed(task, reason, description);
    outcome.dead_lettered = true;
    let counts = RetryCounts::of(message);
    outcome.attempts = Some(counts.attempts(message));
    outcome.usage = counts.failed_usage;
    outcome.trace = crate::telemetry::messaging::for_message(OUTCOME_QUEUE);
    let message_id = format!(
        "{}:failed:{}",
        task.task_id,
        &sha256_hex(&message.body)[..16]
    );
    let sent = Message::new(serde_json::to_vec(&outcome).expect("an outcome serializes"))
        .with_message_id(message_id)
        .with_content_type("application/json");
    let mut sent = crate::telemetry::stamp(sent, outcome.trace.as_ref());
    sent.correlation_id = outcome.correlation_id.clone();
    match bus.send(OUTCOME_QUEUE, &sent).await {
        Ok(()) => {
            info!(task_id = %task.task_id, %reason, "last delivery failed; failed outcome sent")
        }
        Err(e) => error!(error = %e, task_id = %task.task_id, "sending the failed outcome failed"),
    }
}
