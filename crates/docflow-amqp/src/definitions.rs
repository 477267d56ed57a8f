//! The small definitions of part 2, section 2.8 that performatives share: roles, settlement
//! modes, and the `error` type that closes links, sessions and connections and rejects
//! deliveries.

use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, Fields};
use crate::types::Value;

/// Which end of a link a peer is (section 2.8.1), encoded as a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `false`: the peer sends messages on the link.
    Sender,
    /// `true`: the peer receives messages on the link.
    Receiver,
}

impl Role {
    pub(crate) fn from_bool(receiver: bool) -> Self {
        if receiver {
            Role::Receiver
        } else {
            Role::Sender
        }
    }
}

impl From<Role> for Value {
    fn from(role: Role) -> Self {
        Value::Boolean(role == Role::Receiver)
    }
}

/// How the sender settles deliveries (section 2.8.2), a `ubyte`; `Mixed` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SenderSettleMode {
    /// 0: the sender sends every delivery unsettled (peek-lock receivers ask for it).
    Unsettled,
    /// 1: the sender sends every delivery settled (receive-and-delete).
    Settled,
    /// 2: either, delivery by delivery.
    #[default]
    Mixed,
}

impl SenderSettleMode {
    pub(crate) fn read(r: &mut FieldReader, field: &'static str) -> Result<Self, FieldError> {
        match r.ubyte(field)? {
            None | Some(2) => Ok(SenderSettleMode::Mixed),
            Some(0) => Ok(SenderSettleMode::Unsettled),
            Some(1) => Ok(SenderSettleMode::Settled),
            Some(v) => Err(r.invalid(field, Value::Ubyte(v))),
        }
    }
}

impl From<SenderSettleMode> for Value {
    fn from(mode: SenderSettleMode) -> Self {
        Value::Ubyte(match mode {
            SenderSettleMode::Unsettled => 0,
            SenderSettleMode::Settled => 1,
            SenderSettleMode::Mixed => 2,
        })
    }
}

/// When the receiver settles (section 2.8.3), a `ubyte`; `First` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiverSettleMode {
    /// 0: the receiver settles first (receive-and-delete).
    #[default]
    First,
    /// 1: the receiver settles only after the sender has (peek-lock).
    Second,
}

impl ReceiverSettleMode {
    pub(crate) fn read(
        r: &mut FieldReader,
        field: &'static str,
    ) -> Result<Option<Self>, FieldError> {
        match r.ubyte(field)? {
            None => Ok(None),
            Some(0) => Ok(Some(ReceiverSettleMode::First)),
            Some(1) => Ok(Some(ReceiverSettleMode::Second)),
            Some(v) => Err(r.invalid(field, Value::Ubyte(v))),
        }
    }
}

impl From<ReceiverSettleMode> for Value {
    fn from(mode: ReceiverSettleMode) -> Self {
        Value::Ubyte(match mode {
            ReceiverSettleMode::First => 0,
            ReceiverSettleMode::Second => 1,
        })
    }
}

/// The spec's `error` (section 2.8.14, descriptor 0x1d): a condition symbol such as
/// `amqp:not-found` or `com.microsoft:message-lock-lost`, a description and an info map.
///
/// Use it in `detach`, `end`, `close` and `rejected`; Service Bus puts the dead-letter reason
/// and description in `info`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmqpError {
    /// The condition, a symbol (mandatory).
    pub condition: String,
    /// A human-readable description.
    pub description: Option<String>,
    /// More information, keys symbols by the spec.
    pub info: Fields,
}

impl AmqpError {
    /// An error with a condition and a description.
    pub fn new(condition: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            condition: condition.into(),
            description: Some(description.into()),
            info: Vec::new(),
        }
    }
}

impl Composite for AmqpError {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x1d,
        name: "amqp:error:list",
    };
    const NAME: &'static str = "error";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Symbol(self.condition.clone()),
            fields::string(&self.description),
            fields::map(&self.info),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        let condition = r.symbol("condition")?;
        Ok(Self {
            condition: r.required("condition", condition)?,
            description: r.string("description")?,
            info: r.map("info")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_to_vec;

    // Section 2.8.14: error is a described list [condition, description, info].
    #[test]
    fn error_encodes_as_a_described_list() {
        let e = AmqpError::new("amqp:not-found", "no q");
        let bytes = encode_to_vec(&e.to_value());
        let mut expected = vec![0x00, 0x53, 0x1d, 0xc0, 0x17, 0x02, 0xa3, 0x0e];
        expected.extend(b"amqp:not-found");
        expected.extend([0xa1, 0x04]);
        expected.extend(b"no q");
        assert_eq!(bytes, expected);
        assert_eq!(AmqpError::decode(&bytes).unwrap(), (e, bytes.len()));
    }

    #[test]
    fn error_needs_a_condition() {
        let bytes = [0x00, 0x53, 0x1d, 0x45];
        assert_eq!(
            AmqpError::decode(&bytes).unwrap_err(),
            FieldError::Missing {
                context: "error",
                field: "condition"
            }
        );
    }

    #[test]
    fn settle_modes_read_defaults_and_refuse_unknown_values() {
        let mut r = FieldReader::new(
            "attach",
            vec![Value::Null, Value::Ubyte(1), Value::Ubyte(9)],
        );
        assert_eq!(
            SenderSettleMode::read(&mut r, "snd-settle-mode").unwrap(),
            SenderSettleMode::Mixed
        );
        assert_eq!(
            ReceiverSettleMode::read(&mut r, "rcv-settle-mode").unwrap(),
            Some(ReceiverSettleMode::Second)
        );
        assert!(matches!(
            SenderSettleMode::read(&mut r, "snd-settle-mode"),
            Err(FieldError::InvalidValue {
                field: "snd-settle-mode",
                ..
            })
        ));
        assert_eq!(Value::from(Role::Receiver), Value::Boolean(true));
        assert_eq!(Role::from_bool(false), Role::Sender);
    }
}
