//! `GET /metrics` of `docflow dev`: the broker's gauges per queue and subscription, named after
//! Azure Monitor's Service Bus metrics (`ActiveMessages` → `servicebus_active_messages`, ...),
//! then the handler's own metrics as its `GET /metrics` serves them, in Prometheus text.

use std::fmt::Write as _;
use std::time::Duration;

use crate::sources::Bus;

/// How long the handler's metrics are waited for.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);

/// The gauges of each entity: name, help, and how a sample gives the value.
type Gauge = (
    &'static str,
    &'static str,
    fn(&crate::sources::EntitySample) -> Option<f64>,
);

const GAUGES: [Gauge; 4] = [
    (
        "servicebus_active_messages",
        "Active messages in a queue or subscription (Azure Monitor: ActiveMessages)",
        |s| Some(s.active as f64),
    ),
    (
        "servicebus_scheduled_messages",
        "Scheduled messages (Azure Monitor: ScheduledMessages)",
        |s| Some(s.scheduled as f64),
    ),
    (
        "servicebus_deadlettered_messages",
        "Dead-lettered messages (Azure Monitor: DeadletteredMessages)",
        |s| Some(s.dead_lettered as f64),
    ),
    (
        "servicebus_oldest_message_age_seconds",
        "Age of the oldest active message (0 when there is none; absent where the namespace cannot be browsed)",
        |s| {
            s.browsed.then(|| {
                s.oldest_active.map_or(0.0, |t| {
                    ((s.at - t).num_milliseconds().max(0) as f64) / 1000.0
                })
            })
        },
    ),
];

/// The broker's gauges for every queue and subscription of `bus`: `entity` is the queue or
/// topic, `subscription` the subscription's name.
pub async fn broker_text(bus: &dyn Bus) -> String {
    let samples: Vec<_> = match bus.samples().await {
        Ok(all) => all
            .into_iter()
            .map(|(entity, sample)| (labels(&entity.path), sample))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "no samples");
            Vec::new()
        }
    };
    let mut out = String::new();
    for (name, help, value) in GAUGES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, sample) in &samples {
            if let Some(v) = value(sample) {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
    out
}

/// `entity="q"` or `entity="topic",subscription="sub"`.
fn labels(path: &str) -> String {
    match path.split_once("/subscriptions/") {
        Some((topic, sub)) => format!(
            "entity=\"{}\",subscription=\"{}\"",
            escape(topic),
            escape(sub)
        ),
        None => format!("entity=\"{}\"", escape(path)),
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The handler's metrics from `url`, as it serves them.
pub async fn fetch_handler(url: &str) -> Result<String, reqwest::Error> {
    reqwest::Client::new()
        .get(url)
        .timeout(HANDLER_TIMEOUT)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The handler's metrics from `url`, or a comment saying why there are none.
pub async fn handler_text(url: &str) -> String {
    match fetch_handler(url).await {
        Ok(text) => text,
        Err(e) => format!(
            "# the handler's metrics are unavailable: {}\n",
            e.to_string().replace('\n', " ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_and_subscriptions_are_labelled_apart() {
        assert_eq!(labels("ai-tasks"), "entity=\"ai-tasks\"");
        assert_eq!(
            labels("documents/subscriptions/analyze"),
            "entity=\"documents\",subscription=\"analyze\""
        );
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
