//! docflow's own AMQP 1.0 codec (OASIS AMQP 1.0 parts 1, 2, 3 and 5): the foundation on which
//! the embedded broker speaks AMQP to Microsoft's Service Bus SDKs.
//!
//! Why our own: as a server for those SDKs the Rust AMQP libraries fall short (fe2o3-amqp
//! cannot set 16-byte delivery tags, echo settled dispositions as the SDKs need, or encode
//! `header.delivery-count = 0`; ntex-amqp needs the ntex runtime). This crate is only the
//! codec: it holds no connection state and does no I/O. Decoding never panics and never
//! allocates more than the input justifies, whatever the bytes. It depends on no other
//! docflow crate. Its tests cross-check it against fe2o3's codec crates (`serde_amqp`,
//! `fe2o3-amqp-types`).
//!
//! # Layout
//! - [`types`]: the AMQP type system as [`Value`], with arrays and described values.
//! - [`codec`]: [`encode`] (compact forms) and [`decode`] (every form, depth-limited).
//! - [`frame`]: protocol headers, frame headers, incremental frame reading, heartbeats.
//! - [`fields`]: described-list plumbing: the [`Composite`] trait, field errors, descriptors.
//! - [`definitions`]: roles, settle modes and the spec's `error` ([`AmqpError`]).
//! - [`terminus`]: a link's [`Source`] and [`Target`].
//! - [`delivery_state`]: `received`, `accepted`, `rejected`, `released`, `modified`.
//! - [`performative`]: the nine performatives and AMQP frame bodies.
//! - [`sasl`]: the five SASL frames.
//! - [`message`]: message sections, whole messages and Service Bus batches.

#![warn(missing_docs)]

pub mod codec;
pub mod definitions;
pub mod delivery_state;
pub mod fields;
pub mod frame;
pub mod message;
pub mod performative;
pub mod sasl;
pub mod terminus;
pub mod types;

pub use codec::{DecodeError, decode, encode};
pub use definitions::{AmqpError, ReceiverSettleMode, Role, SenderSettleMode};
pub use delivery_state::DeliveryState;
pub use fields::{Composite, FieldError, Fields};
pub use message::{Body, Message, MessageError};
pub use performative::Performative;
pub use terminus::{Source, Target};
pub use types::{Array, Described, ElementType, Value};
