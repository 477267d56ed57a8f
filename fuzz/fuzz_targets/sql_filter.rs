//! SQL filters and actions: parsed, evaluated against a message, applied, never a panic.
#![no_main]

use docflow::broker::filter::{Action, Filter};
use docflow::servicebus::message::Message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let message = || {
        Message::new(b"x".to_vec())
            .with_subject("orders")
            .with_correlation_id("abc")
            .with_property("color", "red")
            .with_property("qty", i64::MIN)
            .with_property("max", i64::MAX)
            .with_property("price", f64::NAN)
            .with_property("big", f64::INFINITY)
            .with_property("ok", true)
    };
    if let Ok(filter) = Filter::sql(text) {
        let _ = filter.matches(&message());
    }
    if let Ok(action) = Action::parse(text) {
        let mut m = message();
        action.apply(&mut m);
    }
});
