//! Wakes long-polling receivers when an entity gets something to receive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Wakes long-polling receivers of an entity.
#[derive(Default)]
pub(super) struct Notifiers {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Notifiers {
    pub(super) fn get(&self, key: &str) -> Arc<Notify> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    pub(super) fn wake(&self, key: &str) {
        if let Some(n) = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
        {
            n.notify_waiters();
        }
    }

    pub(super) fn wake_all(&self) {
        for n in self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            n.notify_waiters();
        }
    }
}
