//! The Functions of the app, one file each, and the registry the router dispatches to.
//!
//! A function's name is its folder name at the app root (`ProcessDocument/function.json`),
//! which is also the path the host POSTs to.

pub mod process_document;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use process_document::ProcessDocument;

use crate::outcome::Outcome;
use crate::protocol::InvocationRequest;

/// Who is being invoked, from the host's headers.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `X-Azure-Functions-InvocationId`.
    pub invocation_id: Option<String>,
    /// The function name from the path.
    pub function: String,
}

/// One Function: decodes its trigger, does its work, reports an outcome.
#[async_trait]
pub trait Function: Send + Sync {
    /// The folder name at the app root.
    fn name(&self) -> &'static str;

    /// Handles one invocation.
    async fn invoke(&self, invocation: &Invocation, request: InvocationRequest) -> Outcome;
}

/// The functions the handler serves, by name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<String, Arc<dyn Function>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a function under its name.
    pub fn with(mut self, function: Arc<dyn Function>) -> Self {
        self.functions.insert(function.name().to_string(), function);
        self
    }

    /// The function of that name (exact spelling, as the host sends it).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Function>> {
        self.functions.get(name).cloned()
    }

    /// The names served.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}
