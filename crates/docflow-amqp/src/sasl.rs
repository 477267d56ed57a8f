//! The SASL frames of part 5, section 5.3.3 (descriptors 0x40-0x44), exchanged in SASL
//! frames (type 1) after the `AMQP\3\1\0\0` header. Service Bus clients pick `ANONYMOUS`
//! (Python, JavaScript) or `MSSBCBS` (.NET) and then authorise with CBS tokens.

use crate::codec;
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, into_described};
use crate::frame::{FrameError, FrameType, encode_frame_with};
use crate::types::Value;

/// `sasl-mechanisms` (0x40): the server's offer, sent first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaslMechanisms {
    /// Mechanism names, e.g. `MSSBCBS`, `ANONYMOUS` (mandatory, at least one).
    pub mechanisms: Vec<String>,
}

/// `sasl-init` (0x41): the client's choice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaslInit {
    /// The chosen mechanism (mandatory).
    pub mechanism: String,
    /// The mechanism's first response.
    pub initial_response: Option<Vec<u8>>,
    /// The host the client wants.
    pub hostname: Option<String>,
}

/// `sasl-challenge` (0x42): a server challenge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaslChallenge {
    /// The challenge bytes (mandatory).
    pub challenge: Vec<u8>,
}

/// `sasl-response` (0x43): the client's answer to a challenge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaslResponse {
    /// The response bytes (mandatory).
    pub response: Vec<u8>,
}

/// The outcome codes of section 5.3.3.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslCode {
    /// 0: authenticated.
    Ok,
    /// 1: bad credentials.
    Auth,
    /// 2: a system error.
    Sys,
    /// 3: a system error that will not go away.
    SysPerm,
    /// 4: a system error that may go away.
    SysTemp,
}

impl SaslCode {
    fn byte(self) -> u8 {
        match self {
            SaslCode::Ok => 0,
            SaslCode::Auth => 1,
            SaslCode::Sys => 2,
            SaslCode::SysPerm => 3,
            SaslCode::SysTemp => 4,
        }
    }
}

/// `sasl-outcome` (0x44): the end of the exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct SaslOutcome {
    /// The result (mandatory).
    pub code: SaslCode,
    /// Mechanism-specific data for the client.
    pub additional_data: Option<Vec<u8>>,
}

impl Composite for SaslMechanisms {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x40,
        name: "amqp:sasl-mechanisms:list",
    };
    const NAME: &'static str = "sasl-mechanisms";

    fn fields(&self) -> Vec<Value> {
        vec![fields::symbols(&self.mechanisms)]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        let mechanisms = r.symbols("sasl-server-mechanisms")?;
        if mechanisms.is_empty() {
            return Err(FieldError::Missing {
                context: Self::NAME,
                field: "sasl-server-mechanisms",
            });
        }
        Ok(Self { mechanisms })
    }
}

impl Composite for SaslInit {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x41,
        name: "amqp:sasl-init:list",
    };
    const NAME: &'static str = "sasl-init";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Symbol(self.mechanism.clone()),
            fields::opt(&self.initial_response),
            fields::string(&self.hostname),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            mechanism: r.req("mechanism", FieldReader::symbol)?,
            initial_response: r.binary("initial-response")?,
            hostname: r.string("hostname")?,
        })
    }
}

impl Composite for SaslChallenge {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x42,
        name: "amqp:sasl-challenge:list",
    };
    const NAME: &'static str = "sasl-challenge";

    fn fields(&self) -> Vec<Value> {
        vec![Value::Binary(self.challenge.clone())]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            challenge: r.req("challenge", FieldReader::binary)?,
        })
    }
}

impl Composite for SaslResponse {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x43,
        name: "amqp:sasl-response:list",
    };
    const NAME: &'static str = "sasl-response";

    fn fields(&self) -> Vec<Value> {
        vec![Value::Binary(self.response.clone())]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            response: r.req("response", FieldReader::binary)?,
        })
    }
}

impl Composite for SaslOutcome {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x44,
        name: "amqp:sasl-outcome:list",
    };
    const NAME: &'static str = "sasl-outcome";

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Ubyte(self.code.byte()),
            fields::opt(&self.additional_data),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        let code = match r.req("code", FieldReader::ubyte)? {
            0 => SaslCode::Ok,
            1 => SaslCode::Auth,
            2 => SaslCode::Sys,
            3 => SaslCode::SysPerm,
            4 => SaslCode::SysTemp,
            v => return Err(r.invalid("code", Value::Ubyte(v))),
        };
        Ok(Self {
            code,
            additional_data: r.binary("additional-data")?,
        })
    }
}

/// Any SASL frame body.
#[derive(Debug, Clone, PartialEq)]
pub enum SaslFrame {
    /// `sasl-mechanisms`.
    Mechanisms(SaslMechanisms),
    /// `sasl-init`.
    Init(SaslInit),
    /// `sasl-challenge`.
    Challenge(SaslChallenge),
    /// `sasl-response`.
    Response(SaslResponse),
    /// `sasl-outcome`.
    Outcome(SaslOutcome),
}

impl SaslFrame {
    /// The frame body as a described list.
    pub fn to_value(&self) -> Value {
        match self {
            SaslFrame::Mechanisms(f) => f.to_value(),
            SaslFrame::Init(f) => f.to_value(),
            SaslFrame::Challenge(f) => f.to_value(),
            SaslFrame::Response(f) => f.to_value(),
            SaslFrame::Outcome(f) => f.to_value(),
        }
    }

