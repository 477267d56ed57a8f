//! The embedded Service Bus broker: Azure's semantics on one machine, durable in SQLite.
//! Useful to any project that tests against Service Bus; depends on `docflow-servicebus` only.
//!
//! # Layout
//! - [`entities`]: the topology from `servicebus.config.json`, validated with JSON paths.
//! - [`filter`]: correlation and SQL filters, rule actions.
//! - [`core`]: the rules, one SQLite transaction per operation.
//! - [`rest`]: the Service Bus REST data plane (and local-only extras under `$local`).
//! - [`clock`]: injectable time.
//! - `sessions`: the [`Broker`]'s session operations (accept, receive within, lock, state).
//!
//! All writes go through one thread that owns the SQLite connection and commits groups of
//! operations together (group commit): an operation's caller is answered only after its
//! transaction is durable (WAL, `synchronous=FULL`), so a 201 means the message survives a
//! SIGKILL, and many concurrent senders share each fsync.

pub mod clock;
pub mod core;
pub mod entities;
pub mod filter;
pub mod rest;

mod notifiers;
mod sessions;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

pub use self::clock::{AdjustableClock, Clock, Millis};
pub use self::core::{
    Activity, BrokerError, Counts, Receipt, ReceiveMode, Runtime, SessionLock, Settlement,
};
use self::core::{Core, dlq_key};
pub use self::entities::{ConfigError, Entities};
use self::notifiers::Notifiers;
use self::writer::{Job, MAX_GROUP, Reply, Writer, open_db};
use docflow_servicebus::message::{Message, ReceivedMessage};
use docflow_servicebus::sas::SasRule;

/// Jobs waiting for the writer; callers beyond it wait to enqueue (backpressure, not growth).
const MAX_QUEUED_JOBS: usize = 4 * MAX_GROUP;

/// Options of a [`Broker`].
#[derive(Clone)]
pub struct BrokerOptions {
    /// Folder of the SQLite database.
    pub data_dir: PathBuf,
    /// The clock (advanced by tests and `POST /$local/clock`).
    pub clock: Arc<AdjustableClock>,
    /// Accepted SAS policies.
    pub sas_rules: Vec<SasRule>,
    /// Largest message accepted (Standard tier: 256 KB).
    pub max_message_bytes: usize,
    /// Longest receive long-poll.
    pub max_receive_timeout: Duration,
}

impl BrokerOptions {
    /// Defaults for a data folder: the emulator's well-known key, Standard-tier limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        use docflow_servicebus::connection::{EMULATOR_KEY, EMULATOR_KEY_NAME};
        use docflow_servicebus::sas::Rights;
        Self {
            data_dir: data_dir.into(),
            clock: Arc::new(AdjustableClock::new()),
            sas_rules: vec![SasRule {
                name: EMULATOR_KEY_NAME.into(),
                key: EMULATOR_KEY.into(),
                rights: Rights::ALL,
            }],
            max_message_bytes: 256 * 1024,
            max_receive_timeout: Duration::from_secs(300),
        }
    }
}

/// The in-process broker API. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    jobs: mpsc::Sender<Job>,
    notifiers: Arc<Notifiers>,
    entities: Arc<Entities>,
    options: BrokerOptions,
}

/// Errors starting a broker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The topology is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data folder or database cannot be used.
    #[error("cannot open the broker store in {path}: {message}")]
    Store {
        /// The folder.
        path: String,
        /// Why.
        message: String,
    },
}

impl Broker {
    /// Opens (or creates) the store in `options.data_dir` and starts the writer thread.
    pub fn open(entities: Entities, options: BrokerOptions) -> Result<Self, StartError> {
        let store_error = |e: &dyn std::fmt::Display| StartError::Store {
            path: options.data_dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&options.data_dir).map_err(|e| store_error(&e))?;
        let db = open_db(&options.data_dir.join("broker.sqlite3")).map_err(|e| store_error(&e))?;
        self::core::upgrade(&db, &entities).map_err(|e| store_error(&e))?;
        let entities = Arc::new(entities);
        let notifiers = Arc::new(Notifiers::default());
        let (tx, rx) = mpsc::channel(MAX_QUEUED_JOBS);
        Writer {
            db,
            jobs: rx,
            entities: entities.clone(),
            notifiers: notifiers.clone(),
            clock: options.clock.clone(),
        }
        .spawn()
        .map_err(|e| store_error(&e))?;
        Ok(Self {
            jobs: tx,
            notifiers,
            entities,
            options,
        })
    }

