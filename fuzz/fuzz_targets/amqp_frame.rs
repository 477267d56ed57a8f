//! The AMQP frame reader over arbitrary bytes, as a connection's first bytes arrive: protocol
//! headers (AMQP and SASL), then frames under a max-frame-size taken from the input, each body
//! read as a performative or a SASL frame. The first two bytes choose the limit; the rest is
//! the stream, also read in two pieces to check the incremental reader agrees with itself.
#![no_main]

use docflow_amqp::frame::{
    FrameType, HEADER_LEN, MIN_MAX_FRAME_SIZE, ProtocolHeader, ReadFrame, read_frame,
};
use docflow_amqp::performative::decode_frame_body;
use docflow_amqp::sasl::SaslFrame;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [a, b, stream @ ..] = data else {
        return;
    };
    // From MIN-MAX-FRAME-SIZE up to 64 KiB + 511, so both limits and large frames are reached.
    let max = MIN_MAX_FRAME_SIZE + u32::from(u16::from_be_bytes([*a, *b]));
    let mut buf = stream;
    // Protocol headers may come first (SASL, then AMQP after the exchange).
    while buf.len() >= HEADER_LEN && buf.starts_with(b"AMQP") {
        match ProtocolHeader::read(buf) {
            Ok(Some(_)) => buf = &buf[HEADER_LEN..],
            Ok(None) => unreachable!("8 bytes are a whole header"),
            Err(_) => return,
        }
    }
    let _ = ProtocolHeader::read(buf);
    loop {
        match read_frame(buf, max) {
            Ok(ReadFrame::Frame { frame, len }) => {
                assert!(len >= HEADER_LEN && len <= buf.len() && len as u64 <= u64::from(max));
                assert!(frame.extended_header.len() + frame.body.len() + HEADER_LEN == len);
                // The same frame from a prefix: incomplete until the last byte is there.
                let cut = len / 2;
                match read_frame(&buf[..cut], max) {
                    Ok(ReadFrame::Incomplete { needed }) => {
                        assert!(needed >= 1 && cut + needed <= len);
                    }
                    other => panic!("a {len}-byte frame read from {cut} bytes: {other:?}"),
                }
                match frame.frame_type {
                    FrameType::Amqp => {
                        if let Ok(Some((_, payload))) = decode_frame_body(frame.body) {
                            assert!(payload.len() <= frame.body.len());
                        }
                    }
                    FrameType::Sasl => {
                        let _ = SaslFrame::decode(frame.body);
                    }
                }
                buf = &buf[len..];
            }
            Ok(ReadFrame::Incomplete { needed }) => {
                assert!(needed >= 1);
                return;
            }
            Err(_) => return,
        }
    }
});
