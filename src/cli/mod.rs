//! Command-line commands beyond `serve`: each returns a process exit code and prints clear
//! messages; `main.rs` only parses arguments and dispatches here.

#[cfg(feature = "local")]
pub mod bench;
#[cfg(feature = "local")]
pub mod bench_amqp;
#[cfg(feature = "local")]
pub mod bench_app;
#[cfg(feature = "local")]
pub mod bench_budget;
#[cfg(feature = "local")]
pub mod bench_handler;
#[cfg(feature = "local")]
pub mod bench_stack;
#[cfg(feature = "local")]
pub mod benches;
#[cfg(feature = "local")]
pub mod broker;
#[cfg(feature = "local")]
pub mod dashboard;
#[cfg(feature = "local")]
pub mod dev;
pub mod dlq;
#[cfg(feature = "local")]
pub mod fake_llm;
pub mod package;
#[cfg(feature = "local")]
pub mod run;
pub mod topology;

/// Exit code for a configuration or start-up problem.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for an operation that failed.
pub const EXIT_FAILED: u8 = 1;
