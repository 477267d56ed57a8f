//! The delivery performatives (part 2, sections 2.7.5 and 2.7.6): `transfer` and
//! `disposition`.

use crate::definitions::{ReceiverSettleMode, Role};
use crate::delivery_state::DeliveryState;
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader};
use crate::types::Value;

/// `transfer` (0x14): (part of) a message on a link; the message bytes follow it in the
/// frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transfer {
    /// The link's handle (mandatory).
    pub handle: u32,
    /// The delivery's id; mandatory on a delivery's first transfer.
    pub delivery_id: Option<u32>,
    /// The delivery's tag; mandatory on the first transfer. Service Bus uses the 16-byte
    /// lock token.
    pub delivery_tag: Option<Vec<u8>>,
    /// The message format; 0 is plain AMQP, 0x80013700 a Service Bus batch.
    pub message_format: Option<u32>,
    /// Whether the sender settled it; absent on the first transfer means false.
    pub settled: Option<bool>,
    /// More transfers of this delivery follow; default false.
    pub more: bool,
    /// Overrides the link's receiver settle mode for this delivery.
    pub rcv_settle_mode: Option<ReceiverSettleMode>,
    /// The delivery's state as the sender sees it.
    pub state: Option<DeliveryState>,
    /// Whether this resumes a delivery; default false.
    pub resume: bool,
    /// The delivery was aborted; default false.
    pub aborted: bool,
    /// The receiver may delay acknowledging; default false.
    pub batchable: bool,
}

impl Composite for Transfer {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x14,
        name: "amqp:transfer:list",
    };
    const NAME: &'static str = "transfer";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Uint(self.handle),
            fields::opt(&self.delivery_id),
            fields::opt(&self.delivery_tag),
            fields::opt(&self.message_format),
            fields::opt(&self.settled),
            fields::unless_default(self.more, false),
            fields::opt(&self.rcv_settle_mode),
            DeliveryState::write(&self.state),
            fields::unless_default(self.resume, false),
            fields::unless_default(self.aborted, false),
            fields::unless_default(self.batchable, false),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            handle: r.req("handle", FieldReader::uint)?,
            delivery_id: r.uint("delivery-id")?,
            delivery_tag: r.binary("delivery-tag")?,
            message_format: r.uint("message-format")?,
            settled: r.boolean("settled")?,
            more: r.boolean("more")?.unwrap_or(false),
            rcv_settle_mode: ReceiverSettleMode::read(r, "rcv-settle-mode")?,
            state: DeliveryState::read(r)?,
            resume: r.boolean("resume")?.unwrap_or(false),
            aborted: r.boolean("aborted")?.unwrap_or(false),
            batchable: r.boolean("batchable")?.unwrap_or(false),
        })
    }
}

/// `disposition` (0x15): the state or settlement of a range of deliveries. The broker echoes
/// each peek-lock settlement with a settled disposition of the same outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Disposition {
    /// The role of the peer sending it (mandatory).
    pub role: Role,
    /// The first delivery-id of the range (mandatory).
    pub first: u32,
    /// The last delivery-id; absent means `first` alone.
    pub last: Option<u32>,
    /// Whether the deliveries are settled; default false.
    pub settled: bool,
    /// The deliveries' state or outcome.
    pub state: Option<DeliveryState>,
    /// The peer may delay acknowledging; default false.
    pub batchable: bool,
}

impl Composite for Disposition {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x15,
        name: "amqp:disposition:list",
    };
    const NAME: &'static str = "disposition";

    fn fields(&self) -> Vec<Value> {
        vec![
            self.role.into(),
            Value::Uint(self.first),
            fields::opt(&self.last),
            fields::unless_default(self.settled, false),
            DeliveryState::write(&self.state),
            fields::unless_default(self.batchable, false),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            role: Role::from_bool(r.req("role", FieldReader::boolean)?),
            first: r.req("first", FieldReader::uint)?,
            last: r.uint("last")?,
            settled: r.boolean("settled")?.unwrap_or(false),
            state: DeliveryState::read(r)?,
            batchable: r.boolean("batchable")?.unwrap_or(false),
        })
    }
}
