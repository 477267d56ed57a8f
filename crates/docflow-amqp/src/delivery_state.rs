//! Delivery states and outcomes (part 3, section 3.4): what a receiver says about a delivery
//! in `disposition` (and a sender in `transfer`). Service Bus maps them onto its settlements:
//! `accepted` completes, `modified` abandons or defers, `rejected` dead-letters, `released`
//! returns a message unread.

use crate::definitions::AmqpError;
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, Fields, into_described};
use crate::types::{Described, Value};

/// `received` (0x23): how much of a delivery arrived, for resuming a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// The section where the next transfer resumes (mandatory).
    pub section_number: u32,
    /// The offset in that section (mandatory).
    pub section_offset: u64,
}

/// `accepted` (0x24): the delivery succeeded; Service Bus completes the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted;

/// `rejected` (0x25): the delivery is invalid; Service Bus dead-letters the message, taking
/// the reason and description from `error.info`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rejected {
    /// Why, when the rejecting side says.
    pub error: Option<AmqpError>,
}

/// `released` (0x26): the delivery was not and will not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Released;

/// `modified` (0x27): the delivery was not processed; Service Bus abandons the message, or
/// defers it when `undeliverable_here` is true. The flags stay optional so that a broker can
/// echo exactly what the client sent, as the SDKs require.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Modified {
    /// Count the transfer as a failed delivery attempt.
    pub delivery_failed: Option<bool>,
    /// Do not deliver the message to this link again.
    pub undeliverable_here: Option<bool>,
    /// Annotations to merge into the message's.
    pub message_annotations: Fields,
}

/// Any delivery state or outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryState {
    /// `received`.
    Received(Received),
    /// `accepted`.
    Accepted(Accepted),
    /// `rejected`.
    Rejected(Rejected),
    /// `released`.
    Released(Released),
    /// `modified`.
    Modified(Modified),
    /// A state this crate does not model (the transactional ones of part 4), kept whole so
    /// that it can be refused or passed on.
    Other(Box<Described>),
}

impl DeliveryState {
    /// The state as a described value.
    pub fn to_value(&self) -> Value {
        match self {
            DeliveryState::Received(s) => s.to_value(),
            DeliveryState::Accepted(s) => s.to_value(),
            DeliveryState::Rejected(s) => s.to_value(),
            DeliveryState::Released(s) => s.to_value(),
            DeliveryState::Modified(s) => s.to_value(),
            DeliveryState::Other(d) => Value::Described(d.clone()),
        }
    }

    /// Reads any delivery state; an unknown descriptor becomes [`DeliveryState::Other`].
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        let described = into_described(value, "delivery-state")?;
        let d = &described.descriptor;
        let read: fn(Value) -> Result<Self, FieldError> = if Received::DESCRIPTOR.matches(d) {
            |v| Received::from_value(v).map(DeliveryState::Received)
        } else if Accepted::DESCRIPTOR.matches(d) {
            |v| Accepted::from_value(v).map(DeliveryState::Accepted)
        } else if Rejected::DESCRIPTOR.matches(d) {
            |v| Rejected::from_value(v).map(DeliveryState::Rejected)
        } else if Released::DESCRIPTOR.matches(d) {
            |v| Released::from_value(v).map(DeliveryState::Released)
        } else if Modified::DESCRIPTOR.matches(d) {
            |v| Modified::from_value(v).map(DeliveryState::Modified)
        } else {
            return Ok(DeliveryState::Other(Box::new(described)));
        };
        read(Value::Described(Box::new(described)))
    }

    /// Reads an optional delivery-state field.
    pub(crate) fn read(r: &mut FieldReader) -> Result<Option<Self>, FieldError> {
        match r.value() {
            Value::Null => Ok(None),
            other => Self::from_value(other).map(Some),
        }
    }

    /// Writes an optional delivery-state field.
    pub(crate) fn write(state: &Option<Self>) -> Value {
        state.as_ref().map_or(Value::Null, Self::to_value)
    }
}

impl Composite for Received {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x23,
        name: "amqp:received:list",
    };
    const NAME: &'static str = "received";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Uint(self.section_number),
            Value::Ulong(self.section_offset),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        let section_number = r.uint("section-number")?;
        let section_offset = r.ulong("section-offset")?;
        Ok(Self {
            section_number: r.required("section-number", section_number)?,
            section_offset: r.required("section-offset", section_offset)?,
        })
    }
}

