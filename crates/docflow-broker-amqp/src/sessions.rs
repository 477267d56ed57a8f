//! Session receivers: a receiver link whose source carries `com.microsoft:session-filter` (a
//! session id, or null for the next available session) is answered only once the broker has
//! locked a session for it. The attach reply then names the locked session in the filter and
//! its lock's end in `com.microsoft:locked-until-utc` (.NET ticks); when no session can be
//! had, the link is refused with `com.microsoft:timeout` (none available in time) or
//! `com.microsoft:session-cannot-be-locked` (another receiver holds it).
//!
//! The connection remembers the sessions its links hold, so that `$management` session
//! operations (renew-session-lock, get/set-session-state) act with their locks; a detached
//! link, or the connection's end, releases its session at once.

use std::time::Duration;

use docflow_amqp::performative::{Attach, Detach};
use docflow_amqp::{AmqpError, Source, Value};
use docflow_broker::{BrokerError, Millis, ReceiveMode, SessionLock};

use crate::engine::{Completion, Connection};
use crate::links::LinkKind;
use crate::receive::Receiver;

/// The source filter naming the session.
pub(crate) const SESSION_FILTER: &str = "com.microsoft:session-filter";
/// The attach property carrying the session lock's end, in .NET ticks.
const LOCKED_UNTIL: &str = "com.microsoft:locked-until-utc";
/// The attach property with how long (ms) to wait for a next available session.
const TIMEOUT: &str = "com.microsoft:timeout";
/// How long a next-available receiver waits when it names no timeout (the SDKs send ~65 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// .NET ticks (100 ns since 0001-01-01) at the Unix epoch.
const TICKS_AT_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// A session receiver link waiting for its session.
pub(crate) struct SessionWanted {
    /// The broker's key of the entity.
    pub(crate) entity: String,
    pub(crate) mode: ReceiveMode,
    /// The session asked for; `None` for the next available one.
    pub(crate) session_id: Option<String>,
    pub(crate) timeout: Duration,
    /// The attach reply, sent once the session is locked.
    pub(crate) reply: Option<Box<Attach>>,
}

/// The broker's answer to a session receiver.
pub(crate) struct SessionAccepted {
    entity: String,
    channel: u16,
    handle: u32,
    link_id: u64,
    result: Result<Option<SessionLock>, BrokerError>,
}

