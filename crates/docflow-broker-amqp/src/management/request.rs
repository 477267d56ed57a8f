//! A management request read into an [`Operation`]: the `operation` application property and
//! the body, an amqp-value map with string keys. Values are read by their AMQP types as the
//! SDKs send them (lock tokens as `uuid`, sequence numbers as `long`, in arrays or lists); a
//! missing or mistyped entry is an argument error.

use std::collections::BTreeMap;

use docflow_amqp::Value;
use docflow_amqp::message::{Body, Message as AmqpMessage};
use docflow_broker::{ReceiveMode, SessionLock};
use docflow_servicebus::message::{Message, PropertyValue};
use docflow_servicebus::sas::Right;

use super::Failure;
use crate::convert::{property_value, to_broker_message};

/// What a management request asks for.
#[derive(Debug)]
pub(crate) enum Operation {
    /// `com.microsoft:renew-lock`.
    RenewLock { lock_tokens: Vec<String> },
    /// `com.microsoft:peek-message` (of one session when `session_id` is given).
    Peek {
        from: i64,
        count: usize,
        session_id: Option<String>,
    },
    /// `com.microsoft:schedule-message`: broker messages carrying their scheduled time.
    Schedule { messages: Vec<Message> },
    /// `com.microsoft:cancel-scheduled-message`.
    CancelScheduled { sequence_numbers: Vec<i64> },
    /// `com.microsoft:receive-by-sequence-number` (deferred messages).
    ReceiveDeferred {
        sequence_numbers: Vec<i64>,
        mode: ReceiveMode,
    },
    /// `com.microsoft:update-disposition`.
    UpdateDisposition {
        lock_tokens: Vec<String>,
        disposition: Disposition,
        properties: BTreeMap<String, PropertyValue>,
    },
    /// `com.microsoft:get-message-sessions`: the entity's sessions with messages or state
    /// (`last-updated-time` is accepted and not used: every such session is listed).
    MessageSessions { skip: u32, top: u32 },
    /// `com.microsoft:renew-session-lock`, `get-session-state`, `set-session-state`: on a
    /// session a receiver link of this connection holds, whose lock the connection fills in.
    Session {
        session_id: String,
        action: SessionAction,
        lock: Option<SessionLock>,
    },
}

/// What a session operation does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SessionAction {
    /// `com.microsoft:renew-session-lock`.
    RenewLock,
    /// `com.microsoft:get-session-state`.
    GetState,
    /// `com.microsoft:set-session-state` (`None` clears it).
    SetState(Option<Vec<u8>>),
}

/// The `disposition-status` of an `update-disposition`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Disposition {
    /// `completed`.
    Completed,
    /// `abandoned`.
    Abandoned,
    /// `defered` (sic, as the SDKs spell it; `deferred` is accepted too).
    Deferred,
    /// `suspended`: dead-letter, with the reason and description.
    Suspended { reason: String, description: String },
}

impl Operation {
    /// The right the entity's CBS token must grant: `Send` to schedule and cancel, `Listen`
    /// for the rest.
    pub(crate) fn right(&self) -> Right {
        match self {
            Operation::Schedule { .. } | Operation::CancelScheduled { .. } => Right::Send,
            _ => Right::Listen,
        }
    }
}

/// The request's `operation` application property.
pub(crate) fn operation_name(request: &AmqpMessage) -> Result<&str, Failure> {
    let operation = request
        .application_properties
        .iter()
        .flatten()
        .find(|(k, _)| k == "operation")
        .map(|(_, v)| v);
    match operation {
        Some(Value::String(s) | Value::Symbol(s)) => Ok(s),
        _ => Err(Failure::argument(
            "a management request needs the application property 'operation'",
        )),
    }
}

