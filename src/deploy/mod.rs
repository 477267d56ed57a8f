//! Deployment: what it takes to run the app on Azure Functions.
//!
//! - [`az_cli`]: the Service Bus topology as `az servicebus` commands.
//! - [`package`]: the deployable zip (binary linked for the Functions Linux images, host.json,
//!   function folders, topology).

pub mod az_cli;
pub mod package;

pub use az_cli::az_cli_script;
