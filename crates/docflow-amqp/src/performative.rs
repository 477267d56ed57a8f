//! The nine performatives of part 2, section 2.7 (descriptors 0x10-0x18) and the AMQP frame
//! body that carries them: a performative, then (for `transfer`) the message bytes.

mod connection;
mod delivery;
mod link;

pub use connection::{Begin, Close, End, Open};
pub use delivery::{Disposition, Transfer};
pub use link::{Attach, Detach, Flow};

use crate::codec;
use crate::fields::{Composite, FieldError, into_described};
use crate::frame::{FrameError, FrameType, encode_frame_with};
use crate::types::Value;

/// Any performative: what an AMQP frame (type 0) carries.
///
/// `Attach` (with its source and target inline) is much larger than the rest; performatives
/// live one frame at a time, so a move of a few hundred bytes costs less than boxing would.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Performative {
    /// `open` (0x10).
    Open(Open),
    /// `begin` (0x11).
    Begin(Begin),
    /// `attach` (0x12).
    Attach(Attach),
    /// `flow` (0x13).
    Flow(Flow),
    /// `transfer` (0x14).
    Transfer(Transfer),
    /// `disposition` (0x15).
    Disposition(Disposition),
    /// `detach` (0x16).
    Detach(Detach),
    /// `end` (0x17).
    End(End),
    /// `close` (0x18).
    Close(Close),
}

macro_rules! performatives {
    ($($variant:ident),*) => {
        $(impl From<$variant> for Performative {
            fn from(p: $variant) -> Self {
                Performative::$variant(p)
            }
        })*

        impl Performative {
            /// The performative as a described list.
            pub fn to_value(&self) -> Value {
                match self {
                    $(Performative::$variant(p) => p.to_value(),)*
                }
            }

            /// The performative's name as the spec spells it, for logs and errors.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Performative::$variant(_) => $variant::NAME,)*
                }
            }

            /// Reads any performative from a decoded value, by its numeric or symbolic
            /// descriptor.
            pub fn from_value(value: Value) -> Result<Self, FieldError> {
                let described = into_described(value, "performative")?;
                $(if $variant::DESCRIPTOR.matches(&described.descriptor) {
                    return $variant::from_value(Value::Described(Box::new(described)))
                        .map(Performative::$variant);
                })*
                Err(FieldError::UnexpectedDescriptor {
                    context: "performative",
                    descriptor: described.descriptor,
                })
            }
        }
    };
}

performatives!(
    Open,
    Begin,
    Attach,
    Flow,
    Transfer,
    Disposition,
    Detach,
    End,
    Close
);

/// Reads an AMQP frame body: `Ok(None)` for an empty body (a heartbeat), else the
/// performative and the bytes after it (a transfer's message payload; empty otherwise).
pub fn decode_frame_body(body: &[u8]) -> Result<Option<(Performative, &[u8])>, FieldError> {
    if body.is_empty() {
        return Ok(None);
    }
    let (value, used) = codec::decode(body)?;
    Ok(Some((Performative::from_value(value)?, &body[used..])))
}

/// Appends a whole AMQP frame on `channel`: header, performative, then `payload` (the
/// message bytes of a transfer; empty for the others).
///
/// Keeping the frame under the peer's `max-frame-size` (splitting a large transfer into
/// several with `more = true`) is the caller's part.
pub fn encode_frame(
    channel: u16,
    performative: &Performative,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    encode_frame_with(FrameType::Amqp, channel, out, |out| {
        codec::encode(&performative.to_value(), out);
        out.extend_from_slice(payload);
    })
}

#[cfg(test)]
mod tests;
