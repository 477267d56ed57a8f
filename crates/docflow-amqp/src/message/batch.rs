//! Service Bus batches: a transfer with `message-format` 0x80013700 carries an envelope
//! message whose body is N `data` sections, each one complete encoded message. The
//! envelope's other sections copy the first message and are ignored on receipt.

use super::{Body, Message, MessageError};

/// The `message-format` of a Service Bus batch transfer (Microsoft's format 0x800137, version
/// 0, as part 2, section 2.7.5 lays a message-format out).
pub const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;

/// The messages of a batch envelope, decoded one per `data` section, in order.
///
/// Use it on the payload of a transfer whose `message-format` is [`BATCH_MESSAGE_FORMAT`].
pub fn split_batch(envelope: &Message) -> Result<Vec<Message>, MessageError> {
    let Body::Data(sections) = &envelope.body else {
        return Err(MessageError::BatchBody {
            found: envelope.body.kind(),
        });
    };
    sections
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            Message::decode(bytes).map_err(|e| MessageError::BatchEntry {
                index,
                source: Box::new(e),
            })
        })
        .collect()
}

/// Builds a batch envelope the way the SDKs do: one `data` section per encoded message, the
/// envelope's header, message-annotations and properties copied from the first message.
///
/// Use it for test and benchmark clients that send batches; send the result with
/// `message-format` [`BATCH_MESSAGE_FORMAT`].
pub fn batch(messages: &[Message]) -> Message {
    let first = messages.first();
    Message {
        header: first.and_then(|m| m.header.clone()),
        message_annotations: first.and_then(|m| m.message_annotations.clone()),
        properties: first.and_then(|m| m.properties.clone()),
        body: Body::Data(messages.iter().map(Message::encode).collect()),
        ..Message::default()
    }
}
