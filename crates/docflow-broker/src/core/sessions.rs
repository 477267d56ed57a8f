//! Sessions: accepting the next free session, receiving within it, session locks and state.

use super::*;

impl<'a> Core<'a> {
    pub(super) fn session_entity(&self, path: &str) -> Result<Target<'a>> {
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
                let next: Option<String> = self.one(
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
            .one(
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
        self.exec(
            "INSERT INTO sessions (entity, session_id, lock_token, locked_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (entity, session_id) DO UPDATE SET lock_token = excluded.lock_token, locked_until = excluded.locked_until",
            params![key, lock.session_id, lock.lock_token, lock.locked_until],
        )?;
        Ok(Some(lock))
    }

    pub(super) fn check_session(
        &mut self,
        entity: Target<'a>,
        session_id: &str,
        token: &str,
    ) -> Result<SessionLock> {
        self.sweep(entity)?;
        let until: Option<Millis> = self.one(
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

    /// The sessions of an entity that hold messages or state, by id, `top` of them after
    /// the first `skip`.
    pub fn message_sessions(&mut self, path: &str, skip: u32, top: u32) -> Result<Vec<String>> {
        let entity = self.session_entity(path)?;
        let mut statement = self.db.prepare_cached(
            "SELECT session_id FROM messages WHERE entity = ?1 AND dlq = 0 AND session_id IS NOT NULL
             UNION SELECT session_id FROM sessions WHERE entity = ?1 AND state IS NOT NULL AND length(state) > 0
             ORDER BY session_id LIMIT ?2 OFFSET ?3",
        )?;
        let ids = statement
            .query_map(params![entity.key(), top, skip], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
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
        self.exec(
            "UPDATE sessions SET locked_until = ?1 WHERE entity = ?2 AND session_id = ?3",
            params![until, key, session_id],
        )?;
        self.exec(
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
        self.exec(
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
            .one(
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
        self.exec(
            "UPDATE sessions SET state = ?1 WHERE entity = ?2 AND session_id = ?3",
            params![state.filter(|s| !s.is_empty()), entity.key(), session_id],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, open};
    use super::*;

    fn in_session(id: &str) -> Message {
        let mut m = Message::new(id.as_bytes().to_vec());
        m.session_id = Some(id.into());
        m
    }

    #[test]
    fn a_session_is_locked_to_one_receiver_until_its_lock_lapses() {
        let (db, entities) = open();
        Core::new(&db, &entities, T0)
            .send("s", vec![in_session("a")])
            .unwrap();
        let first = Core::new(&db, &entities, T0)
            .accept_session("s", None)
            .unwrap()
            .expect("session a");
        assert_eq!(first.session_id, "a");
        assert!(matches!(
            Core::new(&db, &entities, T0 + 1).accept_session("s", Some("a")),
            Err(BrokerError::SessionLocked(_))
        ));
        // Past its lock, another receiver may take it; the first one's token is dead.
        let second = Core::new(&db, &entities, T0 + 30_000)
            .accept_session("s", Some("a"))
            .unwrap()
            .expect("session a again");
        assert_ne!(second.lock_token, first.lock_token);
        assert!(
            Core::new(&db, &entities, T0 + 30_001)
                .receive_in_session("s", "a", &first.lock_token, ReceiveMode::PeekLock)
                .is_err()
        );
        let receipt = Core::new(&db, &entities, T0 + 30_001)
            .receive_in_session("s", "a", &second.lock_token, ReceiveMode::ReceiveAndDelete)
            .unwrap();
        assert!(matches!(receipt, Receipt::Message(m) if &m.message.body[..] == b"a"));
    }

    #[test]
    fn plain_receives_on_session_queues_are_refused() {
        let (db, entities) = open();
        assert!(matches!(
            Core::new(&db, &entities, T0).receive("s", false, ReceiveMode::PeekLock),
            Err(BrokerError::SessionRequired)
        ));
    }
}