/// Reads the body of an `operation` request.
pub(crate) fn parse(operation: &str, body: &Body) -> Result<Operation, Failure> {
    let map = match body {
        Body::Value(Value::Map(map)) => Fields(map),
        _ => {
            return Err(Failure::argument(
                "the request body must be an amqp-value map",
            ));
        }
    };
    // `session-id` beside lock tokens (update-disposition, receive-by-sequence-number) names
    // the session the tokens belong to; the tokens alone identify the messages.
    let session_id = map.text("session-id")?;
    Ok(match operation {
        "com.microsoft:renew-lock" => Operation::RenewLock {
            lock_tokens: lock_tokens(&map)?,
        },
        "com.microsoft:peek-message" => {
            let from = map.integer("from-sequence-number")?;
            let count = map.integer("message-count")?;
            let count = usize::try_from(count)
                .map_err(|_| Failure::argument("message-count must not be negative"))?;
            Operation::Peek {
                from,
                count,
                session_id,
            }
        }
        "com.microsoft:get-message-sessions" => {
            let count = |name: &str| -> Result<u32, Failure> {
                u32::try_from(map.integer(name)?)
                    .map_err(|_| Failure::argument(format!("{name} must be 0 or more")))
            };
            Operation::MessageSessions {
                skip: count("skip")?,
                top: count("top")?,
            }
        }
        "com.microsoft:renew-session-lock" => session(session_id, SessionAction::RenewLock)?,
        "com.microsoft:get-session-state" => session(session_id, SessionAction::GetState)?,
        "com.microsoft:set-session-state" => {
            let state = match map.get("session-state") {
                None | Some(Value::Null) => None,
                Some(Value::Binary(bytes)) => Some(bytes.clone()),
                Some(other) => {
                    return Err(Failure::argument(format!(
                        "session-state is a {}, not binary",
                        other.type_name()
                    )));
                }
            };
            session(session_id, SessionAction::SetState(state))?
        }
        "com.microsoft:schedule-message" => Operation::Schedule {
            messages: scheduled_messages(&map)?,
        },
        "com.microsoft:cancel-scheduled-message" => Operation::CancelScheduled {
            sequence_numbers: map.integers("sequence-numbers")?,
        },
        "com.microsoft:receive-by-sequence-number" => {
            // 0 (settle on send) is receive-and-delete; 1 (second), the default, peek-lock.
            let mode = match map.get("receiver-settle-mode") {
                None | Some(Value::Null) => ReceiveMode::PeekLock,
                Some(_) => match map.integer("receiver-settle-mode")? {
                    0 => ReceiveMode::ReceiveAndDelete,
                    1 => ReceiveMode::PeekLock,
                    n => {
                        return Err(Failure::argument(format!(
                            "receiver-settle-mode {n} is neither 0 nor 1"
                        )));
                    }
                },
            };
            Operation::ReceiveDeferred {
                sequence_numbers: map.integers("sequence-numbers")?,
                mode,
            }
        }
        "com.microsoft:update-disposition" => update_disposition(&map)?,
        other => {
            return Err(Failure::not_implemented(format!(
                "the management operation {other:?} is not served"
            )));
        }
    })
}

/// A session operation: `session-id` is required.
fn session(session_id: Option<String>, action: SessionAction) -> Result<Operation, Failure> {
    let session_id = session_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::argument("a session operation needs 'session-id'"))?;
    Ok(Operation::Session {
        session_id,
        action,
        lock: None,
    })
}

fn update_disposition(map: &Fields<'_>) -> Result<Operation, Failure> {
    let status = map.text("disposition-status")?.unwrap_or_default();
    let disposition = match status.as_str() {
        "completed" => Disposition::Completed,
        "abandoned" => Disposition::Abandoned,
        "defered" | "deferred" => Disposition::Deferred,
        "suspended" => Disposition::Suspended {
            reason: map.text("deadletter-reason")?.unwrap_or_default(),
            description: map.text("deadletter-description")?.unwrap_or_default(),
        },
        other => {
            return Err(Failure::argument(format!(
                "disposition-status {other:?} is not one of completed, abandoned, suspended, defered"
            )));
        }
    };
    let mut properties = BTreeMap::new();
    match map.get("properties-to-modify") {
        None | Some(Value::Null) => {}
        Some(Value::Map(entries)) => {
            for (key, value) in entries {
                let (Value::String(key) | Value::Symbol(key)) = key else {
                    return Err(Failure::argument("properties-to-modify needs string keys"));
                };
                let value = property_value(value).ok_or_else(|| {
                    Failure::argument(format!(
                        "properties-to-modify: {key} is a {}, not a simple value",
                        value.type_name()
                    ))
                })?;
                properties.insert(key.clone(), value);
            }
        }
        Some(other) => {
            return Err(Failure::argument(format!(
                "properties-to-modify must be a map, not a {}",
                other.type_name()
            )));
        }
    }
    Ok(Operation::UpdateDisposition {
        lock_tokens: lock_tokens(map)?,
        disposition,
        properties,
    })
}

