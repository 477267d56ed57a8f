//! `ai.task.v1` message bodies: validated, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = docflow::task::parse_task(data);
});
