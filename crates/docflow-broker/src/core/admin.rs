//! Browse and admin (the local extras): peek, counts, purge, cancelling scheduled messages.

use super::*;

impl<'a> Core<'a> {
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
            Ok(self.one(sql, params![entity.key()], |r| r.get::<_, i64>(0))? as u64)
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
        let n = self.exec(
            "DELETE FROM messages WHERE entity = ?1 AND dlq = ?2",
            params![entity.key(), dlq as i64],
        )?;
        Ok(n as u64)
    }

    /// Cancels a scheduled message of a queue or subscription.
    pub fn cancel_scheduled(&mut self, path: &str, seq: i64) -> Result<()> {
        let entity = self.receivable(path)?;
        match self.delete_scheduled(&entity.key(), seq)? {
            0 => Err(BrokerError::MessageNotFound(seq)),
            _ => Ok(()),
        }
    }

    /// Cancels a scheduled message sent to a queue or topic, by the sequence number `send` gave:
    /// through a topic, in every subscription that holds it (they share the topic's numbers).
    pub fn cancel_scheduled_sent(&mut self, path: &str, seq: i64) -> Result<()> {
        let Target::Topic(topic) = self.target(path)? else {
            return self.cancel_scheduled(path, seq);
        };
        let mut cancelled = 0;
        for sub in &topic.subscriptions {
            cancelled += self.delete_scheduled(&Target::Subscription(topic, sub).key(), seq)?;
        }
        match cancelled {
            0 => Err(BrokerError::MessageNotFound(seq)),
            _ => Ok(()),
        }
    }

    fn delete_scheduled(&self, key: &str, seq: i64) -> Result<usize> {
        Ok(self.exec(
            &format!("DELETE FROM messages WHERE entity = ?1 AND dlq = 0 AND seq = ?2 AND state = {SCHEDULED}"),
            params![key, seq],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, open};
    use super::*;

    #[test]
    fn counts_browse_purge_and_cancel_see_time_as_the_clock_says() {
        let (db, entities) = open();
        let mut later = Message::new("later");
        later.scheduled_enqueue_time = Some(to_datetime(T0 + 5_000));
        let seqs = Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("now"), later])
            .unwrap();
        let counts = Core::new(&db, &entities, T0).counts("q").unwrap();
        assert_eq!((counts.active, counts.scheduled), (1, 1));
        let browsed = Core::new(&db, &entities, T0)
            .browse("q", false, 0, 10)
            .unwrap();
        assert_eq!(browsed.len(), 2, "browse shows scheduled messages too");
        Core::new(&db, &entities, T0 + 1)
            .cancel_scheduled("q", seqs[1].unwrap())
            .unwrap();
        assert_eq!(
            Core::new(&db, &entities, T0 + 2).cancel_scheduled("q", seqs[1].unwrap()),
            Err(BrokerError::MessageNotFound(seqs[1].unwrap()))
        );
        assert_eq!(
            Core::new(&db, &entities, T0 + 6_000)
                .purge("q", false)
                .unwrap(),
            1
        );
        let counts = Core::new(&db, &entities, T0 + 6_000).counts("q").unwrap();
        assert_eq!((counts.active, counts.scheduled), (0, 0));
    }

    #[test]
    fn a_message_scheduled_on_a_topic_is_cancelled_in_every_subscription_by_its_number() {
        let (db, entities) = open();
        let scheduled = |body: &str| {
            let mut m = Message::new(body.to_string());
            m.scheduled_enqueue_time = Some(to_datetime(T0 + 5_000));
            m
        };
        let sent = Core::new(&db, &entities, T0)
            .send(
                "u",
                vec![scheduled("one"), scheduled("two"), Message::new("now")],
            )
            .unwrap();
        assert_eq!(sent, [Some(1), Some(2), Some(3)]);
        let scheduled_in = |sub: &str| -> Vec<i64> {
            Core::new(&db, &entities, T0)
                .browse(&format!("u/subscriptions/{sub}"), false, 0, 10)
                .unwrap()
                .iter()
                .filter(|m| m.state == MessageState::Scheduled)
                .map(|m| m.sequence_number)
                .collect()
        };
        assert_eq!(
            (scheduled_in("a"), scheduled_in("b")),
            (vec![1, 2], vec![1, 2])
        );
        Core::new(&db, &entities, T0 + 1)
            .cancel_scheduled_sent("u", 1)
            .unwrap();
        assert_eq!((scheduled_in("a"), scheduled_in("b")), (vec![2], vec![2]));
        // Cancelled already, active rather than scheduled, never sent.
        for seq in [1, 3, 99] {
            assert_eq!(
                Core::new(&db, &entities, T0 + 2).cancel_scheduled_sent("u", seq),
                Err(BrokerError::MessageNotFound(seq))
            );
        }
        // A subscription's own cancel takes the same number, there only.
        Core::new(&db, &entities, T0 + 3)
            .cancel_scheduled("u/subscriptions/a", 2)
            .unwrap();
        assert_eq!((scheduled_in("a"), scheduled_in("b")), (vec![], vec![2]));
        Core::new(&db, &entities, T0 + 4)
            .cancel_scheduled_sent("u", 2)
            .unwrap();
        assert_eq!(scheduled_in("b"), Vec::<i64>::new());
        let counts = Core::new(&db, &entities, T0 + 6_000)
            .counts("u/subscriptions/b")
            .unwrap();
        assert_eq!(
            (counts.active, counts.scheduled),
            (1, 0),
            "only `now` is left"
        );
    }
}
