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

/// Every endpoint's metrics text, in order, fetched at once.
pub async fn fetch_handlers(
    endpoints: &[crate::HandlerEndpoint],
) -> Vec<Result<String, reqwest::Error>> {
    futures_util::future::join_all(endpoints.iter().map(|e| fetch_handler(&e.url))).await
}

/// The handlers' metrics as one text, with a comment for each that could not be read: a
/// single instance's as it serves them; several instances' with their id on every sample
/// ([`merge_instances`]).
pub async fn handlers_text(endpoints: &[crate::HandlerEndpoint]) -> String {
    let texts = fetch_handlers(endpoints).await;
    let mut parts = Vec::new();
    let mut out = String::new();
    for (i, (endpoint, text)) in endpoints.iter().zip(texts).enumerate() {
        let instance = endpoint.instance.clone().unwrap_or_else(|| i.to_string());
        match text {
            Ok(text) => parts.push((instance, text)),
            Err(e) => {
                let _ = writeln!(
                    out,
                    "# the metrics of the handler of instance {instance} are unavailable: {}",
                    e.to_string().replace('\n', " ")
                );
            }
        }
    }
    if endpoints.len() == 1 {
        out.extend(parts.into_iter().map(|(_, text)| text));
    } else {
        out.push_str(&merge_instances(&parts));
    }
    out
}

/// The label that tells an instance's samples apart (OpenTelemetry's `service.instance.id`).
pub const INSTANCE_LABEL: &str = "service_instance_id";

/// Several instances' Prometheus texts, `(instance id, text)`, as one: every sample labelled
/// with its [`INSTANCE_LABEL`], and each metric's samples grouped under one `# HELP` and
/// `# TYPE`, as the text format requires of a metric.
pub fn merge_instances(parts: &[(String, String)]) -> String {
    #[derive(Default)]
    struct Family {
        help: Option<String>,
        kind: Option<String>,
        samples: Vec<String>,
    }
    /// The families in the order they first appear.
    #[derive(Default)]
    struct Families {
        list: Vec<Family>,
        index: std::collections::HashMap<String, usize>,
    }
    impl Families {
        fn get(&mut self, name: &str) -> &mut Family {
            let next = self.list.len();
            let i = *self.index.entry(name.to_owned()).or_insert(next);
            if i == next {
                self.list.push(Family::default());
            }
            &mut self.list[i]
        }
    }
    let mut families = Families::default();
    for (instance, text) in parts {
        let label = format!("{INSTANCE_LABEL}=\"{}\"", escape(instance));
        let mut current: Option<String> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let header = [("# HELP ", true), ("# TYPE ", false)]
                .into_iter()
                .find_map(|(prefix, help)| Some((line.strip_prefix(prefix)?, help)));
            if let Some((rest, help)) = header {
                let name = rest.split_whitespace().next().unwrap_or_default();
                let family = families.get(name);
                let slot = if help {
                    &mut family.help
                } else {
                    &mut family.kind
                };
                slot.get_or_insert_with(|| line.to_owned());
                current = Some(name.to_owned());
            } else if !line.starts_with('#') {
                let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
                let name = &line[..end];
                // A histogram's `_bucket`, `_sum` and `_count` belong to its family.
                let owner = match &current {
                    Some(c) if name.starts_with(c.as_str()) => c.clone(),
                    _ => name.to_owned(),
                };
                let labelled = match line[end..].strip_prefix('{') {
                    Some(rest) if rest.starts_with('}') => format!("{name}{{{label}{rest}"),
                    Some(rest) => format!("{name}{{{label},{rest}"),
                    None => format!("{name}{{{label}}}{}", &line[end..]),
                };
                families.get(&owner).samples.push(labelled);
            }
        }
    }
    let mut out = String::new();
    for f in &families.list {
        for line in f.help.iter().chain(&f.kind).chain(&f.samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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

    #[test]
    fn the_instances_samples_are_labelled_and_grouped_by_metric() {
        let a = "# HELP calls_total Calls.\n# TYPE calls_total counter\ncalls_total{status=\"ok\"} 3\n# TYPE wait_seconds histogram\nwait_seconds_bucket{le=\"1\"} 1\nwait_seconds_sum 0.5\nwait_seconds_count 1\n";
        let b = "# HELP calls_total Calls.\n# TYPE calls_total counter\ncalls_total{status=\"ok\"} 4\ncalls_total{} 1\n# EOF\n";
        let merged = merge_instances(&[("a".into(), a.into()), ("b\"".into(), b.into())]);
        assert_eq!(
            merged,
            "# HELP calls_total Calls.\n# TYPE calls_total counter\n\
             calls_total{service_instance_id=\"a\",status=\"ok\"} 3\n\
             calls_total{service_instance_id=\"b\\\"\",status=\"ok\"} 4\n\
             calls_total{service_instance_id=\"b\\\"\"} 1\n\
             # TYPE wait_seconds histogram\n\
             wait_seconds_bucket{service_instance_id=\"a\",le=\"1\"} 1\n\
             wait_seconds_sum{service_instance_id=\"a\"} 0.5\n\
             wait_seconds_count{service_instance_id=\"a\"} 1\n"
        );
        let scrape =
            prometheus_parse::Scrape::parse(merged.lines().map(|l| Ok(l.to_owned()))).unwrap();
        assert_eq!(scrape.samples.len(), 6);
    }
}
