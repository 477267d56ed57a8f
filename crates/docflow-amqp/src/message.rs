//! The AMQP message format (part 3, section 3.2): the sections of a bare and annotated
//! message, which is the payload of one or more transfers; and Service Bus batches.

mod batch;
mod sections;

pub use batch::{BATCH_MESSAGE_FORMAT, batch, split_batch};
pub use sections::{Header, Properties};

use thiserror::Error;

use crate::codec::{self, DecodeError};
use crate::fields::{Composite, Descriptor, FieldError, Fields};
use crate::types::{Described, Value};

/// Why bytes are not an AMQP message; offsets count from the start of the message.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MessageError {
    /// The bytes are not AMQP values.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A section whose content is wrong (a field's type, a non-string key...).
    #[error("message section at byte {offset}: {source}")]
    Section {
        /// Where the section starts.
        offset: usize,
        /// What is wrong with it.
        source: FieldError,
    },
    /// A value that is not one of the nine sections.
    #[error("message section at byte {offset} has unknown descriptor {descriptor:?}")]
    UnknownSection {
        /// Where the section starts.
        offset: usize,
        /// Its descriptor (`Null` when the value is not described at all).
        descriptor: Value,
    },
    /// A section that may appear once appears twice.
    #[error("message section {section} at byte {offset} appears twice")]
    DuplicateSection {
        /// Where the second one starts.
        offset: usize,
        /// Which section.
        section: &'static str,
    },
    /// Body sections of different kinds, or more than one `amqp-value`.
    #[error("body section at byte {offset} does not match the body before it")]
    MixedBody {
        /// Where the offending section starts.
        offset: usize,
    },
    /// A batch whose body is not `data` sections.
    #[error("a batch body must be data sections, found {found}")]
    BatchBody {
        /// The body kind found.
        found: &'static str,
    },
    /// One message of a batch failed to decode.
    #[error("message {index} of the batch: {source}")]
    BatchEntry {
        /// Its position in the batch.
        index: usize,
        /// Why it failed.
        source: Box<MessageError>,
    },
}

/// A message body (section 3.2): data sections, amqp-sequence sections, or one amqp-value.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `data` (0x75) sections, each opaque bytes. `Data(vec![])` is a message with no body
    /// section at all.
    Data(Vec<Vec<u8>>),
    /// `amqp-sequence` (0x76) sections, each a list of values.
    Sequence(Vec<Vec<Value>>),
    /// One `amqp-value` (0x77) section; CBS and management requests use it.
    Value(Value),
}

impl Default for Body {
    fn default() -> Self {
        Body::Data(Vec::new())
    }
}

impl Body {
    fn kind(&self) -> &'static str {
        match self {
            Body::Data(_) => "data",
            Body::Sequence(_) => "amqp-sequence",
            Body::Value(_) => "amqp-value",
        }
    }
}

/// A whole message: what transfers carry. Optional sections are `None` when absent, so a
/// decoded message re-encodes with the same sections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// `header` (0x70).
    pub header: Option<Header>,
    /// `delivery-annotations` (0x71), for the next hop only.
    pub delivery_annotations: Option<Fields>,
    /// `message-annotations` (0x72): `x-opt-sequence-number`, `x-opt-enqueued-time`...
    pub message_annotations: Option<Fields>,
    /// `properties` (0x73).
    pub properties: Option<Properties>,
    /// `application-properties` (0x74): string keys, simple values.
    pub application_properties: Option<Vec<(String, Value)>>,
    /// The body sections.
    pub body: Body,
    /// `footer` (0x78).
    pub footer: Option<Fields>,
}

const DELIVERY_ANNOTATIONS: Descriptor = Descriptor {
    code: 0x71,
    name: "amqp:delivery-annotations:map",
};
const MESSAGE_ANNOTATIONS: Descriptor = Descriptor {
    code: 0x72,
    name: "amqp:message-annotations:map",
};
const APPLICATION_PROPERTIES: Descriptor = Descriptor {
    code: 0x74,
    name: "amqp:application-properties:map",
};
const DATA: Descriptor = Descriptor {
    code: 0x75,
    name: "amqp:data:binary",
};
const AMQP_SEQUENCE: Descriptor = Descriptor {
    code: 0x76,
    name: "amqp:amqp-sequence:list",
};
const AMQP_VALUE: Descriptor = Descriptor {
    code: 0x77,
    name: "amqp:amqp-value:*",
};
const FOOTER: Descriptor = Descriptor {
    code: 0x78,
    name: "amqp:footer:map",
};

impl Message {
    /// A message with an `amqp-value` body and nothing else.
    pub fn with_value(value: Value) -> Self {
        Self {
            body: Body::Value(value),
            ..Self::default()
        }
    }

    /// A message with one `data` section and nothing else.
    pub fn with_data(data: Vec<u8>) -> Self {
        Self {
            body: Body::Data(vec![data]),
            ..Self::default()
        }
    }

