//! The broker's rules, applied inside one SQLite transaction per call (`servicebus.md` §3).
//!
//! Every operation reads the clock once (`now`) and works lazily: expired locks, due scheduled
//! messages and expired messages are dealt with when an entity is next touched, so no
//! background task is needed for correctness and a restarted broker simply continues.

mod admin;
mod expiry;
mod receive;
mod restore;
mod runtime;
mod send;
mod sessions;

pub use self::restore::Activity;
pub use self::runtime::Runtime;

use rusqlite::{Connection, OptionalExtension, params};

use super::clock::{Millis, to_datetime};
use super::entities::{Entities, EntitySettings, Target};
use docflow_servicebus::message::{Message, MessageState, PropertyValue, ReceivedMessage};

/// Deepest auto-forwarding chain Service Bus allows.
pub const MAX_TRANSFER_HOPS: i64 = 4;

/// Broker errors, each mapped to the REST status Service Bus uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    /// No such queue, topic or subscription (410).
    #[error("the messaging entity '{0}' could not be found")]
    EntityNotFound(String),
    /// The lock token is unknown, expired or already settled (404).
    #[error(
        "the lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue"
    )]
    LockLost,
    /// No message with that sequence number in the required state (404).
    #[error("no message with sequence number {0} was found in the required state")]
    MessageNotFound(i64),
    /// A plain receive on a session entity (405).
    #[error(
        "it is not possible for an entity that requires sessions to create a non-sessionful message receiver"
    )]
    SessionRequired,
    /// A send without a SessionId to a session entity (400).
    #[error(
        "the SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value"
    )]
    SessionIdMissing,
    /// A session operation on an entity without sessions (400).
    #[error("the entity '{0}' does not require sessions")]
    NotSessionful(String),
    /// The session is locked by another receiver (409).
    #[error("the session '{0}' is locked by another receiver")]
    SessionLocked(String),
    /// The session lock is unknown or expired (404).
    #[error("the session lock was lost: it expired, or the session was closed")]
    SessionLockLost,
    /// The request cannot be carried out (400).
    #[error("{0}")]
    BadRequest(String),
    /// The message is larger than the entity accepts (403).
    #[error("the message of {size} bytes exceeds the maximum size of {limit} bytes")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The store failed (500).
    #[error("broker storage failed: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for BrokerError {
    fn from(e: rusqlite::Error) -> Self {
        BrokerError::Storage(e.to_string())
    }
}

type Result<T> = std::result::Result<T, BrokerError>;

/// The schema; created at start if missing.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (entity TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  entity TEXT NOT NULL, dlq INTEGER NOT NULL, seq INTEGER NOT NULL,
  state INTEGER NOT NULL, session_id TEXT, message_id TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL, expires_at INTEGER, scheduled_at INTEGER,
  failed INTEGER NOT NULL DEFAULT 0, lock_token TEXT, locked_until INTEGER,
  enqueued_seq INTEGER NOT NULL DEFAULT 0, hops INTEGER NOT NULL DEFAULT 0, dl_source TEXT,
  body BLOB NOT NULL, meta TEXT NOT NULL,
  UNIQUE (entity, dlq, seq));
CREATE INDEX IF NOT EXISTS messages_lock ON messages(lock_token) WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_locked_until ON messages(entity, locked_until) WHERE locked_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_scheduled ON messages(entity, scheduled_at) WHERE state = 1;
CREATE INDEX IF NOT EXISTS messages_session ON messages(entity, dlq, session_id, seq) WHERE session_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedup (entity TEXT NOT NULL, message_id TEXT NOT NULL, accepted_at INTEGER NOT NULL,
  PRIMARY KEY (entity, message_id));
CREATE INDEX IF NOT EXISTS dedup_age ON dedup(entity, accepted_at);
CREATE TABLE IF NOT EXISTS sessions (entity TEXT NOT NULL, session_id TEXT NOT NULL, state BLOB,
  lock_token TEXT, locked_until INTEGER, PRIMARY KEY (entity, session_id));
";

/// Brings a store written by an older version up to date; run at every open (idempotent).
///
/// Older versions numbered each subscription from a counter of its own; a subscription's
/// numbers now come from its topic's counter, so each topic's counter is raised to at least
/// the highest of its subscriptions' (those of subscriptions since removed included): no
/// sequence number is used twice.
pub fn upgrade(db: &Connection, entities: &Entities) -> rusqlite::Result<()> {
    for topic in entities.topics() {
        let key = Target::Topic(topic).key();
        db.execute(
            "INSERT INTO counters (entity, next_seq)
             SELECT ?1, MAX(next_seq) FROM counters WHERE substr(entity, 1, length(?2)) = ?2
             HAVING MAX(next_seq) IS NOT NULL
             ON CONFLICT (entity) DO UPDATE SET next_seq = MAX(next_seq, excluded.next_seq)",
            params![key, format!("{key}/subscriptions/")],
        )?;
    }
    Ok(())
}

