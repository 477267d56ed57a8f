//! The broker's rules, applied inside one SQLite transaction per call (`servicebus.md` §3).
//!
//! Every operation reads the clock once (`now`) and works lazily: expired locks, due scheduled
//! messages and expired messages are dealt with when an entity is next touched, so no
//! background task is needed for correctness and a restarted broker simply continues.

use rusqlite::{Connection, OptionalExtension, params};

use super::clock::{Millis, to_datetime};
use super::entities::{Entities, EntitySettings, Target};
use crate::servicebus::message::{Message, MessageState, PropertyValue, ReceivedMessage};

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

    // ----- sending -----

    /// Sends messages to a queue or topic; duplicates (by MessageId) are accepted and dropped.
    pub fn send(&mut self, path: &str, messages: Vec<Message>) -> Result<Vec<Option<i64>>> {
        let target = self.target(path)?;
        if let Target::Subscription(..) = target {
            return Err(BrokerError::BadRequest(format!(
                "cannot send to subscription '{path}'; send to its topic"
            )));
        }
        let settings = target.settings();
        if settings.requires_session && messages.iter().any(|m| m.session_id.is_none()) {
            return Err(BrokerError::SessionIdMissing);
        }
        let mut sequence_numbers = Vec::with_capacity(messages.len());
        for mut message in messages {
            let id = message
                .message_id
                .get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string())
                .clone();
            if settings.requires_duplicate_detection
                && self.is_duplicate(&target.key(), &id, settings)?
            {
                sequence_numbers.push(None);
                continue;
            }
            sequence_numbers.push(self.route(target, message, 0, 0, None)?);
        }
        Ok(sequence_numbers)
    }

    fn is_duplicate(&mut self, key: &str, id: &str, settings: &EntitySettings) -> Result<bool> {
        let window_start = self.now - settings.duplicate_window.as_millis() as i64;
        let seen: Option<Millis> = self
            .db
            .query_row(
                "SELECT accepted_at FROM dedup WHERE entity = ?1 AND message_id = ?2",
                params![key, id],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some_and(|at| at > window_start) {
            return Ok(true);
        }
        self.db.execute(
            "INSERT INTO dedup (entity, message_id, accepted_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (entity, message_id) DO UPDATE SET accepted_at = excluded.accepted_at",
            params![key, id, self.now],
        )?;
        if rand_u8() == 0 {
            self.db.execute(
                "DELETE FROM dedup WHERE entity = ?1 AND accepted_at <= ?2",
                params![key, window_start],
            )?;
        }
        Ok(false)
    }

    /// Delivers a message into a queue or topic (fan-out), following auto-forwarding.
    /// Returns the sequence number in the first entity that stored it, if any.
    fn route(
        &mut self,
        target: Target<'a>,
        message: Message,
        hops: i64,
        enqueued_seq: i64,
        dl_source: Option<String>,
    ) -> Result<Option<i64>> {
        match target {
            Target::Topic(topic) => {
                let mut first = None;
                for sub in &topic.subscriptions {
                    let mut plain_match = false;
                    for rule in &sub.rules {
                        if !rule.filter.matches(&message) {
                            continue;
                        }
                        match &rule.action {
                            None => plain_match = true,
                            Some(action) => {
                                let mut copy = message.clone();
                                action.apply(&mut copy);
                                copy.properties.insert(
                                    "RuleName".into(),
                                    PropertyValue::String(rule.name.clone()),
                                );
                                let seq = self.enqueue(
                                    Target::Subscription(topic, sub),
                                    copy,
                                    hops,
                                    enqueued_seq,
                                    dl_source.clone(),
                                )?;
                                first = first.or(seq);
                            }
                        }
                    }
                    if plain_match {
                        let seq = self.enqueue(
                            Target::Subscription(topic, sub),
                            message.clone(),
                            hops,
                            enqueued_seq,
                            dl_source.clone(),
                        )?;
                        first = first.or(seq);
                    }
                }
                Ok(first)
            }
            entity => self.enqueue(entity, message, hops, enqueued_seq, dl_source),
        }
    }

    fn next_seq(&mut self, key: &str) -> Result<i64> {
        let seq: i64 = self.db.query_row(
            "INSERT INTO counters (entity, next_seq) VALUES (?1, 2)
             ON CONFLICT (entity) DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq - 1",
            params![key],
            |r| r.get(0),
        )?;
        Ok(seq)
    }

    /// Stores a message in a queue or subscription (or forwards it on).
    fn enqueue(
        &mut self,
        entity: Target<'a>,
        message: Message,
        hops: i64,
        enqueued_seq: i64,
        dl_source: Option<String>,
    ) -> Result<Option<i64>> {
        let key = entity.key();
        let settings = entity.settings();
        let seq = self.next_seq(&key)?;
        let enqueued_seq = if enqueued_seq == 0 && hops > 0 {
            seq
        } else {
            enqueued_seq
        };
        if let Some(forward) = &settings.forward_to {
            let destination = self.target(forward)?;
            if hops >= MAX_TRANSFER_HOPS {
                self.insert_dead_letter(&key, seq, &message, hops, enqueued_seq, dl_source, "MaxTransferHopCountExceeded",
                    "The maximum number of allowed hops when forwarding between queues has been exceeded. This value is set to 4.")?;
                return Ok(Some(seq));
            }
            if destination.settings().requires_session && message.session_id.is_none() {
                self.insert_dead_letter(&key, seq, &message, hops, enqueued_seq, dl_source, "SessionIdIsNull",
                    "The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.")?;
                return Ok(Some(seq));
            }
            let origin = if enqueued_seq == 0 { seq } else { enqueued_seq };
            self.route(destination, message, hops + 1, origin, dl_source)?;
            return Ok(Some(seq));
        }
        if settings.requires_session && message.session_id.is_none() {
            self.insert_dead_letter(
                &key,
                seq,
                &message,
                hops,
                enqueued_seq,
                dl_source,
                "Session ID is null.",
                "Session enabled entity doesn't allow a message whose session identifier is null.",
            )?;
            return Ok(Some(seq));
        }
        let scheduled = message
            .scheduled_enqueue_time
            .map(|t| t.timestamp_millis())
            .filter(|t| *t > self.now);
        let (state, expires_at) = match scheduled {
            Some(_) => (SCHEDULED, None),
            None => (ACTIVE, Some(self.expiry(settings, &message, self.now))),
        };
        self.insert(
            &key,
            false,
            seq,
            state,
            &message,
            self.now,
            expires_at.flatten(),
            scheduled,
            0,
            enqueued_seq,
            hops,
            dl_source,
        )?;
        if state == ACTIVE {
            self.notify.push(key);
        }
        Ok(Some(seq))
    }

    fn expiry(&self, settings: &EntitySettings, message: &Message, from: Millis) -> Option<Millis> {
        let ttl = match (message.time_to_live, settings.default_ttl) {
            (Some(m), Some(d)) => Some(m.min(d)),
            (m, d) => m.or(d),
        };
        ttl.map(|t| from.saturating_add(t.as_millis().min(i64::MAX as u128) as i64))
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        key: &str,
        dlq: bool,
        seq: i64,
        state: i64,
        message: &Message,
        enqueued_at: Millis,
        expires_at: Option<Millis>,
        scheduled_at: Option<Millis>,
        failed: i64,
        enqueued_seq: i64,
        hops: i64,
        dl_source: Option<String>,
    ) -> Result<()> {
        let mut meta = message.clone();
        meta.body = Vec::new();
        self.db.execute(
            "INSERT INTO messages (entity, dlq, seq, state, session_id, message_id, enqueued_at, expires_at, scheduled_at,
                                   failed, enqueued_seq, hops, dl_source, body, meta)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![key, dlq as i64, seq, state, message.session_id, message.message_id.clone().unwrap_or_default(),
                    enqueued_at, expires_at, scheduled_at, failed, enqueued_seq, hops, dl_source, message.body,
                    serde_json::to_string(&meta).expect("message metadata serializes")],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_dead_letter(
        &mut self,
        key: &str,
        seq: i64,
        message: &Message,
        hops: i64,
        enqueued_seq: i64,
        dl_source: Option<String>,
        reason: &str,
        description: &str,
    ) -> Result<()> {
        let mut message = message.clone();
        set_dead_letter_properties(&mut message, reason, description);
        self.insert(
            key,
            true,
            seq,
            ACTIVE,
            &message,
            self.now,
            None,
            None,
            0,
            enqueued_seq,
            hops,
            dl_source,
        )?;
        self.notify.push(dlq_key(key));
        Ok(())
    }

    // ----- lazy maintenance -----

    /// Applies what time has done to an entity: lock expiry, scheduled activation.
    fn sweep(&mut self, entity: Target<'a>) -> Result<()> {
        let key = entity.key();
        let settings = entity.settings();
        // Session locks that lapsed: their messages' locks lapse with them (same deadline).
        self.db.execute(
            "UPDATE sessions SET lock_token = NULL, locked_until = NULL WHERE entity = ?1 AND locked_until <= ?2",
            params![key, self.now],
        )?;
        let expired: Vec<Row> = self.rows(
            &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND locked_until IS NOT NULL AND locked_until <= ?2 ORDER BY seq"),
            params![key, self.now],
        )?;
        for row in expired {
            self.release(entity, row, true)?;
        }
        let due: Vec<Row> = self.rows(
            &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND state = {SCHEDULED} AND scheduled_at <= ?2 ORDER BY scheduled_at, seq"),
            params![key, self.now],
        )?;
        for row in due {
            let seq = self.next_seq(&key)?;
            let expires_at = self.expiry(settings, &row.message(), self.now);
            self.db.execute(
                "UPDATE messages SET state = ?1, seq = ?2, enqueued_at = ?3, expires_at = ?4, scheduled_at = NULL WHERE id = ?5",
                params![ACTIVE, seq, self.now, expires_at, row.id],
            )?;
            self.notify.push(key.clone());
        }
        Ok(())
    }

    /// Ends a delivery without settlement: counts the failure (unless `counted` is false) and
    /// dead-letters or expires the message as the rules say.
    fn release(&mut self, entity: Target<'a>, row: Row, counted: bool) -> Result<()> {
        let failed = row.failed + i64::from(counted);
        self.db.execute(
            "UPDATE messages SET failed = ?1, lock_token = NULL, locked_until = NULL WHERE id = ?2",
            params![failed, row.id],
        )?;
        let settings = entity.settings();
        if !row.dlq && counted && failed >= i64::from(settings.max_delivery_count) {
            let description = format!(
                "Message could not be consumed after {} delivery attempts.",
                settings.max_delivery_count
            );
            return self.dead_letter(
                entity,
                Row { failed, ..row },
                "MaxDeliveryCountExceeded",
                &description,
            );
        }
        if !row.dlq && row.expires_at.is_some_and(|e| e <= self.now) && row.state == ACTIVE {
            return self.expire(entity, Row { failed, ..row });
        }
        self.notify.push(if row.dlq {
            dlq_key(&row.entity)
        } else {
            row.entity.clone()
        });
        Ok(())
    }

    fn expire(&mut self, entity: Target<'a>, row: Row) -> Result<()> {
        if entity.settings().dead_letter_on_expiration {
            self.dead_letter(
                entity,
                row,
                "TTLExpiredException",
                "The message expired and was dead lettered.",
            )
        } else {
            self.db
                .execute("DELETE FROM messages WHERE id = ?1", params![row.id])?;
            Ok(())
        }
    }

    /// Moves a main-queue message to the dead-letter queue, or on to `ForwardDeadLetteredMessagesTo`.
    fn dead_letter(
        &mut self,
        entity: Target<'a>,
        row: Row,
        reason: &str,
        description: &str,
    ) -> Result<()> {
        let mut message = row.message();
        set_dead_letter_properties(&mut message, reason, description);
        if let Some(target) = &entity.settings().forward_dead_lettered_to
            && row.hops < MAX_TRANSFER_HOPS
        {
            let destination = self.target(target)?;
            self.db
                .execute("DELETE FROM messages WHERE id = ?1", params![row.id])?;
            let origin = if row.enqueued_seq == 0 {
                row.seq
            } else {
                row.enqueued_seq
            };
            self.route(
                destination,
                message,
                row.hops + 1,
                origin,
                Some(entity.display()),
            )?;
            return Ok(());
        }
        let mut meta = message;
        meta.body = Vec::new();
        self.db.execute(
            "UPDATE messages SET dlq = 1, state = ?1, lock_token = NULL, locked_until = NULL, expires_at = NULL, meta = ?2 WHERE id = ?3",
            params![ACTIVE, serde_json::to_string(&meta).expect("message metadata serializes"), row.id],
        )?;
        self.notify.push(dlq_key(&row.entity));
        Ok(())
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

    // ----- receiving -----

    /// Receives the next available message of a queue or subscription (or its DLQ).
    pub fn receive(&mut self, path: &str, dlq: bool, mode: ReceiveMode) -> Result<Receipt> {
        let entity = self.receivable(path)?;
        if entity.settings().requires_session && !dlq {
            return Err(BrokerError::SessionRequired);
        }
        self.receive_where(entity, dlq, mode, None)
    }

    fn receive_where(
        &mut self,
        entity: Target<'a>,
        dlq: bool,
        mode: ReceiveMode,
        session: Option<&SessionLock>,
    ) -> Result<Receipt> {
        self.sweep(entity)?;
        let key = entity.key();
        loop {
            let candidate = match session {
                None => self.row(
                    &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND dlq = ?2 AND state = {ACTIVE} AND lock_token IS NULL ORDER BY seq LIMIT 1"),
                    params![key, dlq as i64],
                )?,
                Some(s) => self.row(
                    &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND dlq = 0 AND session_id = ?2 AND state = {ACTIVE} AND lock_token IS NULL ORDER BY seq LIMIT 1"),
                    params![key, s.session_id],
                )?,
            };
            let Some(row) = candidate else {
                return Ok(Receipt::Empty {
                    next_check: self.next_check(&key)?,
                });
            };
            if !row.dlq && row.expires_at.is_some_and(|e| e <= self.now) {
                self.expire(entity, row)?;
                continue;
            }
            return self
                .take(row, mode, session.map(|s| s.locked_until))
                .map(|m| Receipt::Message(Box::new(m)));
        }
    }

    fn take(
        &mut self,
        row: Row,
        mode: ReceiveMode,
        lock_until: Option<Millis>,
    ) -> Result<ReceivedMessage> {
        let delivery_count = row.failed + 1;
        match mode {
            ReceiveMode::ReceiveAndDelete => {
                self.db
                    .execute("DELETE FROM messages WHERE id = ?1", params![row.id])?;
                Ok(row.received(delivery_count, false))
            }
            ReceiveMode::PeekLock => {
                let settings = self.target(&row.entity)?.settings().clone();
                let token = uuid::Uuid::new_v4().to_string();
                let until =
                    lock_until.unwrap_or(self.now + settings.lock_duration.as_millis() as i64);
                self.db.execute(
                    "UPDATE messages SET lock_token = ?1, locked_until = ?2 WHERE id = ?3",
                    params![token, until, row.id],
                )?;
                let locked = Row {
                    lock_token: Some(token),
                    locked_until: Some(until),
                    ..row
                };
                Ok(locked.received(delivery_count, true))
            }
        }
    }

    fn next_check(&self, key: &str) -> Result<Option<Millis>> {
        let next: Option<Millis> = self.db.query_row(
            &format!("SELECT MIN(t) FROM (
                SELECT MIN(locked_until) AS t FROM messages WHERE entity = ?1 AND locked_until IS NOT NULL
                UNION ALL SELECT MIN(scheduled_at) FROM messages WHERE entity = ?1 AND state = {SCHEDULED}
                UNION ALL SELECT MIN(locked_until) FROM sessions WHERE entity = ?1 AND locked_until IS NOT NULL)"),
            params![key],
            |r| r.get(0),
        )?;
        Ok(next)
    }

    /// Receives a deferred message by sequence number (locking it).
    pub fn receive_deferred(&mut self, path: &str, seq: i64) -> Result<ReceivedMessage> {
        let entity = self.receivable(path)?;
        self.sweep(entity)?;
        let row = self
            .row(
                &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND dlq = 0 AND seq = ?2 AND state = {DEFERRED} AND lock_token IS NULL"),
                params![entity.key(), seq],
            )?
            .ok_or(BrokerError::MessageNotFound(seq))?;
        self.take(row, ReceiveMode::PeekLock, None)
    }

    // ----- settling -----

    fn locked_row(
        &mut self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        id: Option<&str>,
    ) -> Result<(Target<'a>, Row)> {
        let entity = self.receivable(path)?;
        self.sweep(entity)?;
        let row = self
            .row(
                &format!("SELECT {COLUMNS} FROM messages WHERE lock_token = ?1 AND entity = ?2 AND dlq = ?3"),
                params![lock_token, entity.key(), dlq as i64],
            )?
            .ok_or(BrokerError::LockLost)?;
        if let Some(id) = id
            && id != row.seq.to_string()
            && Some(id) != row.message().message_id.as_deref()
        {
            return Err(BrokerError::LockLost);
        }
        Ok((entity, row))
    }

    /// Settles a locked message. `id` is the settle URI's middle segment (sequence number or
    /// MessageId), checked when given.
    pub fn settle(
        &mut self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        id: Option<&str>,
        settlement: Settlement,
    ) -> Result<()> {
        let (entity, row) = self.locked_row(path, dlq, lock_token, id)?;
        match settlement {
            Settlement::Complete => {
                self.db
                    .execute("DELETE FROM messages WHERE id = ?1", params![row.id])?;
            }
            Settlement::Abandon => self.release(entity, row, true)?,
            Settlement::Defer => {
                if row.dlq {
                    return Err(BrokerError::BadRequest(
                        "messages in a dead-letter queue cannot be deferred".into(),
                    ));
                }
                self.db.execute(
                    &format!("UPDATE messages SET state = {DEFERRED}, lock_token = NULL, locked_until = NULL WHERE id = ?1"),
                    params![row.id],
                )?;
            }
            Settlement::DeadLetter {
                reason,
                description,
            } => {
                if row.dlq {
                    return Err(BrokerError::BadRequest(
                        "a message cannot be dead-lettered from a dead-letter queue".into(),
                    ));
                }
                self.dead_letter(entity, row, &reason, &description)?;
            }
        }
        Ok(())
    }

    /// Renews a message lock; returns the new end of the lock.
    pub fn renew_lock(
        &mut self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        id: Option<&str>,
    ) -> Result<Millis> {
        let (entity, row) = self.locked_row(path, dlq, lock_token, id)?;
        let until = self.now + entity.settings().lock_duration.as_millis() as i64;
        self.db.execute(
            "UPDATE messages SET locked_until = ?1 WHERE id = ?2",
            params![until, row.id],
        )?;
        Ok(until)
    }

    // ----- sessions -----

    fn session_entity(&self, path: &str) -> Result<Target<'a>> {
        let entity = self.receivable(path)?;
        if !entity.settings().requires_session {
            return Err(BrokerError::NotSessionful(entity.display()));
        }
        Ok(entity)
    }

    /// Locks a session: the named one, or the one whose next message is oldest.
    pub fn accept_session(
        &mut self,
        path: &str,
        session_id: Option<&str>,
    ) -> Result<Option<SessionLock>> {
        let entity = self.session_entity(path)?;
        self.sweep(entity)?;
        let key = entity.key();
        let session_id = match session_id {
            Some(s) => s.to_string(),
            None => {
                let next: Option<String> = self
                    .db
                    .query_row(
                        &format!("SELECT m.session_id FROM messages m
                         WHERE m.entity = ?1 AND m.dlq = 0 AND m.state = {ACTIVE} AND m.lock_token IS NULL AND m.session_id IS NOT NULL
                           AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.entity = m.entity AND s.session_id = m.session_id AND s.locked_until > ?2)
                         ORDER BY m.seq LIMIT 1"),
                        params![key, self.now],
                        |r| r.get(0),
                    )
                    .optional()?;
                match next {
                    Some(s) => s,
                    None => return Ok(None),
                }
            }
        };
        let held: Option<Millis> = self
            .db
            .query_row(
                "SELECT locked_until FROM sessions WHERE entity = ?1 AND session_id = ?2",
                params![key, session_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        if held.is_some_and(|until| until > self.now) {
            return Err(BrokerError::SessionLocked(session_id));
        }
        let lock = SessionLock {
            lock_token: uuid::Uuid::new_v4().to_string(),
            locked_until: self.now + entity.settings().lock_duration.as_millis() as i64,
            session_id,
        };
        self.db.execute(
            "INSERT INTO sessions (entity, session_id, lock_token, locked_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (entity, session_id) DO UPDATE SET lock_token = excluded.lock_token, locked_until = excluded.locked_until",
            params![key, lock.session_id, lock.lock_token, lock.locked_until],
        )?;
        Ok(Some(lock))
    }

    fn check_session(
        &mut self,
        entity: Target<'a>,
        session_id: &str,
        token: &str,
    ) -> Result<SessionLock> {
        self.sweep(entity)?;
        let until: Option<Millis> = self
            .db
            .query_row(
                "SELECT locked_until FROM sessions WHERE entity = ?1 AND session_id = ?2 AND lock_token = ?3",
                params![entity.key(), session_id, token],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        match until {
            Some(until) if until > self.now => Ok(SessionLock {
                session_id: session_id.to_string(),
                lock_token: token.to_string(),
                locked_until: until,
            }),
            _ => Err(BrokerError::SessionLockLost),
        }
    }

    /// Receives the next message of a locked session.
    pub fn receive_in_session(
        &mut self,
        path: &str,
        session_id: &str,
        token: &str,
        mode: ReceiveMode,
    ) -> Result<Receipt> {
        let entity = self.session_entity(path)?;
        let lock = self.check_session(entity, session_id, token)?;
        self.receive_where(entity, false, mode, Some(&lock))
    }

    /// Renews a session lock and the locks of its messages.
    pub fn renew_session(&mut self, path: &str, session_id: &str, token: &str) -> Result<Millis> {
        let entity = self.session_entity(path)?;
        self.check_session(entity, session_id, token)?;
        let until = self.now + entity.settings().lock_duration.as_millis() as i64;
        let key = entity.key();
        self.db.execute(
            "UPDATE sessions SET locked_until = ?1 WHERE entity = ?2 AND session_id = ?3",
            params![until, key, session_id],
        )?;
        self.db.execute(
            "UPDATE messages SET locked_until = ?1 WHERE entity = ?2 AND dlq = 0 AND session_id = ?3 AND lock_token IS NOT NULL",
            params![until, key, session_id],
        )?;
        Ok(until)
    }

    /// Closes a session: its lock ends and its locked messages return without a failed delivery.
    pub fn close_session(&mut self, path: &str, session_id: &str, token: &str) -> Result<()> {
        let entity = self.session_entity(path)?;
        self.check_session(entity, session_id, token)?;
        let key = entity.key();
        let locked = self.rows(
            &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND dlq = 0 AND session_id = ?2 AND lock_token IS NOT NULL"),
            params![key, session_id],
        )?;
        for row in locked {
            self.release(entity, row, false)?;
        }
        self.db.execute(
            "UPDATE sessions SET lock_token = NULL, locked_until = NULL WHERE entity = ?1 AND session_id = ?2",
            params![key, session_id],
        )?;
        self.notify.push(key);
        Ok(())
    }

    /// Reads session state (`None` when never set or cleared).
    pub fn session_state(
        &mut self,
        path: &str,
        session_id: &str,
        token: &str,
    ) -> Result<Option<Vec<u8>>> {
        let entity = self.session_entity(path)?;
        self.check_session(entity, session_id, token)?;
        let state: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT state FROM sessions WHERE entity = ?1 AND session_id = ?2",
                params![entity.key(), session_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(state.filter(|s| !s.is_empty()))
    }

    /// Sets (or with `None` clears) session state.
    pub fn set_session_state(
        &mut self,
        path: &str,
        session_id: &str,
        token: &str,
        state: Option<Vec<u8>>,
    ) -> Result<()> {
        let entity = self.session_entity(path)?;
        self.check_session(entity, session_id, token)?;
        self.db.execute(
            "UPDATE sessions SET state = ?1 WHERE entity = ?2 AND session_id = ?3",
            params![state.filter(|s| !s.is_empty()), entity.key(), session_id],
        )?;
        Ok(())
    }

    // ----- local extras -----

    /// Browses messages in sequence order without locking them.
    pub fn browse(
        &mut self,
        path: &str,
        dlq: bool,
        from_seq: i64,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>> {
        let entity = self.receivable(path)?;
        let rows = self.rows(
            &format!("SELECT {COLUMNS} FROM messages WHERE entity = ?1 AND dlq = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4"),
            params![entity.key(), dlq as i64, from_seq, max as i64],
        )?;
        Ok(rows
            .iter()
            .map(|r| r.received(r.failed + 1, false))
            .collect())
    }

    /// Counts messages by state.
    pub fn counts(&mut self, path: &str) -> Result<Counts> {
        let entity = self.receivable(path)?;
        self.sweep(entity)?;
        let count = |sql: &str| -> Result<u64> {
            Ok(self
                .db
                .query_row(sql, params![entity.key()], |r| r.get::<_, i64>(0))?
                as u64)
        };
        Ok(Counts {
            active: count(&format!(
                "SELECT COUNT(*) FROM messages WHERE entity = ?1 AND dlq = 0 AND state = {ACTIVE}"
            ))?,
            locked: count(
                "SELECT COUNT(*) FROM messages WHERE entity = ?1 AND dlq = 0 AND lock_token IS NOT NULL",
            )?,
            scheduled: count(&format!(
                "SELECT COUNT(*) FROM messages WHERE entity = ?1 AND dlq = 0 AND state = {SCHEDULED}"
            ))?,
            deferred: count(&format!(
                "SELECT COUNT(*) FROM messages WHERE entity = ?1 AND dlq = 0 AND state = {DEFERRED}"
            ))?,
            dead_lettered: count("SELECT COUNT(*) FROM messages WHERE entity = ?1 AND dlq = 1")?,
        })
    }

    /// Deletes every message of an entity's main queue or dead-letter queue; returns how many.
    pub fn purge(&mut self, path: &str, dlq: bool) -> Result<u64> {
        let entity = self.receivable(path)?;
        let n = self.db.execute(
            "DELETE FROM messages WHERE entity = ?1 AND dlq = ?2",
            params![entity.key(), dlq as i64],
        )?;
        Ok(n as u64)
    }

    /// Cancels a scheduled message.
    pub fn cancel_scheduled(&mut self, path: &str, seq: i64) -> Result<()> {
        let entity = self.receivable(path)?;
        let n = self.db.execute(
            &format!("DELETE FROM messages WHERE entity = ?1 AND dlq = 0 AND seq = ?2 AND state = {SCHEDULED}"),
            params![entity.key(), seq],
        )?;
        if n == 0 {
            Err(BrokerError::MessageNotFound(seq))
        } else {
            Ok(())
        }
    }

    /// Cancels a scheduled message sent to a queue or topic, by the sequence number `send` gave.
    pub fn cancel_scheduled_sent(&mut self, path: &str, seq: i64) -> Result<()> {
        match self.target(path)? {
            Target::Topic(_) => Err(BrokerError::BadRequest(
                "cancel scheduled messages of a topic per subscription".into(),
            )),
            _ => self.cancel_scheduled(path, seq),
        }
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
