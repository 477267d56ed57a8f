//! The live state every view reads: a poll loop samples the documents (recent index and state
//! records) every second and the queues every two seconds while anyone watches, and publishes
//! each result as a [`Snapshot`] on a `watch` channel. Pages read the latest snapshot (taking
//! a fresh one when it is stale); each server-sent event stream wakes on a new snapshot and
//! sends what changed for its view.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::documents::{DocumentRow, MAX_ROWS, MAX_SEARCH_TEXT};
use crate::queues::QueueRow;
use crate::sources::{EntitySample, Sources};
use docflow_app::pipeline::state::DocumentState;

/// How often documents are sampled while someone watches.
pub const DOCUMENT_INTERVAL: Duration = Duration::from_millis(1000);
/// Queues are sampled on every second document sample: each sample is two broker operations
/// per entity, through the broker's one writer.
const QUEUE_EVERY: u64 = 2;
/// A snapshot older than this is refreshed before a page is rendered from it.
const STALE: Duration = Duration::from_millis(1500);

/// What the dashboard knows at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Increases with every new snapshot.
    pub version: u64,
    /// When it was taken.
    pub taken_at: Option<DateTime<Utc>>,
    /// The most recent documents, newest first.
    pub rows: Vec<DocumentRow>,
    /// The queues and subscriptions (empty until first sampled).
    pub queues: Vec<QueueRow>,
    /// A problem reading the sources, shown on every page.
    pub problem: Option<String>,
}

/// The poll loop's state and the channel it publishes on.
pub struct Live {
    sources: Sources,
    tx: watch::Sender<Arc<Snapshot>>,
    /// Serialises samples, and keeps what a sample needs from the last one.
    sampler: Mutex<Sampler>,
}

#[derive(Default)]
struct Sampler {
    ticks: u64,
    /// Document texts (lower case, clipped), which never change, by document id.
    texts: HashMap<String, String>,
    previous_samples: HashMap<String, EntitySample>,
}

impl Live {
    /// Live state over `sources`; nothing is sampled until [`Live::run`] or a page asks.
    pub fn new(sources: Sources) -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        Arc::new(Self {
            sources,
            tx,
            sampler: Mutex::new(Sampler::default()),
        })
    }

    /// The sources.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Samples while anyone watches, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(DOCUMENT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.tx.receiver_count() > 0 {
                self.sample(false).await;
            }
        }
    }

    /// A receiver of every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// The latest snapshot, refreshed first when stale (queues included when `queues`).
    pub async fn current(&self, queues: bool) -> Arc<Snapshot> {
        let latest = self.tx.borrow().clone();
        let stale = latest
            .taken_at
            .is_none_or(|t| (Utc::now() - t).to_std().unwrap_or_default() > STALE);
        if stale || (queues && latest.queues.is_empty()) {
            return self.sample(queues).await;
        }
        latest
    }

    /// Takes a snapshot now and publishes it.
    pub async fn sample(&self, force_queues: bool) -> Arc<Snapshot> {
        let mut sampler = self.sampler.lock().await;
        sampler.ticks += 1;
        let previous = self.tx.borrow().clone();
        let mut problem = None;
        let rows = match self.documents(&mut sampler).await {
            Ok(rows) => rows,
            Err(e) => {
                problem = Some(format!("cannot read the documents: {e}"));
                previous.rows.clone()
            }
        };
        let queues =
            if force_queues || sampler.ticks % QUEUE_EVERY == 0 || previous.queues.is_empty() {
                match self.queues(&mut sampler).await {
                    Ok(q) => q,
                    Err(e) => {
                        problem = Some(format!("cannot read the queues: {e}"));
                        previous.queues.clone()
                    }
                }
            } else {
                previous.queues.clone()
            };
        let snapshot = Arc::new(Snapshot {
            version: previous.version + 1,
            taken_at: Some(Utc::now()),
            rows,
            queues,
            problem,
        });
        self.tx.send_replace(snapshot.clone());
        snapshot
    }

    /// The lower-case text of a document, as far as the search reads it.
    pub async fn text_of(&self, id: &str) -> Option<String> {
        self.sampler.lock().await.texts.get(id).cloned()
    }

    async fn documents(&self, sampler: &mut Sampler) -> Result<Vec<DocumentRow>, String> {
        let store = &self.sources.store;
        let page = store
            .recent(None, MAX_ROWS)
            .await
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::with_capacity(page.entries.len());
        for entry in &page.entries {
            let Some(state) = store
                .state(&entry.document_id)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            if !sampler.texts.contains_key(&state.document_id) {
                let text = self.read_text(&state).await;
                sampler.texts.insert(state.document_id.clone(), text);
            }
            rows.push(DocumentRow::of(&state));
        }
        Ok(rows)
    }

    async fn read_text(&self, state: &DocumentState) -> String {
        let content = &state.content;
        match self
            .sources
            .store
            .blobs()
            .get(&content.container, &content.blob)
            .await
        {
            Ok(blob) => {
                let end = blob.data.len().min(MAX_SEARCH_TEXT);
                String::from_utf8_lossy(&blob.data[..end]).to_lowercase()
            }
            Err(_) => String::new(),
        }
    }

    async fn queues(&self, sampler: &mut Sampler) -> Result<Vec<QueueRow>, String> {
        let samples = self
            .sources
            .bus
            .samples()
            .await
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for (entity, sample) in samples {
            let previous = sampler.previous_samples.insert(entity.path.clone(), sample);
            rows.push(QueueRow::of(entity, sample, previous.as_ref()));
        }
        Ok(rows)
    }
}
