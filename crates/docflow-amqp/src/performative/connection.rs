//! The connection and session performatives (part 2, sections 2.7.1-2.7.2 and 2.7.8-2.7.9):
//! `open`, `begin`, `end` and `close`.

use crate::definitions::AmqpError;
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, Fields};
use crate::types::Value;

/// `open` (0x10): the first frame of a connection in each direction, after SASL.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The container's id (mandatory).
    pub container_id: String,
    /// The host the client wants (a virtual host name).
    pub hostname: Option<String>,
    /// Largest frame this peer accepts; default `u32::MAX`.
    pub max_frame_size: u32,
    /// Highest channel number this peer allows; default 65535.
    pub channel_max: u16,
    /// Milliseconds of silence after which this peer closes the connection.
    pub idle_time_out: Option<u32>,
    /// Locales this peer writes in.
    pub outgoing_locales: Vec<String>,
    /// Locales this peer reads, most preferred first.
    pub incoming_locales: Vec<String>,
    /// Extensions this peer supports.
    pub offered_capabilities: Vec<String>,
    /// Extensions this peer would use.
    pub desired_capabilities: Vec<String>,
    /// Connection properties.
    pub properties: Fields,
}

impl Default for Open {
    fn default() -> Self {
        Self {
            container_id: String::new(),
            hostname: None,
            max_frame_size: u32::MAX,
            channel_max: u16::MAX,
            idle_time_out: None,
            outgoing_locales: Vec::new(),
            incoming_locales: Vec::new(),
            offered_capabilities: Vec::new(),
            desired_capabilities: Vec::new(),
            properties: Vec::new(),
        }
    }
}

impl Composite for Open {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x10,
        name: "amqp:open:list",
    };
    const NAME: &'static str = "open";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::String(self.container_id.clone()),
            fields::string(&self.hostname),
            fields::unless_default(self.max_frame_size, u32::MAX),
            fields::unless_default(self.channel_max, u16::MAX),
            fields::opt(&self.idle_time_out),
            fields::symbols(&self.outgoing_locales),
            fields::symbols(&self.incoming_locales),
            fields::symbols(&self.offered_capabilities),
            fields::symbols(&self.desired_capabilities),
            fields::map(&self.properties),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            container_id: r.req("container-id", FieldReader::string)?,
            hostname: r.string("hostname")?,
            max_frame_size: r.uint("max-frame-size")?.unwrap_or(u32::MAX),
            channel_max: r.ushort("channel-max")?.unwrap_or(u16::MAX),
            idle_time_out: r.uint("idle-time-out")?,
            outgoing_locales: r.symbols("outgoing-locales")?,
            incoming_locales: r.symbols("incoming-locales")?,
            offered_capabilities: r.symbols("offered-capabilities")?,
            desired_capabilities: r.symbols("desired-capabilities")?,
            properties: r.map("properties")?,
        })
    }
}

/// `begin` (0x11): starts a session on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Begin {
    /// The peer's channel when this answers its `begin`.
    pub remote_channel: Option<u16>,
    /// The transfer-id of the next outgoing transfer (mandatory).
    pub next_outgoing_id: u32,
    /// Incoming transfer window (mandatory).
    pub incoming_window: u32,
    /// Outgoing transfer window (mandatory).
    pub outgoing_window: u32,
    /// Highest link handle; default `u32::MAX`.
    pub handle_max: u32,
    /// Extensions this peer supports.
    pub offered_capabilities: Vec<String>,
    /// Extensions this peer would use.
    pub desired_capabilities: Vec<String>,
    /// Session properties.
    pub properties: Fields,
}

impl Default for Begin {
    fn default() -> Self {
        Self {
            remote_channel: None,
            next_outgoing_id: 0,
            incoming_window: 0,
            outgoing_window: 0,
            handle_max: u32::MAX,
            offered_capabilities: Vec::new(),
            desired_capabilities: Vec::new(),
            properties: Vec::new(),
        }
    }
}

impl Composite for Begin {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x11,
        name: "amqp:begin:list",
    };
    const NAME: &'static str = "begin";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::opt(&self.remote_channel),
            Value::Uint(self.next_outgoing_id),
            Value::Uint(self.incoming_window),
            Value::Uint(self.outgoing_window),
            fields::unless_default(self.handle_max, u32::MAX),
            fields::symbols(&self.offered_capabilities),
            fields::symbols(&self.desired_capabilities),
            fields::map(&self.properties),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            remote_channel: r.ushort("remote-channel")?,
            next_outgoing_id: r.req("next-outgoing-id", FieldReader::uint)?,
            incoming_window: r.req("incoming-window", FieldReader::uint)?,
            outgoing_window: r.req("outgoing-window", FieldReader::uint)?,
            handle_max: r.uint("handle-max")?.unwrap_or(u32::MAX),
            offered_capabilities: r.symbols("offered-capabilities")?,
            desired_capabilities: r.symbols("desired-capabilities")?,
            properties: r.map("properties")?,
        })
    }
}

/// `end` (0x17): ends a session, with an error when it failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct End {
    /// Why the session ended, if it failed.
    pub error: Option<AmqpError>,
}

impl Composite for End {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x17,
        name: "amqp:end:list",
    };
    const NAME: &'static str = "end";

    fn fields(&self) -> Vec<Value> {
        vec![fields::composite(&self.error)]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            error: r.composite("error")?,
        })
    }
}

/// `close` (0x18): closes the connection, with an error when it failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Close {
    /// Why the connection closed, if it failed.
    pub error: Option<AmqpError>,
}

impl Composite for Close {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x18,
        name: "amqp:close:list",
    };
    const NAME: &'static str = "close";

    fn fields(&self) -> Vec<Value> {
        vec![fields::composite(&self.error)]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            error: r.composite("error")?,
        })
    }
}
