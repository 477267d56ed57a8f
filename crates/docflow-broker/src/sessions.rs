//! The [`Broker`]'s session operations: accepting a session (named or the next available),
//! receiving within it, renewing and closing its lock, and its state.

use std::time::Duration;

use super::*;

impl Broker {
    /// Accepts a session (the named one, or the next available within `timeout`).
    pub async fn accept_session(
        &self,
        path: &str,
        session_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<SessionLock>, BrokerError> {
        let key = self.receivable_key(path, false)?;
        let notify = self.notifiers.get(&key);
        let deadline = tokio::time::Instant::now() + timeout.min(self.options.max_receive_timeout);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (p, s) = (path.to_string(), session_id.map(str::to_owned));
            if let Some(lock) = self
                .call(move |core| core.accept_session(&p, s.as_deref()))
                .await?
            {
                return Ok(Some(lock));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => {}
                // Session locks lapse on their own; look again now and then.
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Receives the next message of a locked session.
    pub async fn receive_in_session(
        &self,
        path: &str,
        lock: &SessionLock,
        mode: ReceiveMode,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, BrokerError> {
        self.receive_in_session_unless_stopped(path, lock, mode, timeout, None)
            .await
    }

    /// [`Broker::receive_in_session`] that stops waiting once `stop` is notified, as
    /// [`Broker::receive_unless_stopped`] does.
    pub async fn receive_in_session_unless_stopped(
        &self,
        path: &str,
        lock: &SessionLock,
        mode: ReceiveMode,
        timeout: Duration,
        stop: Option<&Notify>,
    ) -> Result<Option<ReceivedMessage>, BrokerError> {
        let key = self.receivable_key(path, false)?;
        let (owned, session, token) = (
            path.to_string(),
            lock.session_id.clone(),
            lock.lock_token.clone(),
        );
        self.wait_for(&key, timeout, stop, move || {
            let (path, session, token) = (owned.clone(), session.clone(), token.clone());
            move |core: &mut Core<'_>| core.receive_in_session(&path, &session, &token, mode)
        })
        .await
    }

    /// Renews a session lock.
    pub async fn renew_session_lock(
        &self,
        path: &str,
        lock: &SessionLock,
    ) -> Result<Millis, BrokerError> {
        let (p, s, t) = (
            path.to_string(),
            lock.session_id.clone(),
            lock.lock_token.clone(),
        );
        self.call(move |core| core.renew_session(&p, &s, &t)).await
    }

    /// Closes a session.
    pub async fn close_session(&self, path: &str, lock: &SessionLock) -> Result<(), BrokerError> {
        let (p, s, t) = (
            path.to_string(),
            lock.session_id.clone(),
            lock.lock_token.clone(),
        );
        self.call(move |core| core.close_session(&p, &s, &t)).await
    }

    /// Reads session state.
    pub async fn session_state(
        &self,
        path: &str,
        lock: &SessionLock,
    ) -> Result<Option<Vec<u8>>, BrokerError> {
        let (p, s, t) = (
            path.to_string(),
            lock.session_id.clone(),
            lock.lock_token.clone(),
        );
        self.call(move |core| core.session_state(&p, &s, &t)).await
    }

    /// Sets session state (`None` clears it).
    pub async fn set_session_state(
        &self,
        path: &str,
        lock: &SessionLock,
        state: Option<Vec<u8>>,
    ) -> Result<(), BrokerError> {
        let (p, s, t) = (
            path.to_string(),
            lock.session_id.clone(),
            lock.lock_token.clone(),
        );
        self.call(move |core| core.set_session_state(&p, &s, &t, state))
            .await
    }

    /// The sessions of an entity that hold messages or state (`com.microsoft:get-message-sessions`).
    pub async fn message_sessions(
        &self,
        path: &str,
        skip: u32,
        top: u32,
    ) -> Result<Vec<String>, BrokerError> {
        let path = path.to_string();
        self.call(move |core| core.message_sessions(&path, skip, top))
            .await
    }
}