    /// The entities served.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// The options it runs with.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// Now, by the broker's clock.
    pub fn now(&self) -> Millis {
        self.options.clock.now()
    }

    /// Advances the broker's clock (tests, `$local/clock`) and wakes every waiting receiver.
    pub fn advance_clock(&self, by: Duration) {
        self.options
            .clock
            .advance(by.as_millis().min(i64::MAX as u128) as i64);
        self.notifiers.wake_all();
    }

    /// Runs `f` in its own savepoint of the next group transaction; answers after commit.
    async fn call<T, F>(&self, f: F) -> Result<T, BrokerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Core<'_>) -> Result<T, BrokerError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |core: &mut Core<'_>| {
            let result = f(core);
            let ok = result.is_ok();
            let answer: Reply = Box::new(move |commit_error: Option<BrokerError>| {
                let _ = reply.send(match commit_error {
                    Some(e) => Err(e),
                    None => result,
                });
            });
            (ok, answer)
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| BrokerError::Storage("the broker store has stopped".into()))?;
        // A job that panicked dropped its reply: its changes were rolled back and the writer
        // goes on serving.
        answer.await.map_err(|_| {
            BrokerError::Storage(
                "the operation failed inside the broker and was rolled back".into(),
            )
        })?
    }

    /// Sends messages to a queue or topic. Returns each message's sequence number in the entity
    /// that first stored it (`None` for a dropped duplicate or a topic copy nobody wanted).
    pub async fn send(
        &self,
        path: &str,
        messages: Vec<Message>,
    ) -> Result<Vec<Option<i64>>, BrokerError> {
        if let Some(size) = messages
            .iter()
            .map(Message::stored_size)
            .find(|size| *size > self.options.max_message_bytes)
        {
            return Err(BrokerError::TooLarge {
                size,
                limit: self.options.max_message_bytes,
            });
        }
        let path = path.to_string();
        self.call(move |core| core.send(&path, messages)).await
    }

    /// Receives one message, waiting up to `timeout` for one to become available.
    pub async fn receive(
        &self,
        path: &str,
        dlq: bool,
        mode: ReceiveMode,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, BrokerError> {
        self.receive_unless_stopped(path, dlq, mode, timeout, None)
            .await
    }

    /// [`Broker::receive`] that stops waiting, answering `Ok(None)`, once `stop` is notified
    /// (an AMQP receiver link being drained must answer at once). Only the wait is cut short,
    /// never the store taking a message: a message taken is returned, not lost.
    pub async fn receive_unless_stopped(
        &self,
        path: &str,
        dlq: bool,
        mode: ReceiveMode,
        timeout: Duration,
        stop: Option<&Notify>,
    ) -> Result<Option<ReceivedMessage>, BrokerError> {
        let key = self.receivable_key(path, dlq)?;
        let owned = path.to_string();
        self.wait_for(&key, timeout, stop, move || {
            let path = owned.clone();
            move |core: &mut Core<'_>| core.receive(&path, dlq, mode)
        })
        .await
    }

    /// Receives up to `max` messages (at least one if any arrives within `timeout`).
    pub async fn receive_batch(
        &self,
        path: &str,
        max: usize,
        mode: ReceiveMode,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, BrokerError> {
        let mut batch = Vec::new();
        if let Some(first) = self.receive(path, false, mode, timeout).await? {
            batch.push(first);
            while batch.len() < max {
                match self.receive(path, false, mode, Duration::ZERO).await? {
                    Some(m) => batch.push(m),
                    None => break,
                }
            }
        }
        Ok(batch)
    }

    fn receivable_key(&self, path: &str, dlq: bool) -> Result<String, BrokerError> {
        let key = self
            .entities
            .resolve(path)
            .ok_or_else(|| BrokerError::EntityNotFound(path.to_string()))?
            .key();
        Ok(if dlq { dlq_key(&key) } else { key })
    }

    /// Long-poll loop: try, then sleep until notified, the next lock/schedule deadline, or the timeout.
    /// Takes a message with `make`'s job, waiting up to `timeout` for one; `stop` (when
    /// notified) ends the wait between two attempts, never an attempt itself.
    async fn wait_for<M, F>(
        &self,
        key: &str,
        timeout: Duration,
        stop: Option<&Notify>,
        make: M,
    ) -> Result<Option<ReceivedMessage>, BrokerError>
    where
        M: Fn() -> F,
        F: FnOnce(&mut Core<'_>) -> Result<Receipt, BrokerError> + Send + 'static,
    {
        let timeout = timeout.min(self.options.max_receive_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let notify = self.notifiers.get(key);
        let stopped = async {
            match stop {
                Some(stop) => stop.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopped);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_check = match self.call(make()).await? {
                Receipt::Message(m) => return Ok(Some(*m)),
                Receipt::Empty { next_check } => next_check,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let mut wake = deadline;
            if let Some(at) = next_check {
                let wait = Duration::from_millis(at.saturating_sub(self.now()).max(1) as u64);
                // Never past the deadline (and no Instant overflow for far-future schedules).
                wake = wake.min(now + wait.min(deadline - now));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
                () = &mut stopped => return Ok(None),
            }
        }
    }

    /// Settles a locked message.
    pub async fn settle(
        &self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        id: Option<&str>,
        settlement: Settlement,
    ) -> Result<(), BrokerError> {
        let (path, token, id) = (
            path.to_string(),
            lock_token.to_string(),
            id.map(str::to_owned),
        );
        self.call(move |core| core.settle(&path, dlq, &token, id.as_deref(), settlement))
            .await
    }

    /// Settles a locked message after merging `properties` into its application properties
    /// (the `properties-to-modify` of an AMQP abandon, defer or dead-letter), in one
    /// transaction.
    pub async fn settle_modified(
        &self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        settlement: Settlement,
        properties: std::collections::BTreeMap<String, docflow_servicebus::message::PropertyValue>,
    ) -> Result<(), BrokerError> {
        let (path, token) = (path.to_string(), lock_token.to_string());
        self.call(move |core| core.settle_modified(&path, dlq, &token, settlement, properties))
            .await
    }

    /// Completes a received message.
    pub async fn complete_message(
        &self,
        path: &str,
        message: &ReceivedMessage,
    ) -> Result<(), BrokerError> {
        self.settle_received(path, message, Settlement::Complete)
            .await
    }

    /// Abandons a received message.
    pub async fn abandon_message(
        &self,
        path: &str,
        message: &ReceivedMessage,
    ) -> Result<(), BrokerError> {
        self.settle_received(path, message, Settlement::Abandon)
            .await
    }

    /// Dead-letters a received message.
    pub async fn dead_letter_message(
        &self,
        path: &str,
        message: &ReceivedMessage,
        reason: &str,
        description: &str,
    ) -> Result<(), BrokerError> {
        let settlement = Settlement::DeadLetter {
            reason: reason.into(),
            description: description.into(),
        };
        self.settle_received(path, message, settlement).await
    }

    /// Defers a received message.
    pub async fn defer_message(
        &self,
        path: &str,
        message: &ReceivedMessage,
    ) -> Result<(), BrokerError> {
        self.settle_received(path, message, Settlement::Defer).await
    }

    async fn settle_received(
        &self,
        path: &str,
        message: &ReceivedMessage,
        settlement: Settlement,
    ) -> Result<(), BrokerError> {
        let token = message.lock_token.as_deref().ok_or(BrokerError::LockLost)?;
        let (path, dlq) = split_dlq(path);
        self.settle(&path, dlq, token, None, settlement).await
    }

    /// Renews a message lock; returns the new end of the lock.
    pub async fn renew_message_lock(
        &self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        id: Option<&str>,
    ) -> Result<Millis, BrokerError> {
        let (path, token, id) = (
            path.to_string(),
            lock_token.to_string(),
            id.map(str::to_owned),
        );
        self.call(move |core| core.renew_lock(&path, dlq, &token, id.as_deref()))
            .await
    }

    /// Receives a deferred message by sequence number.
    pub async fn receive_deferred(
        &self,
        path: &str,
        seq: i64,
    ) -> Result<ReceivedMessage, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.receive_deferred(&path, seq))
            .await
    }

    /// Browses without locking.
    pub async fn browse(
        &self,
        path: &str,
        dlq: bool,
        from_seq: i64,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.browse(&path, dlq, from_seq, max))
            .await
    }

    /// Message counts of a queue or subscription.
    pub async fn counts(&self, path: &str) -> Result<Counts, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.counts(&path)).await
    }

    /// The management API's figures of queues and subscriptions, read in one transaction.
    pub async fn runtimes(&self, paths: Vec<String>) -> Result<Vec<Runtime>, BrokerError> {
        self.call(move |core| paths.iter().map(|p| core.runtime(p)).collect())
            .await
    }

    /// Deletes every message of a queue or subscription (or its DLQ).
    pub async fn purge(&self, path: &str, dlq: bool) -> Result<u64, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.purge(&path, dlq)).await
    }

    /// Cancels a scheduled message by the sequence number its send returned.
    pub async fn cancel_scheduled(&self, path: &str, seq: i64) -> Result<(), BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.cancel_scheduled_sent(&path, seq))
            .await
    }

    /// Puts dead-lettered message `seq` of a queue or subscription back in its main queue as
    /// `message`: only there (never through its topic to every subscription), in one step.
    pub async fn restore_dead_lettered(
        &self,
        path: &str,
        seq: i64,
        message: Message,
    ) -> Result<(), BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.restore_dead_lettered(&path, seq, message))
            .await
    }

    /// Removes dead-lettered message `seq` of a queue or subscription.
    pub async fn remove_dead_lettered(&self, path: &str, seq: i64) -> Result<(), BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.remove_dead_lettered(&path, seq))
            .await
    }

    /// A queue's or subscription's oldest active message's enqueue time and last sequence
    /// number (for ages and rates).
    pub async fn activity(&self, path: &str) -> Result<Activity, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.activity(&path)).await
    }
}

