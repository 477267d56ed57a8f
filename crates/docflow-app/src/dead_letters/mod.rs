//! Dead-letter triage, for `docflow dlq` and the dashboard alike: read a dead-letter queue with
//! each message's recorded last error, select messages, group them by failure, resubmit them
//! to the queue or subscription they came from, or discard them, and audit every action.
//!
//! - [`signature`]: the normalised error signature and the groups of a dead-letter queue.
//! - [`bus`]: [`DeadLetterBus`], what a Service Bus must do for triage, and its implementation
//!   over the REST client (Azure or the embedded broker).
//! - [`audit`]: the audit record each resubmit or discard writes.
//!
//! A resubmitted message is a copy with a new `MessageId` (same body, correlation id, session
//! and properties, plus `x-docflow-resubmitted-from`), put back only in the entity it was
//! dead-lettered from: a subscription's dead letter never goes to its topic, where every other
//! subscription would get it again.

pub mod audit;
pub mod bus;
pub mod signature;

use std::collections::HashMap;

use serde_json::json;

pub use self::audit::{AuditTrail, DeadLetterAction};
pub use self::bus::DeadLetterBus;
use crate::last_errors::{LastError, LastErrors};
use docflow_servicebus::ClientError;
use docflow_servicebus::message::{Message, PropertyValue, ReceivedMessage};

/// Most dead-lettered messages one command handles.
pub const DEFAULT_MAX: usize = 10_000;

/// The application property a resubmitted copy carries: `{dlq}/{seq}#{original MessageId}`.
pub const RESUBMITTED_FROM: &str = "x-docflow-resubmitted-from";

/// Which messages an action takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every message.
    All,
    /// Those with this reason (the recorded one, or Service Bus's `DeadLetterReason`).
    Reason(String),
    /// Those with this reason and this normalised error signature (a dashboard group).
    Group {
        /// The reason.
        reason: String,
        /// The signature ([`signature::signature`] of the description).
        signature: String,
    },
    /// These sequence numbers.
    Sequences(Vec<i64>),
}

impl Selection {
    /// A reason matches the handler's recorded reason or Service Bus's own.
    pub fn matches(&self, m: &ReceivedMessage, joined: &Joined) -> bool {
        match self {
            Selection::All => true,
            Selection::Reason(r) => reason_of(m, joined) == r || m.dead_letter_reason() == Some(r),
            Selection::Group { reason, signature } => {
                reason_of(m, joined) == reason
                    && signature::signature(description_of(m, joined)) == *signature
            }
            Selection::Sequences(seqs) => seqs.contains(&m.sequence_number),
        }
    }

    /// In words, for questions and audit records.
    pub fn describe(&self) -> String {
        match self {
            Selection::All => "every message".into(),
            Selection::Reason(r) => format!("the messages with reason {r:?}"),
            Selection::Group { reason, signature } => {
                format!("the messages with reason {reason:?} and error {signature:?}")
            }
            Selection::Sequences(s) => format!("{} message(s)", s.len()),
        }
    }
}

/// Last-error records of the listed messages, by message id.
pub type Joined = HashMap<String, LastError>;

/// The handler's last-error records, when their blob store is reachable: a custom handler
/// cannot dead-letter with its own reason, so Service Bus says `MaxDeliveryCountExceeded` and
/// the record says why.
#[derive(Clone, Default)]
pub struct Reasons(pub Option<LastErrors>);

impl Reasons {
    /// The records of `messages` that have one.
    pub async fn join(&self, messages: &[ReceivedMessage]) -> Joined {
        let mut joined = HashMap::new();
        let Some(records) = &self.0 else {
            return joined;
        };
        for m in messages {
            if let Some(id) = &m.message.message_id
                && let Ok(Some(record)) = records.find(id).await
            {
                joined.insert(id.clone(), record);
            }
        }
        joined
    }
}

/// A message's recorded last error.
pub fn last_error<'a>(m: &ReceivedMessage, joined: &'a Joined) -> Option<&'a LastError> {
    m.message.message_id.as_ref().and_then(|id| joined.get(id))
}

/// The recorded reason, else Service Bus's.
pub fn reason_of<'a>(m: &'a ReceivedMessage, joined: &'a Joined) -> &'a str {
    last_error(m, joined)
        .map(|e| e.reason.as_str())
        .or(m.dead_letter_reason())
        .unwrap_or("-")
}

