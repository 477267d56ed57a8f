//! Sending and routing: duplicate detection, topic fan-out through subscription filters and
//! actions, auto-forwarding, sequence numbers, scheduling and expiry times of new messages.

use super::*;
use crate::entities::SubscriptionDef;

impl<'a> Core<'a> {
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

    pub(super) fn is_duplicate(
        &mut self,
        key: &str,
        id: &str,
        settings: &EntitySettings,
    ) -> Result<bool> {
        let window_start = self.now - settings.duplicate_window.as_millis() as i64;
        let seen: Option<Millis> = self
            .one(
                "SELECT accepted_at FROM dedup WHERE entity = ?1 AND message_id = ?2",
                params![key, id],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some_and(|at| at > window_start) {
            return Ok(true);
        }
        self.exec(
            "INSERT INTO dedup (entity, message_id, accepted_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (entity, message_id) DO UPDATE SET accepted_at = excluded.accepted_at",
            params![key, id, self.now],
        )?;
        if rand_u8() == 0 {
            self.exec(
                "DELETE FROM dedup WHERE entity = ?1 AND accepted_at <= ?2",
                params![key, window_start],
            )?;
        }
        Ok(false)
    }

    /// Delivers a message into a queue or topic (fan-out), following auto-forwarding.
    /// Returns its sequence number: the queue's, or for a topic the topic's, which every
    /// subscription's copy carries (`None` when no subscription took the message).
    pub(super) fn route(
        &mut self,
        target: Target<'a>,
        message: Message,
        hops: i64,
        enqueued_seq: i64,
        dl_source: Option<String>,
    ) -> Result<Option<i64>> {
        let seq = self.next_seq(target)?;
        let Target::Topic(topic) = target else {
            self.enqueue(target, seq, message, hops, enqueued_seq, dl_source)?;
            return Ok(Some(seq));
        };
        let mut stored = false;
        for sub in &topic.subscriptions {
            for (n, copy) in copies(sub, &message).into_iter().enumerate() {
                // A second copy in one subscription needs a number of its own: the topic's next.
                let seq = if n == 0 { seq } else { self.next_seq(target)? };
                let entity = Target::Subscription(topic, sub);
                self.enqueue(entity, seq, copy, hops, enqueued_seq, dl_source.clone())?;
                stored = true;
            }
        }
        Ok(stored.then_some(seq))
    }

    /// Takes the next sequence number from `entity`'s counter (a subscription's is its topic's).
    pub(super) fn next_seq(&mut self, entity: Target<'a>) -> Result<i64> {
        let seq: i64 = self.one(
            "INSERT INTO counters (entity, next_seq) VALUES (?1, 2)
             ON CONFLICT (entity) DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq - 1",
            params![entity.counter_key()],
            |r| r.get(0),
        )?;
        Ok(seq)
    }

    /// Stores a message in a queue or subscription as number `seq` (or forwards it on).
    pub(super) fn enqueue(
        &mut self,
        entity: Target<'a>,
        seq: i64,
        message: Message,
        hops: i64,
        enqueued_seq: i64,
        dl_source: Option<String>,
    ) -> Result<()> {
        let key = entity.key();
        let settings = entity.settings();
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
                return Ok(());
            }
            if destination.settings().requires_session && message.session_id.is_none() {
                self.insert_dead_letter(&key, seq, &message, hops, enqueued_seq, dl_source, "SessionIdIsNull",
                    "The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.")?;
                return Ok(());
            }
            let origin = if enqueued_seq == 0 { seq } else { enqueued_seq };
            self.route(destination, message, hops + 1, origin, dl_source)?;
            return Ok(());
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
            return Ok(());
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
        Ok(())
    }

