//! Dead-letter repair and queue ages (local extras): a dead-lettered message put back in the
//! queue or subscription it was dead-lettered from, or removed, by its sequence number; the
//! enqueue time of an entity's oldest active message and its last sequence number.
//!
//! Service Bus can only send to a queue or a topic, so re-sending a subscription's dead letter
//! reaches every subscription of its topic again; putting it back in place reaches only the
//! subscription it came from, in one transaction (nothing duplicated, nothing lost).

use super::*;

impl<'a> Core<'a> {
    /// Puts dead-lettered message `seq` of a queue or subscription back in its main queue as
    /// `message` (the caller's copy: its own MessageId, properties and body), active now under
    /// a new sequence number, with its delivery count reset and its lock, if any, released.
    pub fn restore_dead_lettered(&mut self, path: &str, seq: i64, message: Message) -> Result<()> {
        let entity = self.receivable(path)?;
        let id: Option<i64> = self
            .one(
                "SELECT id FROM messages WHERE entity = ?1 AND dlq = 1 AND seq = ?2",
                params![entity.key(), seq],
                |r| r.get(0),
            )
            .optional()?;
        let id = id.ok_or(BrokerError::MessageNotFound(seq))?;
        // A new message in the entity: a new number, from the entity's counter (a
        // subscription's is its topic's), as a send would give it.
        let seq = self.next_seq(entity)?;
        let expires_at = self.expiry(entity.settings(), &message, self.now);
        let mut meta = message.clone();
        meta.body = Vec::new();
        meta.scheduled_enqueue_time = None;
        self.exec(
            &format!(
                "UPDATE messages SET dlq = 0, seq = ?8, state = {ACTIVE}, session_id = ?1, message_id = ?2,
                 enqueued_at = ?3, expires_at = ?4, scheduled_at = NULL, failed = 0, lock_token = NULL,
                 locked_until = NULL, body = ?5, meta = ?6 WHERE id = ?7"
            ),
            params![
                message.session_id,
                message.message_id.clone().unwrap_or_default(),
                self.now,
                expires_at,
                message.body,
                serde_json::to_string(&meta).expect("message metadata serializes"),
                id,
                seq
            ],
        )?;
        self.notify.push(entity.key());
        Ok(())
    }

    /// Removes dead-lettered message `seq` of a queue or subscription (locked or not).
    pub fn remove_dead_lettered(&mut self, path: &str, seq: i64) -> Result<()> {
        let entity = self.receivable(path)?;
        match self.exec(
            "DELETE FROM messages WHERE entity = ?1 AND dlq = 1 AND seq = ?2",
            params![entity.key(), seq],
        )? {
            0 => Err(BrokerError::MessageNotFound(seq)),
            _ => Ok(()),
        }
    }

    /// What the dashboard samples to show an entity's age and rates: the oldest active
    /// message's enqueue time and the entity's last sequence number.
    pub fn activity(&mut self, path: &str) -> Result<Activity> {
        let entity = self.receivable(path)?;
        let oldest_active = self.one(
            &format!(
                "SELECT MIN(enqueued_at) FROM messages WHERE entity = ?1 AND dlq = 0 AND state = {ACTIVE}"
            ),
            params![entity.key()],
            |r| r.get(0),
        )?;
        // A subscription's messages are numbered by its topic.
        let counter = entity.counter_key();
        let next: Option<i64> = self
            .one(
                "SELECT next_seq FROM counters WHERE entity = ?1",
                params![counter],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Activity {
            oldest_active,
            last_sequence_number: next.map_or(0, |n| n - 1),
        })
    }
}

/// An entity's activity, as [`Core::activity`] samples it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// When its oldest active message (locked ones included) was enqueued.
    pub oldest_active: Option<Millis>,
    /// The last sequence number given (for a subscription, by its topic): its growth between
    /// two samples is the messages sent in between.
    pub last_sequence_number: i64,
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, lock, open};
    use super::*;

    fn dead_letter(db: &Connection, entities: &Entities, path: &str, at: Millis) -> i64 {
        let got = lock(db, entities, path, at);
        Core::new(db, entities, at)
            .settle(
                path,
                false,
                got.lock_token.as_deref().unwrap(),
                None,
                Settlement::DeadLetter {
                    reason: "R".into(),
                    description: "d".into(),
                },
            )
            .unwrap();
        got.sequence_number
    }

    #[test]
    fn a_restored_dead_letter_is_active_again_in_its_own_subscription_only() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("u", vec![Message::new("x")])
            .unwrap();
        let seq = dead_letter(&db, &entities, "u/subscriptions/a", T0 + 1);
        let mut copy = Message::new("x");
        copy.message_id = Some("copy".into());
        Core::new(&db, &entities, T0 + 2)
            .restore_dead_lettered("u/subscriptions/a", seq, copy)
            .unwrap();
        let counts = |sub: &str| {
            let c = Core::new(&db, &entities, T0 + 3)
                .counts(&format!("u/subscriptions/{sub}"))
                .unwrap();
            (c.active, c.dead_lettered)
        };
        assert_eq!(counts("a"), (1, 0));
        assert_eq!(
            counts("b"),
            (1, 0),
            "b's own copy, untouched, and no second one"
        );
        let again = lock(&db, &entities, "u/subscriptions/a", T0 + 4);
        assert_eq!(again.message.message_id.as_deref(), Some("copy"));
        assert!(again.sequence_number > seq, "a new number");
        assert_eq!(again.delivery_count, 1);
        assert_eq!(
            Core::new(&db, &entities, T0 + 5).restore_dead_lettered(
                "u/subscriptions/a",
                seq,
                Message::new("y")
            ),
            Err(BrokerError::MessageNotFound(seq))
        );
    }

    #[test]
    fn a_removed_dead_letter_is_gone_and_the_oldest_active_message_is_known() {
        let (db, entities) = open();
        let activity = |at: Millis| Core::new(&db, &entities, at).activity("q").unwrap();
        assert_eq!(
            activity(T0),
            Activity {
                oldest_active: None,
                last_sequence_number: 0
            }
        );
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("one")])
            .unwrap();
        Core::new(&db, &entities, T0 + 10)
            .send("q", vec![Message::new("two")])
            .unwrap();
        assert_eq!(
            activity(T0 + 20),
            Activity {
                oldest_active: Some(T0),
                last_sequence_number: 2
            }
        );
        let seq = dead_letter(&db, &entities, "q", T0 + 30);
        assert_eq!(activity(T0 + 40).oldest_active, Some(T0 + 10));
        Core::new(&db, &entities, T0 + 50)
            .remove_dead_lettered("q", seq)
            .unwrap();
        assert_eq!(
            Core::new(&db, &entities, T0 + 60)
                .counts("q")
                .unwrap()
                .dead_lettered,
            0
        );
        assert_eq!(
            Core::new(&db, &entities, T0 + 70).remove_dead_lettered("q", seq),
            Err(BrokerError::MessageNotFound(seq))
        );
    }
}
