//! The link performatives (part 2, sections 2.7.3, 2.7.4 and 2.7.7): `attach`, `flow` and
//! `detach`.

use crate::definitions::{AmqpError, ReceiverSettleMode, Role, SenderSettleMode};
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, Fields};
use crate::terminus::{Source, Target};
use crate::types::Value;

/// `attach` (0x12): opens a link; the broker answers with its own, echoing the client's
/// source or target.
#[derive(Debug, Clone, PartialEq)]
pub struct Attach {
    /// The link's name (mandatory), unique per direction in a connection.
    pub name: String,
    /// The handle that frames on the link use (mandatory).
    pub handle: u32,
    /// The sending peer's role (mandatory).
    pub role: Role,
    /// Default [`SenderSettleMode::Mixed`].
    pub snd_settle_mode: SenderSettleMode,
    /// Default [`ReceiverSettleMode::First`].
    pub rcv_settle_mode: ReceiverSettleMode,
    /// Where messages come from.
    pub source: Option<Source>,
    /// Where messages go.
    pub target: Option<Target>,
    /// Unsettled deliveries by delivery tag, when resuming.
    pub unsettled: Fields,
    /// Whether `unsettled` is incomplete; default false.
    pub incomplete_unsettled: bool,
    /// The sender's first delivery-count. Absent in some .NET attaches: treat as 0.
    pub initial_delivery_count: Option<u32>,
    /// Largest message this peer accepts; absent or 0 means no limit.
    pub max_message_size: Option<u64>,
    /// Extensions this peer supports.
    pub offered_capabilities: Vec<String>,
    /// Extensions this peer would use.
    pub desired_capabilities: Vec<String>,
    /// Link properties (`com.microsoft:timeout`, `com.microsoft:locked-until-utc`...).
    pub properties: Fields,
}

impl Default for Attach {
    fn default() -> Self {
        Self {
            name: String::new(),
            handle: 0,
            role: Role::Sender,
            snd_settle_mode: SenderSettleMode::Mixed,
            rcv_settle_mode: ReceiverSettleMode::First,
            source: None,
            target: None,
            unsettled: Vec::new(),
            incomplete_unsettled: false,
            initial_delivery_count: None,
            max_message_size: None,
            offered_capabilities: Vec::new(),
            desired_capabilities: Vec::new(),
            properties: Vec::new(),
        }
    }
}

impl Composite for Attach {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x12,
        name: "amqp:attach:list",
    };
    const NAME: &'static str = "attach";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::String(self.name.clone()),
            Value::Uint(self.handle),
            self.role.into(),
            fields::unless_default(self.snd_settle_mode, SenderSettleMode::Mixed),
            fields::unless_default(self.rcv_settle_mode, ReceiverSettleMode::First),
            fields::composite(&self.source),
            fields::composite(&self.target),
            fields::map(&self.unsettled),
            fields::unless_default(self.incomplete_unsettled, false),
            fields::opt(&self.initial_delivery_count),
            fields::opt(&self.max_message_size),
            fields::symbols(&self.offered_capabilities),
            fields::symbols(&self.desired_capabilities),
            fields::map(&self.properties),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            name: r.req("name", FieldReader::string)?,
            handle: r.req("handle", FieldReader::uint)?,
            role: Role::from_bool(r.req("role", FieldReader::boolean)?),
            snd_settle_mode: SenderSettleMode::read(r, "snd-settle-mode")?,
            rcv_settle_mode: ReceiverSettleMode::read(r, "rcv-settle-mode")?.unwrap_or_default(),
            source: r.composite("source")?,
            target: r.composite("target")?,
            unsettled: r.map("unsettled")?,
            incomplete_unsettled: r.boolean("incomplete-unsettled")?.unwrap_or(false),
            initial_delivery_count: r.uint("initial-delivery-count")?,
            max_message_size: r.ulong("max-message-size")?,
            offered_capabilities: r.symbols("offered-capabilities")?,
            desired_capabilities: r.symbols("desired-capabilities")?,
            properties: r.map("properties")?,
        })
    }
}

/// `flow` (0x13): session windows and, with a handle, a link's credit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flow {
    /// The next transfer-id the sender of this flow expects.
    pub next_incoming_id: Option<u32>,
    /// Incoming session window (mandatory).
    pub incoming_window: u32,
    /// The next transfer-id this peer will send (mandatory).
    pub next_outgoing_id: u32,
    /// Outgoing session window (mandatory).
    pub outgoing_window: u32,
    /// The link this flow is about; absent for a session-only flow.
    pub handle: Option<u32>,
    /// The link's delivery-count.
    pub delivery_count: Option<u32>,
    /// The credit the receiver grants.
    pub link_credit: Option<u32>,
    /// Messages the sender has available.
    pub available: Option<u32>,
    /// Use up the credit, then report; default false.
    pub drain: bool,
    /// Ask the peer to answer with its own flow; default false.
    pub echo: bool,
    /// Link state properties.
    pub properties: Fields,
}

impl Composite for Flow {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x13,
        name: "amqp:flow:list",
    };
    const NAME: &'static str = "flow";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::opt(&self.next_incoming_id),
            Value::Uint(self.incoming_window),
            Value::Uint(self.next_outgoing_id),
            Value::Uint(self.outgoing_window),
            fields::opt(&self.handle),
            fields::opt(&self.delivery_count),
            fields::opt(&self.link_credit),
            fields::opt(&self.available),
            fields::unless_default(self.drain, false),
            fields::unless_default(self.echo, false),
            fields::map(&self.properties),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            next_incoming_id: r.uint("next-incoming-id")?,
            incoming_window: r.req("incoming-window", FieldReader::uint)?,
            next_outgoing_id: r.req("next-outgoing-id", FieldReader::uint)?,
            outgoing_window: r.req("outgoing-window", FieldReader::uint)?,
            handle: r.uint("handle")?,
            delivery_count: r.uint("delivery-count")?,
            link_credit: r.uint("link-credit")?,
            available: r.uint("available")?,
            drain: r.boolean("drain")?.unwrap_or(false),
            echo: r.boolean("echo")?.unwrap_or(false),
            properties: r.map("properties")?,
        })
    }
}

/// `detach` (0x16): detaches a link, closing it when `closed` is true.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detach {
    /// The link's handle (mandatory).
    pub handle: u32,
    /// Close the link rather than only detach it; default false.
    pub closed: bool,
    /// Why, when the link failed (`amqp:not-found`, `com.microsoft:session-lock-lost`...).
    pub error: Option<AmqpError>,
}

impl Composite for Detach {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x16,
        name: "amqp:detach:list",
    };
    const NAME: &'static str = "detach";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Uint(self.handle),
            fields::unless_default(self.closed, false),
            fields::composite(&self.error),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            handle: r.req("handle", FieldReader::uint)?,
            closed: r.boolean("closed")?.unwrap_or(false),
            error: r.composite("error")?,
        })
    }
}
