//! `docflow topology emulator`: the topology as a `Config.json` for Microsoft's Service Bus
//! emulator, on stdout; each value clamped to the emulator's limits is named on stderr, one
//! line each. The conversion is `docflow_servicebus::topology::emulator`'s.

use std::io::Write;
use std::path::Path;

use crate::topology::emulator::{self, EmulatorError};

/// Prints the emulator's `Config.json` for the topology at `config`; the exit code.
pub fn emulator(config: &Path) -> u8 {
    match emulator::load(config) {
        Ok(conversion) => {
            for clamp in &conversion.clamps {
                eprintln!("docflow topology emulator: clamped {clamp}");
            }
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(conversion.to_json().as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("docflow topology emulator: cannot write the file: {e}");
                    super::EXIT_FAILED
                }
            }
        }
        Err(e @ EmulatorError::Unrepresentable(_)) => {
            eprintln!("docflow topology emulator: {}: {e}", config.display());
            super::EXIT_CONFIG
        }
        Err(e) => {
            eprintln!("docflow topology emulator: {e}");
            super::EXIT_CONFIG
        }
    }
}
