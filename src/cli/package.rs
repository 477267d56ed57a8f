//! `docflow package`: prints what [`crate::deploy::package`] built, or why it could not.

use crate::deploy::package::{self, PackageError, PackageOptions};

use super::{EXIT_CONFIG, EXIT_FAILED};

/// Builds the zip and reports it; exit code 2 for an app that is not deployable, 1 for a
/// failed build.
pub fn run(options: PackageOptions) -> u8 {
    match package::package(&options) {
        Ok(report) => {
            let size = std::fs::metadata(&report.out).map(|m| m.len()).unwrap_or(0);
            println!("{} ({} KiB)", report.out.display(), size / 1024);
            for entry in &report.entries {
                println!("  {entry}");
            }
            match report.glibc_needed {
                Some(glibc) => println!(
                    "binary: {} (needs glibc {glibc}, target {})",
                    report.binary.display(),
                    options.build.target
                ),
                None => println!(
                    "binary: {} (no glibc symbol versions)",
                    report.binary.display()
                ),
            }
            0
        }
        Err(e) => {
            eprintln!("docflow package: {e}");
            match e {
                PackageError::App(_) | PackageError::Layout(_) => EXIT_CONFIG,
                _ => EXIT_FAILED,
            }
        }
    }
}
