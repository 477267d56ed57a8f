//! `docflow fake-llm`: serves [`crate::fake_llm`] until Ctrl-C, then prints its statistics.

use tokio_util::sync::CancellationToken;

use super::{EXIT_CONFIG, EXIT_FAILED};
use crate::fake_llm::{FakeLlm, FakeLlmOptions};

/// Serves until `shutdown`; prints the base URL first and the statistics (JSON) last.
pub async fn run(port: u16, options: FakeLlmOptions, shutdown: CancellationToken) -> u8 {
    if options.tpm == 0 || options.rpm == 0 || options.time_scale <= 0.0 {
        eprintln!("docflow fake-llm: --tpm, --rpm and --time-scale must be positive");
        return EXIT_CONFIG;
    }
    if !(0.0..=1.0).contains(&options.error_rate) {
        eprintln!("docflow fake-llm: --error-rate must be from 0 to 1");
        return EXIT_CONFIG;
    }
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("docflow fake-llm: cannot listen on 127.0.0.1:{port}: {e}");
            return EXIT_CONFIG;
        }
    };
    let llm = FakeLlm::start(listener, options, shutdown.clone());
    println!("http://127.0.0.1:{}/v1", llm.port());
    shutdown.cancelled().await;
    let stats = llm.stats();
    match serde_json::to_string(&stats) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("docflow fake-llm: {e}");
            EXIT_FAILED
        }
    }
}
