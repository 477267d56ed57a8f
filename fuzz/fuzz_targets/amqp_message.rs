//! AMQP messages from arbitrary bytes (a transfer's whole payload): every section, Service
//! Bus batches (each data section one message), and round trips: what decodes re-encodes to
//! bytes that decode to the same encoding again. The broker's own conversion to its message
//! type is crate-private, so it is reached through the broker's tests, not here.
#![no_main]

use docflow_amqp::message::{Message, batch, split_batch};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let bytes = message.encode();
    let again = Message::decode(&bytes).expect("an encoded message decodes");
    assert_eq!(again.encode(), bytes, "message round trip");
    // As the envelope of a batch transfer.
    if let Ok(messages) = split_batch(&message) {
        let envelope = batch(&messages);
        let split = split_batch(&envelope).expect("a built batch splits");
        assert_eq!(split.len(), messages.len());
        for (a, b) in split.iter().zip(&messages) {
            assert_eq!(a.encode(), b.encode(), "batch entry round trip");
        }
    }
});