/// `lock-tokens`: uuids (RFC byte order) as the broker's token text. Strings holding a uuid
/// are accepted too.
fn lock_tokens(map: &Fields<'_>) -> Result<Vec<String>, Failure> {
    map.items("lock-tokens")?
        .iter()
        .map(|v| match v {
            Value::Uuid(bytes) => Ok(uuid::Uuid::from_bytes(*bytes).to_string()),
            Value::String(s) => uuid::Uuid::parse_str(s)
                .map(|u| u.to_string())
                .map_err(|_| Failure::argument(format!("lock token {s:?} is not a uuid"))),
            other => Err(Failure::argument(format!(
                "lock-tokens holds a {}, not a uuid",
                other.type_name()
            ))),
        })
        .collect()
}

/// `messages` of a schedule request: maps `{message: binary, message-id, session-id?,
/// partition-key?}`, each `message` a complete encoded AMQP message whose annotations carry
/// `x-opt-scheduled-enqueue-time`.
fn scheduled_messages(map: &Fields<'_>) -> Result<Vec<Message>, Failure> {
    let mut messages = Vec::new();
    for (index, entry) in map.items("messages")?.iter().enumerate() {
        let Value::Map(entry) = entry else {
            return Err(Failure::argument(format!(
                "messages[{index}] is a {}, not a map",
                entry.type_name()
            )));
        };
        let entry = Fields(entry);
        let Some(Value::Binary(encoded)) = entry.get("message") else {
            return Err(Failure::argument(format!(
                "messages[{index}] needs 'message', a binary encoded message"
            )));
        };
        let amqp = AmqpMessage::decode(encoded)
            .map_err(|e| Failure::argument(format!("messages[{index}] does not decode: {e}")))?;
        let mut message = to_broker_message(&amqp);
        if message.message_id.is_none() {
            message.message_id = entry.text("message-id")?;
        }
        if message.session_id.is_none() {
            message.session_id = entry.text("session-id")?;
        }
        if message.partition_key.is_none() {
            message.partition_key = entry.text("partition-key")?;
        }
        messages.push(message);
    }
    Ok(messages)
}

/// A request map, looked up by string (or symbol) keys.
struct Fields<'a>(&'a [(Value, Value)]);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| matches!(k, Value::String(s) | Value::Symbol(s) if s == name))
            .map(|(_, v)| v)
    }

    fn required(&self, name: &str) -> Result<&Value, Failure> {
        self.get(name)
            .ok_or_else(|| Failure::argument(format!("the request body needs '{name}'")))
    }

    /// An integer of any AMQP integer type.
    fn integer(&self, name: &str) -> Result<i64, Failure> {
        integer(self.required(name)?)
            .ok_or_else(|| Failure::argument(format!("'{name}' must be an integer")))
    }

    /// The items of an array or list.
    fn items(&self, name: &str) -> Result<&[Value], Failure> {
        match self.required(name)? {
            Value::Array(array) => Ok(array.items()),
            Value::List(items) => Ok(items),
            other => Err(Failure::argument(format!(
                "'{name}' must be an array, not a {}",
                other.type_name()
            ))),
        }
    }

    fn integers(&self, name: &str) -> Result<Vec<i64>, Failure> {
        self.items(name)?
            .iter()
            .map(|v| {
                integer(v).ok_or_else(|| {
                    Failure::argument(format!("'{name}' holds a {}, not a long", v.type_name()))
                })
            })
            .collect()
    }

    /// An optional string (or symbol).
    fn text(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s) | Value::Symbol(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Failure::argument(format!(
                "'{name}' must be a string, not a {}",
                other.type_name()
            ))),
        }
    }
}

