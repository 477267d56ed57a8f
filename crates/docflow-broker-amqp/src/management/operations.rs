//! Each management operation against the broker, and its response body in the exact types
//! the SDKs read: `expirations` an array of timestamps, `sequence-numbers` an array of longs,
//! `messages` a list of maps whose `message` is a complete encoded AMQP message and whose
//! `lock-token` is a uuid.

use docflow_amqp::{Array, ElementType, Value};
use docflow_broker::{Broker, ReceiveMode, Settlement};
use docflow_servicebus::message::ReceivedMessage;

use super::request::{Disposition, Operation, SessionAction};
use super::{Failure, Node, Response};
use crate::convert::to_amqp_message;

/// The most messages one peek returns (the SDKs ask for what the caller wants; this bounds
/// the reply).
const MAX_PEEK: usize = 1000;
/// The sequence number reported for a scheduled message the broker did not store (a
/// duplicate dropped by duplicate detection, or a topic message no subscription wanted).
const NOT_STORED: i64 = -1;

/// Carries out one operation on `node`.
pub(super) async fn execute(
    broker: &Broker,
    node: &Node,
    operation: Operation,
) -> Result<Response, Failure> {
    match operation {
        Operation::RenewLock { lock_tokens } => {
            let mut expirations = Vec::with_capacity(lock_tokens.len());
            for token in &lock_tokens {
                let until = broker
                    .renew_message_lock(&node.key, node.dlq, token, None)
                    .await?;
                expirations.push(Value::Timestamp(until));
            }
            let expirations = array(ElementType::Timestamp, expirations);
            Ok(Response::ok(vec![("expirations", expirations)]))
        }
        Operation::Peek {
            from,
            count,
            session_id,
        } => {
            let count = count.min(MAX_PEEK);
            if count == 0 {
                return Ok(Response::no_content());
            }
            let found = match session_id {
                None => broker.browse(&node.key, node.dlq, from, count).await?,
                // A session receiver peeks its own session: look through a page of the
                // entity and keep that session's messages.
                Some(id) => broker
                    .browse(&node.key, node.dlq, from, MAX_PEEK)
                    .await?
                    .into_iter()
                    .filter(|m| m.message.session_id.as_deref() == Some(id.as_str()))
                    .take(count)
                    .collect(),
            };
            if found.is_empty() {
                return Ok(Response::no_content());
            }
            let messages = found.iter().map(|m| entry(m, false)).collect::<Vec<_>>();
            Ok(Response::ok(vec![("messages", Value::List(messages))]))
        }
        Operation::Schedule { messages } => {
            if node.dlq {
                return Err(Failure::argument(
                    "messages cannot be scheduled on a dead-letter queue",
                ));
            }
            let stored = broker.send(&node.key, messages).await?;
            let numbers = stored
                .into_iter()
                .map(|seq| Value::Long(seq.unwrap_or(NOT_STORED)))
                .collect();
            let numbers = array(ElementType::Long, numbers);
            Ok(Response::ok(vec![("sequence-numbers", numbers)]))
        }
        Operation::CancelScheduled { sequence_numbers } => {
            if node.dlq {
                return Err(Failure::argument(
                    "a dead-letter queue holds no scheduled messages",
                ));
            }
            for seq in sequence_numbers {
                broker.cancel_scheduled(&node.key, seq).await?;
            }
            Ok(Response::done())
        }
        Operation::ReceiveDeferred {
            sequence_numbers,
            mode,
        } => receive_deferred(broker, node, &sequence_numbers, mode).await,
        Operation::UpdateDisposition {
            lock_tokens,
            disposition,
            properties,
        } => {
            let settlement = match disposition {
                Disposition::Completed => Settlement::Complete,
                Disposition::Abandoned => Settlement::Abandon,
                Disposition::Deferred => Settlement::Defer,
                Disposition::Suspended {
                    reason,
                    description,
                } => Settlement::DeadLetter {
                    reason,
                    description,
                },
            };
            for token in &lock_tokens {
                broker
                    .settle_modified(
                        &node.key,
                        node.dlq,
                        token,
                        settlement.clone(),
                        properties.clone(),
                    )
                    .await?;
            }
            Ok(Response::done())
        }
        Operation::MessageSessions { skip, top } => {
            let ids = broker.message_sessions(&node.key, skip, top).await?;
            if ids.is_empty() {
                return Ok(Response::no_content());
            }
            let ids = ids.into_iter().map(Value::String).collect();
            Ok(Response::ok(vec![
                ("skip", Value::Int(i32::try_from(skip).unwrap_or(i32::MAX))),
                ("sessions-ids", array(ElementType::String, ids)),
            ]))
        }
        Operation::Session {
            session_id,
            action,
            lock,
        } => {
            let lock = lock.ok_or_else(|| Failure::session_not_held(&session_id))?;
            match action {
                SessionAction::RenewLock => {
                    let until = broker.renew_session_lock(&node.key, &lock).await?;
                    Ok(Response::ok(vec![("expiration", Value::Timestamp(until))]))
                }
                SessionAction::GetState => {
                    let state = broker.session_state(&node.key, &lock).await?;
                    let state = state.map_or(Value::Null, Value::Binary);
                    Ok(Response::ok(vec![("session-state", state)]))
                }
                SessionAction::SetState(state) => {
                    broker.set_session_state(&node.key, &lock, state).await?;
                    Ok(Response::done())
                }
            }
        }
    }
}