impl Composite for Accepted {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x24,
        name: "amqp:accepted:list",
    };
    const NAME: &'static str = "accepted";

    fn fields(&self) -> Vec<Value> {
        Vec::new()
    }

    fn from_fields(_: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Accepted)
    }
}

impl Composite for Rejected {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x25,
        name: "amqp:rejected:list",
    };
    const NAME: &'static str = "rejected";

    fn fields(&self) -> Vec<Value> {
        vec![fields::composite(&self.error)]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            error: r.composite("error")?,
        })
    }
}

impl Composite for Released {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x26,
        name: "amqp:released:list",
    };
    const NAME: &'static str = "released";

    fn fields(&self) -> Vec<Value> {
        Vec::new()
    }

    fn from_fields(_: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Released)
    }
}

impl Composite for Modified {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x27,
        name: "amqp:modified:list",
    };
    const NAME: &'static str = "modified";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::opt(&self.delivery_failed),
            fields::opt(&self.undeliverable_here),
            fields::map(&self.message_annotations),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            delivery_failed: r.boolean("delivery-failed")?,
            undeliverable_here: r.boolean("undeliverable-here")?,
            message_annotations: r.map("message-annotations")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode_to_vec};

    fn round_trip(state: DeliveryState) -> Vec<u8> {
        let bytes = encode_to_vec(&state.to_value());
        let (value, _) = decode(&bytes).unwrap();
        assert_eq!(DeliveryState::from_value(value).unwrap(), state);
        bytes
    }

    // Part 3, section 3.4: each outcome is a described list; empty lists are list0.
    #[test]
    fn outcomes_encode_compactly() {
        assert_eq!(
            round_trip(DeliveryState::Accepted(Accepted)),
            [0x00, 0x53, 0x24, 0x45]
        );
        assert_eq!(
            round_trip(DeliveryState::Released(Released)),
            [0x00, 0x53, 0x26, 0x45]
        );
        assert_eq!(
            round_trip(DeliveryState::Rejected(Rejected::default())),
            [0x00, 0x53, 0x25, 0x45]
        );
        assert_eq!(
            round_trip(DeliveryState::Received(Received {
                section_number: 1,
                section_offset: 0
            })),
            [0x00, 0x53, 0x23, 0xc0, 0x04, 0x02, 0x52, 0x01, 0x44]
        );
        // Python's defer: modified{delivery-failed=true, undeliverable-here=true}.
        assert_eq!(
            round_trip(DeliveryState::Modified(Modified {
                delivery_failed: Some(true),
                undeliverable_here: Some(true),
                message_annotations: Vec::new(),
            })),
            [0x00, 0x53, 0x27, 0xc0, 0x03, 0x02, 0x41, 0x41]
        );
        // .NET's abandon, modified{}, stays distinct from an explicit false.
        assert_eq!(
            round_trip(DeliveryState::Modified(Modified::default())),
            [0x00, 0x53, 0x27, 0x45]
        );
    }

    #[test]
    fn rejected_carries_the_dead_letter_reason() {
        let mut error = AmqpError::new("com.microsoft:dead-letter", "");
        error.description = None;
        error.info = vec![(Value::symbol("DeadLetterReason"), Value::string("bad"))];
        round_trip(DeliveryState::Rejected(Rejected { error: Some(error) }));
    }

    #[test]
    fn symbolic_descriptors_and_unknown_states_are_read() {
        let mut bytes = vec![0x00, 0xa3, 18];
        bytes.extend(b"amqp:accepted:list");
        bytes.push(0x45);
        let (value, _) = decode(&bytes).unwrap();
        assert_eq!(
            DeliveryState::from_value(value).unwrap(),
            DeliveryState::Accepted(Accepted)
        );
        // transactional-state (0x34) of part 4 is kept as it is.
        let declared = Value::described(0x34, Value::List(vec![Value::Binary(vec![1])]));
        let state = DeliveryState::from_value(declared.clone()).unwrap();
        assert!(matches!(state, DeliveryState::Other(_)));
        assert_eq!(state.to_value(), declared);
        assert!(DeliveryState::from_value(Value::Null).is_err());
    }
}