fn integer(value: &Value) -> Option<i64> {
    Some(match value {
        Value::Byte(n) => i64::from(*n),
        Value::Short(n) => i64::from(*n),
        Value::Int(n) => i64::from(*n),
        Value::Long(n) => *n,
        Value::Ubyte(n) => i64::from(*n),
        Value::Ushort(n) => i64::from(*n),
        Value::Uint(n) => i64::from(*n),
        Value::Ulong(n) => i64::try_from(*n).ok()?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use docflow_amqp::{Array, ElementType};

    use super::*;

    fn body(entries: Vec<(&str, Value)>) -> Body {
        Body::Value(Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        ))
    }

    #[test]
    fn lock_tokens_are_uuids_in_rfc_order() {
        let uuid = uuid::Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        let tokens = Array::new(None, ElementType::Uuid, vec![Value::Uuid(*uuid.as_bytes())]);
        let request = body(vec![("lock-tokens", Value::Array(tokens.unwrap()))]);
        let Operation::RenewLock { lock_tokens } =
            parse("com.microsoft:renew-lock", &request).unwrap()
        else {
            panic!("expected renew-lock");
        };
        assert_eq!(lock_tokens, ["00112233-4455-6677-8899-aabbccddeeff"]);
    }

    #[test]
    fn update_disposition_reads_the_sdks_spelling_and_the_dead_letter_fields() {
        let request = body(vec![
            ("lock-tokens", Value::List(vec![Value::Uuid([1; 16])])),
            ("disposition-status", Value::String("suspended".into())),
            ("deadletter-reason", Value::String("bad".into())),
            ("deadletter-description", Value::String("very".into())),
            (
                "properties-to-modify",
                Value::Map(vec![(Value::String("n".into()), Value::Int(3))]),
            ),
        ]);
        let Operation::UpdateDisposition {
            disposition,
            properties,
            ..
        } = parse("com.microsoft:update-disposition", &request).unwrap()
        else {
            panic!("expected update-disposition");
        };
        assert_eq!(
            disposition,
            Disposition::Suspended {
                reason: "bad".into(),
                description: "very".into()
            }
        );
        assert_eq!(properties.get("n"), Some(&PropertyValue::Int(3)));
        let defer = body(vec![
            ("lock-tokens", Value::List(vec![])),
            ("disposition-status", Value::String("defered".into())),
        ]);
        assert!(matches!(
            parse("com.microsoft:update-disposition", &defer),
            Ok(Operation::UpdateDisposition {
                disposition: Disposition::Deferred,
                ..
            })
        ));
    }

    #[test]
    fn wrong_types_are_argument_errors() {
        let request = body(vec![("lock-tokens", Value::Long(1))]);
        let error = parse("com.microsoft:renew-lock", &request).unwrap_err();
        assert_eq!(error.condition, "com.microsoft:argument-error");
        let error = parse("com.microsoft:peek-message", &Body::Value(Value::Null)).unwrap_err();
        assert_eq!(error.status, 400);
        let request = body(vec![("session-state", Value::Long(1))]);
        let error = parse("com.microsoft:set-session-state", &request).unwrap_err();
        assert_eq!(error.status, 400, "no session-id");
    }

    #[test]
    fn session_operations_name_their_session_and_carry_state_as_binary() {
        let request = body(vec![
            ("session-id", Value::String("s-1".into())),
            ("session-state", Value::Binary(b"state".to_vec())),
        ]);
        let Operation::Session {
            session_id, action, ..
        } = parse("com.microsoft:set-session-state", &request).unwrap()
        else {
            panic!("a session operation");
        };
        assert_eq!(session_id, "s-1");
        assert_eq!(action, SessionAction::SetState(Some(b"state".to_vec())));
        let request = body(vec![
            ("session-id", Value::String("s-1".into())),
            ("session-state", Value::Null),
        ]);
        let Operation::Session { action, .. } =
            parse("com.microsoft:set-session-state", &request).unwrap()
        else {
            panic!("a session operation");
        };
        assert_eq!(action, SessionAction::SetState(None), "null clears it");
        let request = body(vec![("session-id", Value::String("s-1".into()))]);
        assert!(matches!(
            parse("com.microsoft:renew-session-lock", &request).unwrap(),
            Operation::Session {
                action: SessionAction::RenewLock,
                ..
            }
        ));
        let request = body(vec![("skip", Value::Int(0)), ("top", Value::Int(10))]);
        assert!(matches!(
            parse("com.microsoft:get-message-sessions", &request).unwrap(),
            Operation::MessageSessions { skip: 0, top: 10 }
        ));
        let request = body(vec![("skip", Value::Int(-1)), ("top", Value::Int(10))]);
        let error = parse("com.microsoft:get-message-sessions", &request).unwrap_err();
        assert_eq!(error.status, 400);
        let error = parse("com.microsoft:no-such-operation", &request).unwrap_err();
        assert_eq!(
            (error.status, error.condition),
            (501, "amqp:not-implemented")
        );
    }
}
