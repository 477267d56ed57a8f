//! Performative and SASL frame bodies from arbitrary bytes: whatever decodes re-encodes to
//! bytes that decode to the same encoding again (compared as bytes, so NaN floats compare).
#![no_main]

use docflow_amqp::codec::encode_to_vec;
use docflow_amqp::performative::decode_frame_body;
use docflow_amqp::sasl::SaslFrame;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some((performative, payload))) = decode_frame_body(data) {
        assert!(payload.len() < data.len());
        let bytes = encode_to_vec(&performative.to_value());
        let (again, rest) = decode_frame_body(&bytes)
            .expect("an encoded performative decodes")
            .expect("an encoded performative is not a heartbeat");
        assert!(rest.is_empty());
        assert_eq!(
            encode_to_vec(&again.to_value()),
            bytes,
            "{} round trip",
            performative.name()
        );
    }
    if let Ok(sasl) = SaslFrame::decode(data) {
        let bytes = encode_to_vec(&sasl.to_value());
        let again = SaslFrame::decode(&bytes).expect("an encoded SASL frame decodes");
        assert_eq!(encode_to_vec(&again.to_value()), bytes, "SASL round trip");
    }
});
