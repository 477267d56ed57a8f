//! Command-line commands beyond `serve`: each returns a process exit code and prints clear
//! messages; `main.rs` only parses arguments and dispatches here.

pub mod bench;
pub mod broker;
pub mod dev;
pub mod dlq;
pub mod package;
pub mod run;

/// Exit code for a configuration or start-up problem.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for an operation that failed.
pub const EXIT_FAILED: u8 = 1;