/// Splits a trailing `/$DeadLetterQueue` (any case) off an entity path.
pub fn split_dlq(path: &str) -> (String, bool) {
    let trimmed = path.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    match lower.strip_suffix("/$deadletterqueue") {
        Some(base) => (trimmed[..base.len()].to_string(), true),
        None => (trimmed.to_string(), false),
    }
}

#[async_trait::async_trait]
impl docflow_servicebus::MessageSender for Broker {
    async fn send(
        &self,
        entity: &str,
        message: &Message,
    ) -> Result<(), docflow_servicebus::ClientError> {
        self.send_all(entity, std::slice::from_ref(message)).await
    }

    async fn send_all(
        &self,
        entity: &str,
        messages: &[Message],
    ) -> Result<(), docflow_servicebus::ClientError> {
        Broker::send(self, entity, messages.to_vec())
            .await
            .map(|_| ())
            .map_err(|e| docflow_servicebus::ClientError::BadRequest(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(dir: &std::path::Path) -> Broker {
        let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
            "Queues": [{"Name": "q", "Properties": {}}], "Topics": []}]}});
        Broker::open(
            Entities::from_json(&topology).unwrap(),
            BrokerOptions::new(dir),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_for_its_caller_and_the_writer_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path());
        // A job that writes, then panics: its caller gets an error, its write is rolled back.
        let failed = broker
            .call(|core: &mut Core<'_>| -> Result<(), BrokerError> {
                core.send("q", vec![Message::new("lost")])?;
                panic!("a bug in one operation");
            })
            .await;
        assert!(
            matches!(&failed, Err(BrokerError::Storage(d)) if d.contains("rolled back")),
            "{failed:?}"
        );
        // Concurrent and later operations are served.
        broker.send("q", vec![Message::new("kept")]).await.unwrap();
        let got = broker
            .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
            .await
            .unwrap()
            .expect("the later message");
        assert_eq!(&got.message.body[..], b"kept");
        let none = broker
            .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
            .await
            .unwrap();
        assert!(none.is_none(), "the panicking job's send was rolled back");
    }
}
