//! E-mails: their text extracted or refused with a code, within the time limit, never a panic.
#![no_main]

use std::time::{Duration, Instant};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let deadline = Instant::now() + Duration::from_secs(5);
    let _ = docflow::extract::extract(docflow::extract::DocumentKind::Email, data, deadline);
});
