//! The topology file (`servicebus.config.json`): as the app reads it and as the broker does.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(topology) = docflow::topology::Topology::parse(text, "fuzz") {
        let _ = docflow::deploy::az_cli_script(&topology);
    }
    let _ = docflow::broker::Entities::parse(text);
});
