//! Service Bus: the message model and REST encoding shared by client and broker, SAS tokens,
//! connection settings, and docflow's REST client.

pub mod client;
pub mod connection;
pub mod message;
pub mod sas;
pub mod sender;

pub use client::{ClientError, ServiceBusClient, ServiceBusClientOptions};
pub use connection::{Credentials, Namespace};
pub use message::{BrokerProperties, Message, MessageState, PropertyValue, ReceivedMessage};
pub use sender::{MessageSender, RecordingSender};