/// Deferred messages by sequence number, locked (peek-lock) or removed (receive-and-delete).
async fn receive_deferred(
    broker: &Broker,
    node: &Node,
    sequence_numbers: &[i64],
    mode: ReceiveMode,
) -> Result<Response, Failure> {
    if node.dlq {
        // The broker defers no message of a dead-letter queue.
        return Err(Failure::message_not_found(format!(
            "no deferred message with sequence number {sequence_numbers:?} in a dead-letter queue"
        )));
    }
    let mut messages = Vec::with_capacity(sequence_numbers.len());
    for seq in sequence_numbers {
        let mut message = broker.receive_deferred(&node.key, *seq).await?;
        if mode == ReceiveMode::ReceiveAndDelete {
            if let Some(token) = message.lock_token.take() {
                broker
                    .settle(&node.key, false, &token, None, Settlement::Complete)
                    .await?;
            }
            message.locked_until = None;
        }
        messages.push(entry(&message, true));
    }
    Ok(Response::ok(vec![("messages", Value::List(messages))]))
}

/// One `messages` entry: `{message: binary}`, with `lock-token` (uuid) when the message is
/// locked. A locked message also carries its token as the delivery annotation
/// `x-opt-lock-token` (uuid), where Python's SDK reads it.
fn entry(received: &ReceivedMessage, with_lock: bool) -> Value {
    let mut amqp = to_amqp_message(received);
    let token = received
        .lock_token
        .as_deref()
        .filter(|_| with_lock)
        .and_then(|t| uuid::Uuid::parse_str(t).ok())
        .map(|u| Value::Uuid(*u.as_bytes()));
    if let Some(token) = &token {
        amqp.delivery_annotations = Some(vec![(
            Value::Symbol("x-opt-lock-token".into()),
            token.clone(),
        )]);
    }
    let mut map = vec![(
        Value::String("message".into()),
        Value::Binary(amqp.encode()),
    )];
    if let Some(token) = token {
        map.push((Value::String("lock-token".into()), token));
    }
    Value::Map(map)
}

/// An array of one element type; every item was built with that type.
fn array(element: ElementType, items: Vec<Value>) -> Value {
    match Array::new(None, element, items) {
        Ok(array) => Value::Array(array),
        // Unreachable: the callers build items of `element` only. A list keeps the values.
        Err(e) => {
            tracing::warn!(error = %e, "a management array mixed types");
            Value::List(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docflow_amqp::message::Message as AmqpMessage;
    use docflow_servicebus::message::{Message, MessageState};

    fn received(token: Option<&str>) -> ReceivedMessage {
        ReceivedMessage {
            message: Message::new("b"),
            sequence_number: 7,
            enqueued_sequence_number: 7,
            enqueued_time: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            expires_at: None,
            delivery_count: 1,
            lock_token: token.map(str::to_owned),
            locked_until: None,
            state: MessageState::Deferred,
            dead_letter_source: None,
            location: None,
        }
    }

    #[test]
    fn a_locked_entry_carries_its_token_as_a_uuid_twice() {
        let token = "00112233-4455-6677-8899-aabbccddeeff";
        let Value::Map(map) = entry(&received(Some(token)), true) else {
            panic!("a map");
        };
        let uuid = Value::Uuid(*uuid::Uuid::parse_str(token).unwrap().as_bytes());
        assert_eq!(map[1], (Value::String("lock-token".into()), uuid.clone()));
        let Value::Binary(encoded) = &map[0].1 else {
            panic!("binary");
        };
        let message = AmqpMessage::decode(encoded).unwrap();
        assert_eq!(
            message.delivery_annotations.unwrap(),
            vec![(Value::Symbol("x-opt-lock-token".into()), uuid)]
        );
        let Value::Map(peeked) = entry(&received(Some(token)), false) else {
            panic!("a map");
        };
        assert_eq!(peeked.len(), 1, "a peeked message has no lock token");
    }
}
