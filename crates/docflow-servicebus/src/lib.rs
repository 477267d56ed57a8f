//! Service Bus: the message model and REST encoding shared by client and broker, SAS tokens,
//! connection settings, the topology file and docflow's REST client, with the HTTP helpers every
//! docflow server shares (it is the lowest crate that needs them).
//!
//! # Layout
//! - [`message`]: messages, BrokerProperties, typed user properties, batch bodies.
//! - [`sas`]: SAS tokens and their checks.
//! - [`connection`]: connection strings and identity-based connection settings.
//! - [`client`]: the Service Bus REST data-plane client.
//! - [`admin`]: the client's reads of the ATOM management API (queue and subscription runtime
//!   figures, topic names), and that API's namespaces for servers that answer it.
//! - [`sender`]: the sending seam functions use, with a recording implementation for tests.
//! - [`topology`]: the entities of `servicebus.config.json` (the emulator's `Config.json`), and
//!   [`topology::emulator`], the same topology within the emulator's limits.
//! - [`identity`]: Microsoft Entra credentials for identity-based connections.
//! - [`http_body`]: bounded request bodies and the `413`, for every server.
//! - [`http_url`]: path segments and query pairs, decoded the same way by every server.
//!
//! Depends on no other docflow crate.

pub mod admin;
pub mod client;
pub mod connection;
pub mod http_body;
pub mod http_url;
pub mod identity;
pub mod message;
pub mod sas;
pub mod sender;
pub mod topology;

pub use admin::EntityRuntime;
pub use client::{ClientError, ServiceBusClient, ServiceBusClientOptions};
pub use connection::{Credentials, Namespace};
pub use message::{BrokerProperties, Message, MessageState, PropertyValue, ReceivedMessage};
pub use sender::{MessageSender, RecordingSender};