const ACTIVE: i64 = 0;
const SCHEDULED: i64 = 1;
const DEFERRED: i64 = 2;

const COLUMNS: &str = "id, entity, dlq, seq, state, session_id, message_id, enqueued_at, expires_at, failed, \
                       lock_token, locked_until, enqueued_seq, hops, dl_source, body, meta";

/// One stored message.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    entity: String,
    dlq: bool,
    seq: i64,
    state: i64,
    enqueued_at: Millis,
    expires_at: Option<Millis>,
    failed: i64,
    lock_token: Option<String>,
    locked_until: Option<Millis>,
    enqueued_seq: i64,
    hops: i64,
    dl_source: Option<String>,
    body: Vec<u8>,
    meta: String,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            entity: r.get(1)?,
            dlq: r.get::<_, i64>(2)? != 0,
            seq: r.get(3)?,
            state: r.get(4)?,
            enqueued_at: r.get(7)?,
            expires_at: r.get(8)?,
            failed: r.get(9)?,
            lock_token: r.get(10)?,
            locked_until: r.get(11)?,
            enqueued_seq: r.get(12)?,
            hops: r.get(13)?,
            dl_source: r.get(14)?,
            body: r.get(15)?,
            meta: r.get(16)?,
        })
    }

    fn message(&self) -> Message {
        let mut message: Message = serde_json::from_str(&self.meta).unwrap_or_default();
        message.body = self.body.clone();
        message
    }

    fn received(&self, delivery_count: i64, show_lock: bool) -> ReceivedMessage {
        ReceivedMessage {
            message: self.message(),
            sequence_number: self.seq,
            enqueued_sequence_number: self.enqueued_seq,
            enqueued_time: to_datetime(self.enqueued_at),
            expires_at: self.expires_at.map(to_datetime),
            delivery_count: delivery_count.max(1) as u32,
            lock_token: if show_lock {
                self.lock_token.clone()
            } else {
                None
            },
            locked_until: if show_lock {
                self.locked_until.map(to_datetime)
            } else {
                None
            },
            state: match self.state {
                SCHEDULED => MessageState::Scheduled,
                DEFERRED => MessageState::Deferred,
                _ => MessageState::Active,
            },
            dead_letter_source: self.dl_source.clone(),
            location: None,
        }
    }
}

/// How a receive takes its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveMode {
    /// Lock it; settle later.
    PeekLock,
    /// Remove it at once.
    ReceiveAndDelete,
}

/// The result of a receive attempt.
#[derive(Debug, Clone)]
pub enum Receipt {
    /// A message.
    Message(Box<ReceivedMessage>),
    /// Nothing now; something may become available at this time (lock expiry, schedule).
    Empty {
        /// Earliest time worth checking again.
        next_check: Option<Millis>,
    },
}

/// What to do with a locked message.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// Remove it.
    Complete,
    /// Release it for redelivery (delivery count + 1).
    Abandon,
    /// Keep it aside, receivable only by sequence number.
    Defer,
    /// Move it to the dead-letter queue.
    DeadLetter {
        /// `DeadLetterReason`.
        reason: String,
        /// `DeadLetterErrorDescription`.
        description: String,
    },
}

/// A session lock.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionLock {
    /// The session.
    pub session_id: String,
    /// Token proving ownership.
    pub lock_token: String,
    /// End of the lock.
    pub locked_until: Millis,
}

/// Message counts of an entity.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Receivable now (locked ones included).
    pub active: u64,
    /// Locked by a receiver.
    pub locked: u64,
    /// Waiting for their time.
    pub scheduled: u64,
    /// Deferred.
    pub deferred: u64,
    /// In the dead-letter queue.
    pub dead_lettered: u64,
}

/// One transaction's view of the broker.
pub struct Core<'a> {
    db: &'a Connection,
    entities: &'a Entities,
    now: Millis,
    /// Entity keys with newly available messages (to wake long-polls after commit).
    pub notify: Vec<String>,
}

impl<'a> Core<'a> {
    /// A core at time `now`.
    pub fn new(db: &'a Connection, entities: &'a Entities, now: Millis) -> Self {
        Self {
            db,
            entities,
            now,
            notify: Vec::new(),
        }
    }