/// The recorded description, else Service Bus's.
pub fn description_of<'a>(m: &'a ReceivedMessage, joined: &'a Joined) -> &'a str {
    last_error(m, joined)
        .map(|e| e.description.as_str())
        .or(m.dead_letter_description())
        .unwrap_or("-")
}

/// The dead-letter queue of a queue or `topic/subscriptions/sub`.
pub fn dlq_path(entity: &str) -> String {
    format!("{}/$DeadLetterQueue", entity.trim_end_matches('/'))
}

/// The copy sent back: a new MessageId, the original's correlation id, session and properties
/// (without the broker's dead-letter properties), and where it came from.
pub fn resubmitted_copy(m: &ReceivedMessage, dlq: &str) -> Message {
    let mut copy = m.message.clone();
    copy.message_id = Some(uuid::Uuid::new_v4().simple().to_string());
    copy.scheduled_enqueue_time = None;
    copy.time_to_live = None;
    copy.remove_property("DeadLetterReason");
    copy.remove_property("DeadLetterErrorDescription");
    copy.properties.insert(
        RESUBMITTED_FROM.into(),
        PropertyValue::String(format!(
            "{dlq}/{}#{}",
            m.sequence_number,
            m.message.message_id.as_deref().unwrap_or("")
        )),
    );
    copy
}

/// The messages of a dead-letter queue that `selection` takes, with their last errors.
pub async fn select(
    bus: &dyn DeadLetterBus,
    reasons: &Reasons,
    entity: &str,
    selection: &Selection,
    max: usize,
) -> Result<(Vec<ReceivedMessage>, Joined), ClientError> {
    let all = bus.read(entity, max).await?;
    let joined = reasons.join(&all).await;
    let selected = all
        .into_iter()
        .filter(|m| selection.matches(m, &joined))
        .collect();
    Ok((selected, joined))
}

/// What a resubmit or discard did.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// Messages resubmitted or discarded.
    pub count: usize,
    /// Where they went (resubmit) or were removed from (discard).
    pub place: String,
    /// Sequence number, original MessageId and the copy's MessageId (resubmit) of each.
    pub messages: Vec<(i64, Option<String>, Option<String>)>,
}

/// Why a resubmit or discard did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// Service Bus failed; the messages acted on before are listed in the audit record.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The selection no longer takes the count confirmed; nothing was changed.
    #[error(
        "{selection} now selects {selected} message(s) in {dlq}, not the {confirmed} confirmed; nothing was changed"
    )]
    CountChanged {
        /// The selection in words.
        selection: String,
        /// The dead-letter queue.
        dlq: String,
        /// What it takes now.
        selected: usize,
        /// What was confirmed.
        confirmed: usize,
    },
}

impl SettleError {
    /// As a client error (for callers that report all failures alike).
    pub fn into_client_error(self) -> ClientError {
        match self {
            SettleError::Client(e) => e,
            other => ClientError::BadRequest(other.to_string()),
        }
    }
}

/// How [`settle`] runs, beyond what it acts on.
#[derive(Default, Clone, Copy)]
pub struct SettleOptions<'a> {
    /// Refuse (changing nothing) unless exactly this many messages are selected: a bulk action
    /// confirmed for a count acts on that count or not at all.
    pub expect: Option<usize>,
    /// Write one audit record of what was done here, naming this actor.
    pub audit: Option<(&'a AuditTrail, &'a str)>,
    /// Called after each message acted on with how many are done and how many were selected
    /// (a progress bar).
    pub on_each: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