    /// Reads a SASL frame body (the whole body must be the one value).
    pub fn decode(body: &[u8]) -> Result<Self, FieldError> {
        let (value, used) = codec::decode(body)?;
        if used != body.len() {
            return Err(FieldError::WrongShape {
                context: "sasl frame",
                expected: "one value filling the frame body",
                found: "trailing bytes",
            });
        }
        let described = into_described(value, "sasl frame")?;
        let d = &described.descriptor;
        let read: fn(Value) -> Result<Self, FieldError> = if SaslMechanisms::DESCRIPTOR.matches(d) {
            |v| SaslMechanisms::from_value(v).map(SaslFrame::Mechanisms)
        } else if SaslInit::DESCRIPTOR.matches(d) {
            |v| SaslInit::from_value(v).map(SaslFrame::Init)
        } else if SaslChallenge::DESCRIPTOR.matches(d) {
            |v| SaslChallenge::from_value(v).map(SaslFrame::Challenge)
        } else if SaslResponse::DESCRIPTOR.matches(d) {
            |v| SaslResponse::from_value(v).map(SaslFrame::Response)
        } else if SaslOutcome::DESCRIPTOR.matches(d) {
            |v| SaslOutcome::from_value(v).map(SaslFrame::Outcome)
        } else {
            return Err(FieldError::UnexpectedDescriptor {
                context: "sasl frame",
                descriptor: described.descriptor,
            });
        };
        read(Value::Described(Box::new(described)))
    }

    /// Appends the whole SASL frame (type 1, channel 0).
    pub fn encode_frame(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        encode_frame_with(FrameType::Sasl, 0, out, |out| {
            codec::encode(&self.to_value(), out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadFrame, read_frame};

    fn round_trip(frame: SaslFrame) -> Vec<u8> {
        let mut bytes = Vec::new();
        frame.encode_frame(&mut bytes).unwrap();
        let ReadFrame::Frame { frame: f, len } = read_frame(&bytes, 512).unwrap() else {
            panic!("no frame");
        };
        assert_eq!(len, bytes.len());
        assert_eq!(f.frame_type, FrameType::Sasl);
        assert_eq!(SaslFrame::decode(f.body).unwrap(), frame);
        bytes
    }

    // Section 5.3.3.1: sasl-mechanisms with an array of two symbols, in a SASL frame.
    #[test]
    fn mechanisms_offer_an_array_of_symbols() {
        let bytes = round_trip(SaslFrame::Mechanisms(SaslMechanisms {
            mechanisms: vec!["MSSBCBS".into(), "ANONYMOUS".into()],
        }));
        let mut expected = vec![0, 0, 0, 0x24, 2, 1, 0, 0];
        expected.extend([
            0x00, 0x53, 0x40, 0xc0, 0x17, 0x01, 0xe0, 0x14, 0x02, 0xa3, 0x07,
        ]);
        expected.extend(b"MSSBCBS");
        expected.push(0x09);
        expected.extend(b"ANONYMOUS");
        assert_eq!(bytes, expected);
    }

    // A lone symbol is also a valid `multiple` field (part 1, section 1.4).
    #[test]
    fn a_single_mechanism_symbol_is_accepted() {
        let mut body = vec![0x00, 0x53, 0x40, 0xc0, 0x0c, 0x01, 0xa3, 0x09];
        body.extend(b"ANONYMOUS");
        assert_eq!(
            SaslFrame::decode(&body).unwrap(),
            SaslFrame::Mechanisms(SaslMechanisms {
                mechanisms: vec!["ANONYMOUS".into()]
            })
        );
        let empty = [0x00, 0x53, 0x40, 0x45];
        assert_eq!(
            SaslFrame::decode(&empty).unwrap_err(),
            FieldError::Missing {
                context: "sasl-mechanisms",
                field: "sasl-server-mechanisms"
            }
        );
    }

    // Section 5.3.3.2: sasl-init [mechanism, initial-response, hostname].
    #[test]
    fn init_and_outcome() {
        let mut expected = vec![0, 0, 0, 0x1b, 2, 1, 0, 0];
        expected.extend([0x00, 0x53, 0x41, 0xc0, 0x0e, 0x03, 0xa3, 0x07]);
        expected.extend(b"MSSBCBS");
        expected.extend([0x40, 0xa1, 0x01, b'h']);
        assert_eq!(
            round_trip(SaslFrame::Init(SaslInit {
                mechanism: "MSSBCBS".into(),
                initial_response: None,
                hostname: Some("h".into()),
            })),
            expected
        );
        assert_eq!(
            round_trip(SaslFrame::Outcome(SaslOutcome {
                code: SaslCode::Ok,
                additional_data: None
            })),
            [
                0, 0, 0, 0x10, 2, 1, 0, 0, 0x00, 0x53, 0x44, 0xc0, 0x03, 0x01, 0x50, 0x00
            ]
        );
        round_trip(SaslFrame::Challenge(SaslChallenge { challenge: vec![1] }));
        round_trip(SaslFrame::Response(SaslResponse { response: vec![] }));
        round_trip(SaslFrame::Outcome(SaslOutcome {
            code: SaslCode::SysTemp,
            additional_data: Some(vec![9]),
        }));
    }

    #[test]
    fn bad_sasl_frames_are_refused() {
        assert!(matches!(
            SaslFrame::decode(&[0x00, 0x53, 0x44, 0xc0, 0x03, 0x01, 0x50, 0x09]),
            Err(FieldError::InvalidValue {
                context: "sasl-outcome",
                field: "code",
                ..
            })
        ));
        assert!(matches!(
            SaslFrame::decode(&[0x00, 0x53, 0x10, 0x45]),
            Err(FieldError::UnexpectedDescriptor {
                context: "sasl frame",
                ..
            })
        ));
        assert!(
            SaslFrame::decode(&[0x00, 0x53, 0x44, 0xc0, 0x02, 0x01, 0x50, 0x00, 0x40]).is_err()
        );
    }
}
