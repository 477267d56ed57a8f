//! The Functions host's `POST /{Function}` body: parsed, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = docflow::protocol::InvocationRequest::parse(data);
});
