//! Where invocations spend their time, per function: waiting in the queue (from enqueue, or
//! from the scheduled time, to receipt), in the handler (the HTTP call), and settling (complete
//! or abandon). Benchmarks read it to say where a document's time goes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use docflow_servicebus::message::ReceivedMessage;

/// Totals of one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionTimings {
    /// Invocations measured (messages, for a batch: each message counts).
    pub invocations: u64,
    /// Summed time from a message's enqueue (or scheduled) time to its receipt.
    pub queue_wait: Duration,
    /// Summed time of the calls to the handler.
    pub handler: Duration,
    /// Summed time of settling messages.
    pub settle: Duration,
}

impl FunctionTimings {
    /// Mean of a summed figure.
    pub fn mean(&self, total: Duration) -> Duration {
        total / self.invocations.max(1) as u32
    }
}

/// Timings of every function.
#[derive(Debug, Default)]
pub struct Timings(Mutex<BTreeMap<String, FunctionTimings>>);

impl Timings {
    /// Records one message's invocation.
    pub fn record(
        &self,
        function: &str,
        message: &ReceivedMessage,
        received_at: DateTime<Utc>,
        handler: Duration,
        settle: Duration,
    ) {
        let ready = message
            .message
            .scheduled_enqueue_time
            .map_or(message.enqueued_time, |s| s.max(message.enqueued_time));
        let wait = (received_at - ready).to_std().unwrap_or_default();
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = all.entry(function.to_string()).or_default();
        t.invocations += 1;
        t.queue_wait += wait;
        t.handler += handler;
        t.settle += settle;
    }

    /// What was recorded so far, by function name.
    pub fn snapshot(&self) -> BTreeMap<String, FunctionTimings> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