    /// The message's encoding: its sections in the spec's order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the message's encoding to `out` (a transfer frame's payload).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let section = |code: u64, value: Value, out: &mut Vec<u8>| {
            codec::encode(&Value::described(code, value), out)
        };
        if let Some(header) = &self.header {
            header.encode(out);
        }
        if let Some(a) = &self.delivery_annotations {
            section(DELIVERY_ANNOTATIONS.code, Value::Map(a.clone()), out);
        }
        if let Some(a) = &self.message_annotations {
            section(MESSAGE_ANNOTATIONS.code, Value::Map(a.clone()), out);
        }
        if let Some(p) = &self.properties {
            p.encode(out);
        }
        if let Some(p) = &self.application_properties {
            let map = p.iter().map(|(k, v)| (Value::String(k.clone()), v.clone()));
            section(APPLICATION_PROPERTIES.code, Value::Map(map.collect()), out);
        }
        match &self.body {
            Body::Data(sections) => {
                for data in sections {
                    // 0x00 smallulong 0x75, then the binary: no copy of the payload.
                    out.extend([0x00, 0x53, DATA.code as u8]);
                    codec::encode_binary(data, out);
                }
            }
            Body::Sequence(sections) => {
                for items in sections {
                    section(AMQP_SEQUENCE.code, Value::List(items.clone()), out);
                }
            }
            Body::Value(value) => {
                out.extend([0x00, 0x53, AMQP_VALUE.code as u8]);
                codec::encode(value, out);
            }
        }
        if let Some(f) = &self.footer {
            section(FOOTER.code, Value::Map(f.clone()), out);
        }
    }

    /// Reads a whole message: every byte must belong to a section. Sections are accepted in
    /// any order, but each at most once and the body of one kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let mut message = Message::default();
        let mut has_body = false;
        let mut pos = 0;
        // One budget of zero-width array elements for all the sections together.
        let mut zero_width = codec::zero_width_budget(bytes.len());
        while pos < bytes.len() {
            let offset = pos;
            let (value, end) = codec::decode_from(bytes, pos, &mut zero_width)?;
            pos = end;
            let Value::Described(described) = value else {
                return Err(MessageError::UnknownSection {
                    offset,
                    descriptor: Value::Null,
                });
            };
            message.add_section(*described, offset, &mut has_body)?;
        }
        Ok(message)
    }

    fn add_section(
        &mut self,
        section: Described,
        offset: usize,
        has_body: &mut bool,
    ) -> Result<(), MessageError> {
        let d = &section.descriptor;
        let wrong = |expected, found: &Value| MessageError::Section {
            offset,
            source: FieldError::WrongShape {
                context: "message section",
                expected,
                found: found.type_name(),
            },
        };
        let once = |slot_full: bool, section: &'static str| {
            if slot_full {
                Err(MessageError::DuplicateSection { offset, section })
            } else {
                Ok(())
            }
        };
        let as_map = |value: Value| match value {
            Value::Map(pairs) => Ok(pairs),
            other => Err(wrong("map", &other)),
        };
        let field_error = |source| MessageError::Section { offset, source };
        if Header::DESCRIPTOR.matches(d) {
            once(self.header.is_some(), "header")?;
            let header = Header::from_value(Value::Described(Box::new(section)));
            self.header = Some(header.map_err(field_error)?);
        } else if DELIVERY_ANNOTATIONS.matches(d) {
            once(self.delivery_annotations.is_some(), "delivery-annotations")?;
            self.delivery_annotations = Some(as_map(section.value)?);
        } else if MESSAGE_ANNOTATIONS.matches(d) {
            once(self.message_annotations.is_some(), "message-annotations")?;
            self.message_annotations = Some(as_map(section.value)?);
        } else if Properties::DESCRIPTOR.matches(d) {
            once(self.properties.is_some(), "properties")?;
            let props = Properties::from_value(Value::Described(Box::new(section)));
            self.properties = Some(props.map_err(field_error)?);
        } else if APPLICATION_PROPERTIES.matches(d) {
            once(
                self.application_properties.is_some(),
                "application-properties",
            )?;
            let mut props = Vec::new();
            for (key, value) in as_map(section.value)? {
                match key {
                    Value::String(k) => props.push((k, value)),
                    other => {
                        return Err(field_error(FieldError::WrongType {
                            context: "application-properties",
                            field: "key",
                            expected: "string",
                            found: other.type_name(),
                        }));
                    }
                }
            }
            self.application_properties = Some(props);
        } else if DATA.matches(d) {
            let Value::Binary(data) = section.value else {
                return Err(wrong("binary", &section.value));
            };
            match (&mut self.body, *has_body) {
                (Body::Data(sections), _) => sections.push(data),
                _ => return Err(MessageError::MixedBody { offset }),
            }
            *has_body = true;
        } else if AMQP_SEQUENCE.matches(d) {
            let Value::List(items) = section.value else {
                return Err(wrong("list", &section.value));
            };
            match (&mut self.body, *has_body) {
                (Body::Sequence(sections), true) => sections.push(items),
                (_, false) => self.body = Body::Sequence(vec![items]),
                _ => return Err(MessageError::MixedBody { offset }),
            }
            *has_body = true;
        } else if AMQP_VALUE.matches(d) {
            if *has_body {
                return Err(MessageError::MixedBody { offset });
            }
            self.body = Body::Value(section.value);
            *has_body = true;
        } else if FOOTER.matches(d) {
            once(self.footer.is_some(), "footer")?;
            self.footer = Some(as_map(section.value)?);
        } else {
            return Err(MessageError::UnknownSection {
                offset,
                descriptor: section.descriptor,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
