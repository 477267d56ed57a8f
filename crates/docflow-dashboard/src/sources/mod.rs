//! What the dashboard reads and acts on: the document store, the last-error records and the
//! audit trail of the app (over any blob store: the local folder, Azurite or Azure Storage), and
//! a [`Bus`] for the topology, its samples and dead-letter triage.
//!
//! - [`local::LocalBroker`]: the embedded broker in process (`docflow dev`): browsing has no
//!   side effects, and every figure is known.
//! - [`namespace::NamespaceBus`]: any Service Bus namespace over its REST and management APIs
//!   (Azure, or the embedded broker from another process): what `docflow dashboard` reads.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use docflow_app::dead_letters::{AuditTrail, DeadLetterBus, Reasons};
use docflow_app::last_errors::LastErrors;
use docflow_app::pipeline::store::DocumentStore;
use docflow_blob::BlobStore;
use docflow_servicebus::ClientError;

pub mod local;
pub mod namespace;

pub use local::LocalBroker;
pub use namespace::NamespaceBus;

/// A queue or a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityInfo {
    /// `queue` or `topic/subscriptions/sub`.
    pub path: String,
    /// Whether it is a subscription.
    pub subscription: bool,
    /// Where it forwards to (`ForwardTo`), if it does.
    pub forward_to: Option<String>,
}

/// One sample of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitySample {
    /// Active messages (locked ones included).
    pub active: u64,
    /// Scheduled.
    pub scheduled: u64,
    /// Deferred.
    pub deferred: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// When its oldest active message was enqueued (known only when [`Self::browsed`]).
    pub oldest_active: Option<DateTime<Utc>>,
    /// Its last sequence number (for a subscription, its topic's): growth means messages in
    /// (known only when [`Self::browsed`]).
    pub last_sequence_number: i64,
    /// Whether the entity's messages could be looked at: the oldest message and the last
    /// sequence number are known. Azure's management API gives counts only.
    pub browsed: bool,
    /// When the sample was taken.
    pub at: DateTime<Utc>,
}

/// A Service Bus namespace as the dashboard sees it.
#[async_trait]
pub trait Bus: DeadLetterBus {
    /// Every queue and subscription.
    async fn entities(&self) -> Result<Vec<EntityInfo>, ClientError>;
    /// A sample of one.
    async fn sample(&self, path: &str) -> Result<EntitySample, ClientError>;
    /// Every queue and subscription with a sample of each (one by one unless the bus can do
    /// better).
    async fn samples(&self) -> Result<Vec<(EntityInfo, EntitySample)>, ClientError> {
        let mut out = Vec::new();
        for entity in self.entities().await? {
            let sample = self.sample(&entity.path).await?;
            out.push((entity, sample));
        }
        Ok(out)
    }
    /// The triage operations, as the library takes them.
    fn as_dead_letter_bus(&self) -> &dyn DeadLetterBus;
}

/// Everything the dashboard reads and acts on.
#[derive(Clone)]
pub struct Sources {
    /// The app's documents.
    pub store: DocumentStore,
    /// The Service Bus namespace.
    pub bus: Arc<dyn Bus>,
    /// The handler's last-error records.
    pub reasons: Reasons,
    /// Where dead-letter actions are audited.
    pub audit: AuditTrail,
}

impl Sources {
    /// The app's documents, records and audit trail in `blobs` (containers as `settings` name
    /// them), and `bus`.
    pub fn of_app(
        blobs: Arc<dyn BlobStore>,
        settings: &docflow_app::config::Settings,
        bus: Arc<dyn Bus>,
    ) -> Self {
        Self {
            store: DocumentStore::new(blobs.clone(), settings.containers.clone()),
            bus,
            reasons: Reasons(Some(LastErrors::new(
                blobs.clone(),
                settings.process.state_container.clone(),
            ))),
            audit: AuditTrail::new(blobs, settings.containers.audit.clone()),
        }
    }
}