    /// Runs a statement, prepared once per connection and cached (parsing it again for every
    /// operation was a fifth of the writer's time).
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.db.prepare_cached(sql)?.execute(params)
    }

    /// Reads one row with a cached statement.
    fn one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.db.prepare_cached(sql)?.query_row(params, f)
    }

    fn target(&self, path: &str) -> Result<Target<'a>> {
        self.entities
            .resolve(path)
            .ok_or_else(|| BrokerError::EntityNotFound(path.to_string()))
    }

    fn receivable(&self, path: &str) -> Result<Target<'a>> {
        match self.target(path)? {
            Target::Topic(t) => Err(BrokerError::BadRequest(format!(
                "cannot receive from topic '{}'; receive from one of its subscriptions",
                t.name
            ))),
            other => Ok(other),
        }
    }

    fn rows(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Row>> {
        let mut statement = self.db.prepare_cached(sql)?;
        let rows = statement
            .query_map(params, Row::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn row(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Row>> {
        let mut statement = self.db.prepare_cached(sql)?;
        Ok(statement.query_row(params, Row::read).optional()?)
    }
}

/// The notify key of an entity's dead-letter queue.
pub fn dlq_key(key: &str) -> String {
    format!("{key}/$deadletterqueue")
}

fn set_dead_letter_properties(message: &mut Message, reason: &str, description: &str) {
    message.properties.insert(
        "DeadLetterReason".into(),
        PropertyValue::String(reason.to_string()),
    );
    message.properties.insert(
        "DeadLetterErrorDescription".into(),
        PropertyValue::String(description.to_string()),
    );
}

fn rand_u8() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// A database and entities for the unit tests of each concern, driven by the injected clock:
/// queue `q` (30 s locks, 2 deliveries, 60 s TTL dead-lettered, 60 s duplicate window),
/// session queue `s`, topic `t` with subscription `red` (SQL filter with an action), topic `u`
/// with subscriptions `a` and `b` (everything), `twice` (two rules with actions matching
/// `twice = 1`) and `onward` (forwarding what matches `onward = 1` to `q`).
#[cfg(test)]
pub(super) mod fixture {
    use super::*;

    /// Start of time in the tests.
    pub const T0: Millis = 1_700_000_000_000;

    pub fn open() -> (Connection, Entities) {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(SCHEMA).unwrap();
        let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "ns",
            "Queues": [
                {"Name": "q", "Properties": {"LockDuration": "PT30S", "MaxDeliveryCount": 2,
                    "DefaultMessageTimeToLive": "PT1M", "DeadLetteringOnMessageExpiration": true,
                    "RequiresDuplicateDetection": true, "DuplicateDetectionHistoryTimeWindow": "PT1M"}},
                {"Name": "s", "Properties": {"RequiresSession": true, "LockDuration": "PT30S"}}
            ],
            "Topics": [{"Name": "t", "Properties": {}, "Subscriptions": [
                {"Name": "red", "Properties": {}, "Rules": [{"Name": "r", "Properties": {
                    "FilterType": "Sql",
                    "SqlFilter": {"SqlExpression": "color = 'red'"},
                    "Action": {"SqlExpression": "SET seen = 1"}}}]}
            ]}, {"Name": "u", "Properties": {}, "Subscriptions": [
                {"Name": "a", "Properties": {}, "Rules": []},
                {"Name": "b", "Properties": {}, "Rules": []},
                {"Name": "twice", "Properties": {}, "Rules": [
                    {"Name": "one", "Properties": {"FilterType": "Sql",
                        "SqlFilter": {"SqlExpression": "twice = 1"},
                        "Action": {"SqlExpression": "SET copy = 1"}}},
                    {"Name": "two", "Properties": {"FilterType": "Sql",
                        "SqlFilter": {"SqlExpression": "twice = 1"},
                        "Action": {"SqlExpression": "SET copy = 2"}}}]},
                {"Name": "onward", "Properties": {"ForwardTo": "q"}, "Rules": [
                    {"Name": "o", "Properties": {"FilterType": "Sql",
                        "SqlFilter": {"SqlExpression": "onward = 1"}}}]}
            ]}]
        }]}});
        (db, Entities::from_json(&topology).unwrap())
    }

    /// A peek-lock receive at `now`, expecting a message.
    pub fn lock(db: &Connection, entities: &Entities, path: &str, now: Millis) -> ReceivedMessage {
        match Core::new(db, entities, now)
            .receive(path, false, ReceiveMode::PeekLock)
            .unwrap()
        {
            Receipt::Message(m) => *m,
            Receipt::Empty { .. } => panic!("no message in {path} at {now}"),
        }
    }

    /// Whether `path` has nothing receivable at `now`, and when to look again.
    pub fn empty(db: &Connection, entities: &Entities, path: &str, now: Millis) -> Option<Millis> {
        match Core::new(db, entities, now)
            .receive(path, false, ReceiveMode::PeekLock)
            .unwrap()
        {
            Receipt::Message(m) => panic!("unexpected message {:?}", m.message.message_id),
            Receipt::Empty { next_check } => next_check,
        }
    }
}
