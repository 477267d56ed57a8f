//! `Authorization: SharedAccessSignature …` headers: validated against a rule, never a panic.
#![no_main]

use docflow::servicebus::sas::{Right, Rights, SasRule, validate};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules = [SasRule {
        name: "root".into(),
        key: "secret".into(),
        rights: Rights::ALL,
    }];
    // The first line is the target, the rest the header.
    let (target, header) = text.split_once('\n').unwrap_or(("127.0.0.1:7072/q", text));
    for right in [Right::Send, Right::Listen, Right::Manage] {
        let _ = validate(Some(header), target, right, &rules, 1_000);
    }
});
