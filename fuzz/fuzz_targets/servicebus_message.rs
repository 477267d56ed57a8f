//! Service Bus message decoding: BrokerProperties (a header's JSON applied to a message), custom
//! property headers, and batch send bodies.
#![no_main]

use docflow::servicebus::message::{BrokerProperties, Message, PropertyValue, decode_batch};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode_batch(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = PropertyValue::from_header(text);
    if let Ok(props) = serde_json::from_str::<BrokerProperties>(text) {
        let mut message = Message::new(b"body".to_vec());
        if props.apply_to(&mut message).is_ok() {
            // What was accepted can be written back as BrokerProperties.
            let _ = serde_json::to_string(&BrokerProperties::for_send(&message));
        }
    }
});