/// The session filter of a receiver's source: `None` without one, `Some(None)` for the next
/// available session, `Some(Some(id))` for a named one.
pub(crate) fn session_filter(source: Option<&Source>) -> Option<Option<String>> {
    let (_, value) = source?
        .filter
        .iter()
        .find(|(k, _)| matches!(k, Value::Symbol(s) | Value::String(s) if s == SESSION_FILTER))?;
    let value = match value {
        Value::Described(described) => &described.value,
        other => other,
    };
    Some(match value {
        Value::String(s) | Value::Symbol(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    })
}

/// How long a next-available receiver may wait: its `com.microsoft:timeout` (ms).
pub(crate) fn wait_of(attach: &Attach) -> Duration {
    attach
        .properties
        .iter()
        .find(|(k, _)| matches!(k, Value::Symbol(s) | Value::String(s) if s == TIMEOUT))
        .and_then(|(_, v)| match v {
            Value::Uint(ms) => Some(u64::from(*ms)),
            Value::Int(ms) => u64::try_from(*ms).ok(),
            Value::Long(ms) => u64::try_from(*ms).ok(),
            Value::Ulong(ms) => Some(*ms),
            _ => None,
        })
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// Unix milliseconds as .NET ticks.
pub(crate) fn ticks(ms: Millis) -> i64 {
    ms.saturating_mul(10_000)
        .saturating_add(TICKS_AT_UNIX_EPOCH)
}

impl Connection {
    /// Parks a session receiver link (its attach reply held back) and asks the broker for
    /// its session.
    pub(crate) fn accept_session_for(
        &mut self,
        channel: u16,
        handle: u32,
        link_id: u64,
        wanted: &SessionWanted,
    ) {
        let broker = self.broker.clone();
        let done = self.done_tx.clone();
        let (entity, session_id, timeout) = (
            wanted.entity.clone(),
            wanted.session_id.clone(),
            wanted.timeout,
        );
        tokio::spawn(async move {
            let result = broker
                .accept_session(&entity, session_id.as_deref(), timeout)
                .await;
            let accepted = SessionAccepted {
                entity: entity.clone(),
                channel,
                handle,
                link_id,
                result,
            };
            if let Err(unsent) = done
                .send(Completion::SessionAccepted(Box::new(accepted)))
                .await
            {
                // The connection is gone: let the session go at once.
                if let Completion::SessionAccepted(accepted) = unsent.0
                    && let Ok(Some(lock)) = accepted.result
                {
                    let _ = broker.close_session(&entity, &lock).await;
                }
            }
        });
    }

    /// The broker locked a session (or could not): answer the parked attach.
    pub(crate) fn on_session_accepted(&mut self, accepted: SessionAccepted) {
        let SessionAccepted {
            entity,
            channel,
            handle,
            link_id,
            result,
        } = accepted;
        let parked = self
            .sessions
            .get_mut(&channel)
            .and_then(|s| s.links.get_mut(&handle))
            .filter(|l| l.id == link_id)
            .and_then(|l| match &mut l.kind {
                LinkKind::SessionPending(wanted) => Some((wanted.mode, wanted.reply.take())),
                _ => None,
            });
        let Some((mode, Some(mut reply))) = parked else {
            // The link went away meanwhile: release what was locked for it.
            if let Ok(Some(lock)) = result {
                self.release_session(&entity, lock);
            }
            return;
        };
        let lock = match result {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                let error = AmqpError::new(
                    "com.microsoft:timeout",
                    "no session became available within the receiver's timeout",
                );
                return self.refuse_parked(channel, handle, *reply, error);
            }
            Err(e) => {
                let condition = match e {
                    BrokerError::SessionLocked(_) => "com.microsoft:session-cannot-be-locked",
                    BrokerError::EntityNotFound(_) => "amqp:not-found",
                    _ => "amqp:internal-error",
                };
                let error = AmqpError::new(condition, e.to_string());
                return self.refuse_parked(channel, handle, *reply, error);
            }
        };
        if let Some(source) = reply.source.as_mut() {
            source.filter.retain(
                |(k, _)| !matches!(k, Value::Symbol(s) | Value::String(s) if s == SESSION_FILTER),
            );
            source.filter.push((
                Value::Symbol(SESSION_FILTER.into()),
                Value::String(lock.session_id.clone()),
            ));
        }
        reply.properties.push((
            Value::Symbol(LOCKED_UNTIL.into()),
            Value::Long(ticks(lock.locked_until)),
        ));
        self.push(channel, &(*reply).into(), &[]);
        self.held_sessions
            .insert((entity.clone(), lock.session_id.clone()), lock.clone());
        let receiver = Receiver::start(
            self.broker.clone(),
            (entity, false, mode),
            Some(lock),
            self.done_tx.clone(),
            (channel, handle, link_id),
        );
        if let Some(link) = self
            .sessions
            .get_mut(&channel)
            .and_then(|s| s.links.get_mut(&handle))
        {
            link.kind = LinkKind::Receive(receiver);
        }
        self.pump(channel, handle, false);
    }

    /// Answers a parked attach with a null source and detaches it with `error`.
    fn refuse_parked(&mut self, channel: u16, handle: u32, mut reply: Attach, error: AmqpError) {
        if let Some(session) = self.sessions.get_mut(&channel) {
            session.links.remove(&handle);
        }
        reply.source = None;
        self.push(channel, &reply.into(), &[]);
        let detach = Detach {
            handle,
            closed: true,
            error: Some(error),
        };
        self.push(channel, &detach.into(), &[]);
    }

    /// The lock this connection holds on `session_id` of `entity`, for management requests.
    pub(crate) fn held_session(&self, entity: &str, session_id: &str) -> Option<SessionLock> {
        self.held_sessions
            .get(&(entity.to_string(), session_id.to_string()))
            .cloned()
    }

    /// Forgets a session this connection held and releases it in the broker.
    pub(crate) fn release_session(&mut self, entity: &str, lock: SessionLock) {
        self.held_sessions
            .remove(&(entity.to_string(), lock.session_id.clone()));
        let broker = self.broker.clone();
        let entity = entity.to_string();
        tokio::spawn(async move {
            let _ = broker.close_session(&entity, &lock).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_count_from_year_one() {
        assert_eq!(ticks(0), TICKS_AT_UNIX_EPOCH);
        // 2025-01-01T00:00:00Z
        assert_eq!(ticks(1_735_689_600_000), 638_712_864_000_000_000);
    }

    #[test]
    fn the_session_filter_names_a_session_or_the_next_available() {
        let mut source = Source::default();
        assert_eq!(session_filter(Some(&source)), None);
        source
            .filter
            .push((Value::Symbol(SESSION_FILTER.into()), Value::Null));
        assert_eq!(session_filter(Some(&source)), Some(None));
        source.filter[0].1 = Value::String("s-1".into());
        assert_eq!(session_filter(Some(&source)), Some(Some("s-1".into())));
    }
}
