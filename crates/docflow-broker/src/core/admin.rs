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

    /// Cancels a scheduled message.
    pub fn cancel_scheduled(&mut self, path: &str, seq: i64) -> Result<()> {
        let entity = self.receivable(path)?;
        let n = self.exec(
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
}