    pub(super) fn expiry(
        &self,
        settings: &EntitySettings,
        message: &Message,
        from: Millis,
    ) -> Option<Millis> {
        let ttl = match (message.time_to_live, settings.default_ttl) {
            (Some(m), Some(d)) => Some(m.min(d)),
            (m, d) => m.or(d),
        };
        ttl.map(|t| from.saturating_add(t.as_millis().min(i64::MAX as u128) as i64))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert(
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
        self.exec(
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
    pub(super) fn insert_dead_letter(
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
}

/// The copies of a message a subscription keeps: one for each matching rule with an action
/// (the action applied, `RuleName` set), then the message itself if a rule without one matched.
fn copies(sub: &SubscriptionDef, message: &Message) -> Vec<Message> {
    let mut copies = Vec::new();
    let mut plain_match = false;
    for rule in sub.rules.iter().filter(|r| r.filter.matches(message)) {
        match &rule.action {
            None => plain_match = true,
            Some(action) => {
                let mut copy = message.clone();
                action.apply(&mut copy);
                copy.properties
                    .insert("RuleName".into(), PropertyValue::String(rule.name.clone()));
                copies.push(copy);
            }
        }
    }
    if plain_match {
        copies.push(message.clone());
    }
    copies
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, lock, open};
    use super::*;

    fn with_id(id: &str) -> Message {
        let mut m = Message::new(b"x".to_vec());
        m.message_id = Some(id.into());
        m
    }

    #[test]
    fn duplicates_are_dropped_inside_the_window_only() {
        let (db, entities) = open();
        let send = |now, id: &str| {
            Core::new(&db, &entities, now)
                .send("q", vec![with_id(id)])
                .unwrap()[0]
        };
        assert!(send(T0, "a").is_some());
        assert_eq!(send(T0 + 59_000, "a"), None, "inside the 60 s window");
        assert!(send(T0 + 61_000, "a").is_some(), "the window has passed");
    }

    #[test]
    fn topics_route_through_filters_and_actions() {
        let (db, entities) = open();
        let mut core = Core::new(&db, &entities, T0);
        core.send("t", vec![Message::new("r").with_property("color", "red")])
            .unwrap();
        core.send("t", vec![Message::new("b").with_property("color", "blue")])
            .unwrap();
        let got = lock(&db, &entities, "t/subscriptions/red", T0);
        assert_eq!(&got.message.body[..], b"r");
        assert_eq!(
            got.message.properties.get("seen"),
            Some(&PropertyValue::Int(1))
        );
        super::super::fixture::empty(&db, &entities, "t/subscriptions/red", T0);
    }

    /// Sequence numbers and bodies of what `path` holds, in order.
    fn numbered(db: &Connection, entities: &Entities, path: &str) -> Vec<(i64, String)> {
        let messages = Core::new(db, entities, T0).browse(path, false, 0, 100);
        let body = |m: &ReceivedMessage| String::from_utf8_lossy(&m.message.body).into_owned();
        messages
            .unwrap()
            .iter()
            .map(|m| (m.sequence_number, body(m)))
            .collect()
    }

    #[test]
    fn a_topic_numbers_each_message_once_and_every_subscription_keeps_that_number() {
        let (db, entities) = open();
        let mut core = Core::new(&db, &entities, T0);
        let sent = core
            .send(
                "u",
                vec![
                    Message::new("m1"),
                    Message::new("m2").with_property("twice", 1),
                    Message::new("m3").with_property("onward", 1),
                ],
            )
            .unwrap();
        // m2's second copy in `twice` took the topic's next number, 3.
        assert_eq!(sent, [Some(1), Some(2), Some(4)]);
        let all = [(1, "m1".into()), (2, "m2".into()), (4, "m3".into())];
        assert_eq!(numbered(&db, &entities, "u/subscriptions/a"), all);
        assert_eq!(numbered(&db, &entities, "u/subscriptions/b"), all);
        let copies = Core::new(&db, &entities, T0)
            .browse("u/subscriptions/twice", false, 0, 10)
            .unwrap();
        let copies: Vec<_> = copies
            .iter()
            .map(|m| (m.sequence_number, m.message.properties["copy"].clone()))
            .collect();
        assert_eq!(
            copies,
            [(2, PropertyValue::Int(1)), (3, PropertyValue::Int(2))]
        );
        // `onward` forwarded m3 under the topic's number; the queue numbers it by its own.
        let forwarded = lock(&db, &entities, "q", T0);
        assert_eq!(&forwarded.message.body[..], b"m3");
        assert_eq!(
            (
                forwarded.sequence_number,
                forwarded.enqueued_sequence_number
            ),
            (1, 4)
        );
        let sent = Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("q2")])
            .unwrap();
        assert_eq!(sent, [Some(2)]);
        // Another topic has its own counter; a message no subscription takes has no number.
        let mut core = Core::new(&db, &entities, T0);
        let sent = core
            .send(
                "t",
                vec![
                    Message::new("r").with_property("color", "red"),
                    Message::new("b").with_property("color", "blue"),
                ],
            )
            .unwrap();
        assert_eq!(sent, [Some(1), None]);
    }

    #[test]
    fn due_scheduled_copies_are_numbered_from_the_topic_counter() {
        let (db, entities) = open();
        let mut later = Message::new("later");
        later.scheduled_enqueue_time = Some(to_datetime(T0 + 1_000));
        let sent = Core::new(&db, &entities, T0)
            .send("u", vec![later, Message::new("now")])
            .unwrap();
        assert_eq!(sent, [Some(1), Some(2)]);
        // Each subscription activates its copy when touched, with the topic's next number.
        assert_eq!(
            lock(&db, &entities, "u/subscriptions/a", T0 + 1_000).sequence_number,
            2
        );
        assert_eq!(
            lock(&db, &entities, "u/subscriptions/a", T0 + 1_000).sequence_number,
            3
        );
        assert_eq!(
            lock(&db, &entities, "u/subscriptions/b", T0 + 1_000).sequence_number,
            2
        );
        assert_eq!(
            lock(&db, &entities, "u/subscriptions/b", T0 + 1_000).sequence_number,
            4
        );
    }

    #[test]
    fn upgrade_raises_each_topic_counter_to_its_subscriptions_highest_and_never_lowers_it() {
        let (db, entities) = open();
        // An older version numbered subscriptions by their own counters (no topic counter);
        // `u`'s counter may also be ahead already, and must never go back.
        let old = [
            ("u/subscriptions/a", 7),
            ("u/subscriptions/b", 3),
            ("t/subscriptions/red", 5),
            ("t", 9),
        ];
        for (key, next) in old {
            db.execute(
                "INSERT INTO counters (entity, next_seq) VALUES (?1, ?2)",
                params![key, next],
            )
            .unwrap();
        }
        super::super::upgrade(&db, &entities).unwrap();
        super::super::upgrade(&db, &entities).unwrap();
        let next = |key: &str| -> i64 {
            db.query_row(
                "SELECT next_seq FROM counters WHERE entity = ?1",
                [key],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!((next("u"), next("t")), (7, 9));
        let sent = Core::new(&db, &entities, T0)
            .send("u", vec![Message::new("new")])
            .unwrap();
        assert_eq!(sent, [Some(7)]);
    }

    #[test]
    fn sends_to_subscriptions_and_sessionless_sends_to_session_queues_are_refused() {
        let (db, entities) = open();
        let mut core = Core::new(&db, &entities, T0);
        assert!(matches!(
            core.send("t/subscriptions/red", vec![Message::new("x")]),
            Err(BrokerError::BadRequest(_))
        ));
        assert_eq!(
            core.send("s", vec![Message::new("x")]),
            Err(BrokerError::SessionIdMissing)
        );
    }
}
