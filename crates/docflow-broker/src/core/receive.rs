//! Receiving and locks: peek-lock and receive-and-delete, deferred messages, settlement
//! (complete, abandon, defer, dead-letter) and lock renewal.

use super::*;

impl<'a> Core<'a> {
    /// Receives the next available message of a queue or subscription (or its DLQ).
    pub fn receive(&mut self, path: &str, dlq: bool, mode: ReceiveMode) -> Result<Receipt> {
        let entity = self.receivable(path)?;
        if entity.settings().requires_session && !dlq {
            return Err(BrokerError::SessionRequired);
        }
        self.receive_where(entity, dlq, mode, None)
    }

    pub(super) fn receive_where(
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

    pub(super) fn take(
        &mut self,
        row: Row,
        mode: ReceiveMode,
        lock_until: Option<Millis>,
    ) -> Result<ReceivedMessage> {
        let delivery_count = row.failed + 1;
        match mode {
            ReceiveMode::ReceiveAndDelete => {
                self.exec("DELETE FROM messages WHERE id = ?1", params![row.id])?;
                Ok(row.received(delivery_count, false))
            }
            ReceiveMode::PeekLock => {
                let settings = self.target(&row.entity)?.settings().clone();
                let token = uuid::Uuid::new_v4().to_string();
                let until =
                    lock_until.unwrap_or(self.now + settings.lock_duration.as_millis() as i64);
                self.exec(
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

    pub(super) fn next_check(&self, key: &str) -> Result<Option<Millis>> {
        let next: Option<Millis> = self.one(
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

    pub(super) fn locked_row(
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
                self.exec("DELETE FROM messages WHERE id = ?1", params![row.id])?;
            }
            Settlement::Abandon => self.release(entity, row, true)?,
            Settlement::Defer => {
                if row.dlq {
                    return Err(BrokerError::BadRequest(
                        "messages in a dead-letter queue cannot be deferred".into(),
                    ));
                }
                self.exec(
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

    /// Merges `properties` into a locked message's application properties, then settles it:
    /// the `properties-to-modify` of an AMQP abandon, defer or dead-letter.
    pub fn settle_modified(
        &mut self,
        path: &str,
        dlq: bool,
        lock_token: &str,
        settlement: Settlement,
        properties: std::collections::BTreeMap<String, PropertyValue>,
    ) -> Result<()> {
        if !properties.is_empty() {
            let (_, row) = self.locked_row(path, dlq, lock_token, None)?;
            let mut meta = row.message();
            meta.body = Vec::new();
            meta.properties.extend(properties);
            self.exec(
                "UPDATE messages SET meta = ?1 WHERE id = ?2",
                params![
                    serde_json::to_string(&meta).expect("message metadata serializes"),
                    row.id
                ],
            )?;
        }
        self.settle(path, dlq, lock_token, None, settlement)
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
        self.exec(
            "UPDATE messages SET locked_until = ?1 WHERE id = ?2",
            params![until, row.id],
        )?;
        Ok(until)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, empty, lock, open};
    use super::*;

    #[test]
    fn properties_to_modify_are_merged_before_the_settlement() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("m").with_property("kept", "yes")])
            .unwrap();
        let token = lock(&db, &entities, "q", T0).lock_token.unwrap();
        let properties = [("tries".to_string(), PropertyValue::Int(1))].into();
        Core::new(&db, &entities, T0 + 1)
            .settle_modified("q", false, &token, Settlement::Abandon, properties)
            .unwrap();
        let again = lock(&db, &entities, "q", T0 + 2);
        assert_eq!(
            again.message.property("tries"),
            Some(&PropertyValue::Int(1))
        );
        assert_eq!(
            again.message.property("kept"),
            Some(&PropertyValue::String("yes".into()))
        );
        assert_eq!(&again.message.body[..], b"m");
        // A lost lock changes nothing.
        let gone = Core::new(&db, &entities, T0 + 3).settle_modified(
            "q",
            false,
            &token,
            Settlement::Complete,
            [("x".to_string(), PropertyValue::Bool(true))].into(),
        );
        assert_eq!(gone, Err(BrokerError::LockLost));
    }

    #[test]
    fn settling_needs_a_live_lock() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("m")])
            .unwrap();
        let got = lock(&db, &entities, "q", T0);
        let token = got.lock_token.unwrap();
        // After the lock lapsed, completing is LockLost, as on Azure.
        assert_eq!(
            Core::new(&db, &entities, T0 + 30_000).settle(
                "q",
                false,
                &token,
                None,
                Settlement::Complete
            ),
            Err(BrokerError::LockLost)
        );
        let again = lock(&db, &entities, "q", T0 + 30_000);
        let token = again.lock_token.unwrap();
        // Renewing moves the lock's end; completing inside it removes the message.
        let until = Core::new(&db, &entities, T0 + 50_000)
            .renew_lock("q", false, &token, None)
            .unwrap();
        assert_eq!(until, T0 + 80_000);
        Core::new(&db, &entities, T0 + 70_000)
            .settle("q", false, &token, None, Settlement::Complete)
            .unwrap();
        assert_eq!(empty(&db, &entities, "q", T0 + 90_000), None);
    }

    #[test]
    fn deferred_messages_are_received_by_sequence_number_only() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("m")])
            .unwrap();
        let got = lock(&db, &entities, "q", T0);
        let token = got.lock_token.clone().unwrap();
        let mut core = Core::new(&db, &entities, T0 + 1);
        core.settle("q", false, &token, None, Settlement::Defer)
            .unwrap();
        assert_eq!(empty(&db, &entities, "q", T0 + 2), None);
        let deferred = Core::new(&db, &entities, T0 + 3)
            .receive_deferred("q", got.sequence_number)
            .unwrap();
        assert_eq!(&deferred.message.body[..], b"m");
    }
}