/// Resubmits (to the entity it came from) or discards every message `selection` takes, as
/// `options` say.
pub async fn settle(
    bus: &dyn DeadLetterBus,
    reasons: &Reasons,
    entity: &str,
    selection: &Selection,
    action: DeadLetterAction,
    options: SettleOptions<'_>,
) -> Result<Settled, SettleError> {
    let SettleOptions {
        expect,
        audit,
        on_each,
    } = options;
    let dlq = dlq_path(entity);
    let taken = bus.take(entity, DEFAULT_MAX).await?;
    let joined = reasons.join(&taken).await;
    let (selected, others): (Vec<_>, Vec<_>) = taken
        .into_iter()
        .partition(|m| selection.matches(m, &joined));
    if let Some(n) = expect
        && n != selected.len()
    {
        bus.release(&selected).await?;
        bus.release(&others).await?;
        return Err(SettleError::CountChanged {
            selection: selection.describe(),
            dlq,
            selected: selected.len(),
            confirmed: n,
        });
    }
    bus.release(&others).await?;
    let mut done = Vec::new();
    let mut failure = None;
    for m in &selected {
        let step = match action {
            DeadLetterAction::Resubmit => {
                let copy = resubmitted_copy(m, &dlq);
                let id = copy.message_id.clone();
                bus.resubmit(entity, m, &copy).await.map(|()| id)
            }
            DeadLetterAction::Discard => bus.discard(entity, m).await.map(|()| None),
        };
        match step {
            Ok(copy_id) => {
                done.push((m.sequence_number, m.message.message_id.clone(), copy_id));
                if let Some(tick) = on_each {
                    tick(done.len(), selected.len());
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let place = match action {
        DeadLetterAction::Resubmit => entity.to_string(),
        DeadLetterAction::Discard => dlq,
    };
    let settled = Settled {
        count: done.len(),
        place,
        messages: done,
    };
    if let Some((trail, actor)) = audit
        && settled.count > 0
        && let Err(e) = trail
            .record(action, entity, selection, &settled, actor)
            .await
    {
        tracing::error!(error = %e, entity, "the dead-letter action could not be audited");
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(settled),
    }
}

/// A message as `docflow dlq list --json` and the dashboard show it.
pub fn summary_json(m: &ReceivedMessage, joined: &Joined) -> serde_json::Value {
    json!({
        "sequenceNumber": m.sequence_number,
        "messageId": m.message.message_id,
        "enqueuedTime": m.enqueued_time.to_rfc3339(),
        "deliveryCount": m.delivery_count,
        "reason": reason_of(m, joined),
        "description": description_of(m, joined),
        "deadLetterReason": m.dead_letter_reason(),
        "deadLetterErrorDescription": m.dead_letter_description(),
        "lastError": last_error(m, joined),
        "correlationId": m.message.correlation_id,
        "bodyPreview": preview(&m.message.body, 80),
    })
}

/// A message whole: its summary, body (text, else base64), properties and headers.
pub fn detail_json(m: &ReceivedMessage, joined: &Joined) -> serde_json::Value {
    let mut detail = summary_json(m, joined);
    detail["body"] = match std::str::from_utf8(&m.message.body) {
        Ok(text) => json!(text),
        Err(_) => {
            use base64::Engine as _;
            json!({"base64": base64::engine::general_purpose::STANDARD.encode(&m.message.body)})
        }
    };
    detail["properties"] = json!(
        m.message
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect::<serde_json::Map<_, _>>()
    );
    detail["contentType"] = json!(m.message.content_type);
    detail["sessionId"] = json!(m.message.session_id);
    detail["subject"] = json!(m.message.subject);
    detail
}

/// `s` cut to `width` characters, with an ellipsis when cut.
pub fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    }
}

/// A body's first `width` characters on one line.
pub fn preview(body: &[u8], width: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(flat.trim(), width)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead letter as a browse returns it.
    pub(crate) fn dead_letter(
        seq: i64,
        id: &str,
        reason: &str,
        description: &str,
    ) -> ReceivedMessage {
        let mut message = Message::new(format!("{{\"n\":{seq}}}")).with_correlation_id("c");
        message.message_id = Some(id.into());
        message.properties.insert(
            "DeadLetterReason".into(),
            PropertyValue::String(reason.into()),
        );
        message.properties.insert(
            "DeadLetterErrorDescription".into(),
            PropertyValue::String(description.into()),
        );
        ReceivedMessage {
            message,
            sequence_number: seq,
            enqueued_sequence_number: 0,
            enqueued_time: chrono::DateTime::from_timestamp(1_700_000_000 + seq, 0).unwrap(),
            expires_at: None,
            delivery_count: 1,
            lock_token: None,
            locked_until: None,
            state: docflow_servicebus::message::MessageState::Active,
            dead_letter_source: None,
            location: None,
        }
    }

    #[test]
    fn copies_have_a_new_id_and_say_where_they_came_from() {
        let m = dead_letter(7, "orig", "R", "d");
        let copy = resubmitted_copy(&m, "q/$DeadLetterQueue");
        assert_ne!(copy.message_id.as_deref(), Some("orig"));
        assert_eq!(copy.correlation_id.as_deref(), Some("c"));
        assert!(!copy.properties.contains_key("DeadLetterReason"));
        assert_eq!(
            copy.properties[RESUBMITTED_FROM].to_string(),
            "q/$DeadLetterQueue/7#orig"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(preview(b"a\nb", 10), "a b");
    }
}
