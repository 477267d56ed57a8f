//! Lazy maintenance, run when an entity is touched: due scheduled messages become active,
//! expired locks release their messages, expired messages leave (or are dead-lettered), and
//! messages past `MaxDeliveryCount` are dead-lettered.

use super::*;

impl<'a> Core<'a> {
    /// Applies what time has done to an entity: lock expiry, scheduled activation.
    pub(super) fn sweep(&mut self, entity: Target<'a>) -> Result<()> {
        let key = entity.key();
        let settings = entity.settings();
        // Session locks that lapsed: their messages' locks lapse with them (same deadline).
        self.exec(
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
            let seq = self.next_seq(entity)?;
            let expires_at = self.expiry(settings, &row.message(), self.now);
            self.exec(
                "UPDATE messages SET state = ?1, seq = ?2, enqueued_at = ?3, expires_at = ?4, scheduled_at = NULL WHERE id = ?5",
                params![ACTIVE, seq, self.now, expires_at, row.id],
            )?;
            self.notify.push(key.clone());
        }
        Ok(())
    }

    /// Ends a delivery without settlement: counts the failure (unless `counted` is false) and
    /// dead-letters or expires the message as the rules say.
    pub(super) fn release(&mut self, entity: Target<'a>, row: Row, counted: bool) -> Result<()> {
        let failed = row.failed + i64::from(counted);
        self.exec(
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

    pub(super) fn expire(&mut self, entity: Target<'a>, row: Row) -> Result<()> {
        if entity.settings().dead_letter_on_expiration {
            self.dead_letter(
                entity,
                row,
                "TTLExpiredException",
                "The message expired and was dead lettered.",
            )
        } else {
            self.exec("DELETE FROM messages WHERE id = ?1", params![row.id])?;
            Ok(())
        }
    }

    /// Moves a main-queue message to the dead-letter queue, or on to `ForwardDeadLetteredMessagesTo`.
    pub(super) fn dead_letter(
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
            self.exec("DELETE FROM messages WHERE id = ?1", params![row.id])?;
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
        self.exec(
            "UPDATE messages SET dlq = 1, state = ?1, lock_token = NULL, locked_until = NULL, expires_at = NULL, meta = ?2 WHERE id = ?3",
            params![ACTIVE, serde_json::to_string(&meta).expect("message metadata serializes"), row.id],
        )?;
        self.notify.push(dlq_key(&row.entity));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, empty, lock, open};
    use super::*;

    #[test]
    fn scheduled_messages_appear_when_due() {
        let (db, entities) = open();
        let mut m = Message::new("later");
        m.scheduled_enqueue_time = Some(to_datetime(T0 + 10_000));
        Core::new(&db, &entities, T0).send("q", vec![m]).unwrap();
        assert_eq!(empty(&db, &entities, "q", T0 + 9_999), Some(T0 + 10_000));
        assert_eq!(
            &lock(&db, &entities, "q", T0 + 10_000).message.body[..],
            b"later"
        );
    }

    #[test]
    fn expired_messages_are_dead_lettered_when_the_entity_says_so() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("old")])
            .unwrap();
        empty(&db, &entities, "q", T0 + 60_001);
        let counts = Core::new(&db, &entities, T0 + 60_001).counts("q").unwrap();
        assert_eq!((counts.active, counts.dead_lettered), (0, 1));
    }

    #[test]
    fn a_lapsed_lock_releases_the_message_and_max_delivery_count_dead_letters_it() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("q", vec![Message::new("m")])
            .unwrap();
        assert_eq!(lock(&db, &entities, "q", T0).delivery_count, 1);
        // Locked for 30 s: invisible, and the receiver is told when to look again.
        assert_eq!(empty(&db, &entities, "q", T0 + 29_999), Some(T0 + 30_000));
        assert_eq!(lock(&db, &entities, "q", T0 + 30_000).delivery_count, 2);
        // The second lapse exceeds MaxDeliveryCount = 2.
        empty(&db, &entities, "q", T0 + 60_000);
        let counts = Core::new(&db, &entities, T0 + 60_000).counts("q").unwrap();
        assert_eq!(counts.dead_lettered, 1);
    }
}
