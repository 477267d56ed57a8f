//! Receiver links: credit turned into fetches from the broker (one at a time per link, so no
//! message is ever taken without credit for it). Peek-lock links carry 16-byte lock tokens as
//! delivery tags and echo settlements as the SDKs require; receive-and-delete links (the peer
//! attached with `snd-settle-mode=settled`) take each message out of the entity and send it
//! pre-settled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docflow_amqp::delivery_state::Rejected;
use docflow_amqp::performative::{Disposition, Flow, Transfer};
use docflow_amqp::{AmqpError, DeliveryState, Role, Value};
use docflow_broker::{Broker, BrokerError, ReceiveMode, SessionLock, Settlement};
use docflow_servicebus::message::{PropertyValue, ReceivedMessage};
use tokio::sync::{Notify, mpsc};

use crate::convert::{property_value, to_amqp_message};
use crate::engine::{Completion, Connection};
use crate::links::LinkKind;

/// How long one fetch waits in the broker before looking at its stop flag.
const POLL: Duration = Duration::from_secs(1);
/// The most credit a receiver link may hold.
const MAX_CREDIT: u32 = 1000;
/// Unsettled deliveries one session may hold before fetching pauses.
const MAX_UNSETTLED: usize = 5000;

/// A receiver link's state.
pub(crate) struct Receiver {
    worker: mpsc::Sender<()>,
    /// Tells the worker to stop waiting (drain, detach) and fetch without waiting.
    stop: Arc<Stop>,
    pub(crate) entity: String,
    dlq: bool,
    /// Peek-lock, or receive-and-delete (deliveries sent pre-settled).
    mode: ReceiveMode,
    /// The session a session receiver holds.
    pub(crate) session: Option<SessionLock>,
    outstanding: bool,
    draining: bool,
}

/// Tells a receiver link's worker to fetch without waiting: a flag read before each fetch,
/// and a notification that cuts short a fetch already waiting (a drain is answered at once,
/// as the SDKs expect: the JavaScript SDK closes a link whose drain takes over 200 ms).
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    wake: Notify,
}

impl Stop {
    /// Sets the flag; when set, wakes a waiting fetch.
    fn set(&self, stop: bool) {
        self.flag.store(stop, Ordering::Relaxed);
        if stop {
            self.wake.notify_one();
        }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// A delivery waiting for the peer's settlement.
pub(crate) struct Unsettled {
    handle: u32,
    entity: String,
    dlq: bool,
    lock_token: String,
}

/// A fetch's result.
pub(crate) struct Fetched {
    channel: u16,
    entity: (String, bool),
    handle: u32,
    link_id: u64,
    result: Result<Option<ReceivedMessage>, BrokerError>,
}

/// A settlement's result.
pub(crate) struct Settled {
    channel: u16,
    delivery_id: u32,
    /// The state to echo when the broker settled it.
    echo: Option<DeliveryState>,
    result: Result<(), BrokerError>,
}

impl Receiver {
    /// Starts the link's worker.
    pub(crate) fn start(
        broker: Broker,
        (entity, dlq, mode): (String, bool, ReceiveMode),
        session: Option<SessionLock>,
        done: mpsc::Sender<Completion>,
        ids: (u16, u32, u64),
    ) -> Self {
        let (worker, fetches) = mpsc::channel(1);
        let stop = Arc::new(Stop::default());
        tokio::spawn(receive_worker(
            broker,
            (entity.clone(), dlq, mode),
            session.clone(),
            fetches,
            stop.clone(),
            done,
            ids,
        ));
        Self {
            worker,
            stop,
            entity,
            dlq,
            mode,
            session,
            outstanding: false,
            draining: false,
        }
    }

    /// Stops the worker's current fetch (the link is going away).
    pub(crate) fn stop(&self) {
        self.stop.set(true);
    }
}

/// The lock token in .NET `Guid.ToByteArray()` order, as the SDKs read delivery tags.
pub(crate) fn lock_token_tag(token: &str) -> Vec<u8> {
    match uuid::Uuid::parse_str(token) {
        Ok(uuid) => uuid.to_bytes_le().to_vec(),
        Err(_) => token.as_bytes().to_vec(),
    }
}

async fn receive_worker(
    broker: Broker,
    (entity, dlq, mode): (String, bool, ReceiveMode),
    session: Option<SessionLock>,
    mut fetches: mpsc::Receiver<()>,
    stop: Arc<Stop>,
    done: mpsc::Sender<Completion>,
    (channel, handle, link_id): (u16, u32, u64),
) {
    while fetches.recv().await.is_some() {
        let result = loop {
            let stopping = stop.is_set();
            let wait = if stopping { Duration::ZERO } else { POLL };
            let wake = Some(&stop.wake);
            let received = match &session {
                Some(lock) => {
                    broker
                        .receive_in_session_unless_stopped(&entity, lock, mode, wait, wake)
                        .await
                }
                None => {
                    broker
                        .receive_unless_stopped(&entity, dlq, mode, wait, wake)
                        .await
                }
            };
            match received {
                Ok(None) if !stopping && !done.is_closed() => continue,
                other => break other,
            }
        };
        let fetched = Fetched {
            channel,
            entity: (entity.clone(), dlq),
            handle,
            link_id,
            result,
        };
        if let Err(unsent) = done.send(Completion::Fetched(Box::new(fetched))).await {
            // The connection is gone: release the lock at once rather than at its expiry.
            if let Completion::Fetched(fetched) = unsent.0
                && let Ok(Some(m)) = fetched.result
                && let Some(token) = m.lock_token.as_deref()
            {
                let _ = broker
                    .settle(&entity, dlq, token, None, Settlement::Abandon)
                    .await;
            }
            break;
        }
    }
}

impl Connection {
    /// The peer's flow on a receiver link: take its credit, honour drain, fetch.
    pub(crate) fn on_receiver_flow(&mut self, channel: u16, handle: u32, flow: &Flow) {
        let Some(link) = self.session(channel).links.get_mut(&handle) else {
            return;
        };
        let credit = flow
            .delivery_count
            .unwrap_or(0)
            .wrapping_add(flow.link_credit.unwrap_or(0))
            .wrapping_sub(link.delivery_count);
        link.credit = credit.min(MAX_CREDIT);
        if let LinkKind::Receive(rx) = &mut link.kind {
            rx.draining = flow.drain;
        }
        self.pump(channel, handle, false);
    }

    /// Asks the worker for the next message if credit allows; finishes a drain once a fetch
    /// came back `empty`.
    pub(crate) fn pump(&mut self, channel: u16, handle: u32, empty: bool) {
        let session = self.session(channel);
        let room = session.unsettled.len() < MAX_UNSETTLED;
        let mut flow = session.flow();
        let Some(link) = session.links.get_mut(&handle) else {
            return;
        };
        let LinkKind::Receive(rx) = &mut link.kind else {
            return;
        };
        if rx.outstanding {
            if rx.draining {
                rx.stop.set(true);
            }
            return;
        }
        if link.credit > 0 && room && !(rx.draining && empty) {
            rx.stop.set(rx.draining);
            if rx.worker.try_send(()).is_ok() {
                rx.outstanding = true;
            }
            return;
        }
        if rx.draining {
            rx.draining = false;
            link.delivery_count = link.delivery_count.wrapping_add(link.credit);
            link.credit = 0;
            flow.handle = Some(handle);
            flow.delivery_count = Some(link.delivery_count);
            flow.link_credit = Some(0);
            flow.drain = true;
            self.push(channel, &flow.into(), &[]);
        }
    }

    pub(crate) fn on_fetched(&mut self, fetched: Fetched) {
        let Fetched {
            channel,
            entity: source,
            handle,
            link_id,
            result,
        } = fetched;
        // Not `self.session`: a fetch ending after its session did must not bring it back.
        let Some(session) = self.sessions.get_mut(&channel) else {
            if let Ok(Some(m)) = result {
                self.abandon_later(source, m);
            }
            return;
        };
        let delivery_id = session.next_delivery_id;
        let link = session.links.get_mut(&handle).filter(|l| l.id == link_id);
        let Some(link) = link else {
            if let Ok(Some(m)) = result {
                self.abandon_later(source, m);
            }
            return;
        };
        let LinkKind::Receive(rx) = &mut link.kind else {
            return;
        };
        rx.outstanding = false;
        let (entity, dlq, mode) = (rx.entity.clone(), rx.dlq, rx.mode);
        let message = match result {
            Ok(Some(m)) if link.credit > 0 => m,
            // The peer took its credit back meanwhile.
            Ok(Some(m)) => return self.abandon_later(source, m),
            Ok(None) => return self.pump(channel, handle, true),
            Err(e) => {
                let condition = match e {
                    BrokerError::SessionLockLost => "com.microsoft:session-lock-lost",
                    _ => "amqp:internal-error",
                };
                self.detach_with(channel, handle, AmqpError::new(condition, e.to_string()));
                return;
            }
        };
        link.credit -= 1;
        link.delivery_count = link.delivery_count.wrapping_add(1);
        session.next_delivery_id = delivery_id.wrapping_add(1);
        let settled = mode == ReceiveMode::ReceiveAndDelete;
        let tag = if settled {
            // No lock: a fresh 16-byte tag, unique on the link, that no settlement refers to.
            uuid::Uuid::new_v4().as_bytes().to_vec()
        } else {
            let token = message.lock_token.clone().unwrap_or_default();
            let tag = lock_token_tag(&token);
            let unsettled = Unsettled {
                handle,
                entity,
                dlq,
                lock_token: token,
            };
            session.unsettled.insert(delivery_id, unsettled);
            tag
        };
        let transfer = Transfer {
            handle,
            delivery_id: Some(delivery_id),
            delivery_tag: Some(tag),
            message_format: Some(0),
            settled: Some(settled),
            ..Transfer::default()
        };
        let payload = to_amqp_message(&message).encode();
        self.push_transfer(channel, transfer, &payload);
        self.pump(channel, handle, false);
    }

    /// Releases a message fetched for a link that can no longer take it.
    fn abandon_later(&self, (entity, dlq): (String, bool), message: ReceivedMessage) {
        if message.lock_token.is_none() {
            // Receive-and-delete: the broker removed it when the worker took it, and the link
            // went away (or took its credit back) meanwhile. Service Bus gives such messages
            // at-most-once delivery too; say so rather than lose it silently.
            tracing::warn!(
                entity = %entity,
                sequence_number = message.sequence_number,
                "a receive-and-delete message was taken for a link that could no longer take it"
            );
            return;
        }
        let broker = self.broker.clone();
        tokio::spawn(async move {
            if let Some(token) = message.lock_token.as_deref() {
                let _ = broker
                    .settle(&entity, dlq, token, None, Settlement::Abandon)
                    .await;
            }
        });
    }

    /// Forgets a detached receiver link's unsettled deliveries (their locks lapse; the SDKs
    /// settle them through management instead).
    pub(crate) fn forget_unsettled(&mut self, channel: u16, handle: u32) {
        self.session(channel)
            .unsettled
            .retain(|_, u| u.handle != handle);
    }

    /// The peer settled deliveries of receiver links.
    pub(crate) fn on_receiver_disposition(&mut self, channel: u16, d: &Disposition) {
        if d.role != Role::Receiver {
            return;
        }
        let last = d.last.unwrap_or(d.first);
        let Some(session) = self.sessions.get_mut(&channel) else {
            return;
        };
        let ids: Vec<u32> = session
            .unsettled
            .keys()
            .copied()
            .filter(|id| (d.first..=last).contains(id))
            .collect();
        // A state the broker cannot act on (none, `received`) leaves the deliveries locked.
        let Some((settlement, properties, echo)) = d.state.as_ref().and_then(settlement_of) else {
            return;
        };
        let echo = (!d.settled).then_some(echo);
        for id in ids {
            let Some(unsettled) = session.unsettled.remove(&id) else {
                continue;
            };
            let (settlement, properties, echo) =
                (settlement.clone(), properties.clone(), echo.clone());
            let broker = self.broker.clone();
            let done = self.done_tx.clone();
            tokio::spawn(async move {
                let result = broker
                    .settle_modified(
                        &unsettled.entity,
                        unsettled.dlq,
                        &unsettled.lock_token,
                        settlement,
                        properties,
                    )
                    .await;
                let settled = Settled {
                    channel,
                    delivery_id: id,
                    echo,
                    result,
                };
                let _ = done.send(Completion::Settled(settled)).await;
            });
        }
    }

    /// The broker settled a delivery: echo the outcome, or report the lost lock.
    pub(crate) fn on_settled(&mut self, settled: Settled) {
        let Some(echo) = settled.echo else {
            return;
        };
        let state = match settled.result {
            Ok(()) => echo,
            Err(e) => {
                let condition = match e {
                    BrokerError::LockLost => "com.microsoft:message-lock-lost",
                    _ => "amqp:internal-error",
                };
                DeliveryState::Rejected(Rejected {
                    error: Some(AmqpError::new(condition, e.to_string())),
                })
            }
        };
        if !self.sessions.contains_key(&settled.channel) {
            return;
        }
        let disposition = Disposition {
            role: Role::Sender,
            first: settled.delivery_id,
            last: None,
            settled: true,
            state: Some(state),
            batchable: false,
        };
        self.push(settled.channel, &disposition.into(), &[]);
    }
}

/// What the broker does for a peer's outcome: the settlement, the properties to merge into
/// the message's application properties first (a `modified` outcome's message annotations;
/// a `rejected` outcome's `error.info` other than the reason and description), and the state
/// to echo (same type, no error).
fn settlement_of(state: &DeliveryState) -> Option<(Settlement, Properties, DeliveryState)> {
    Some(match state {
        DeliveryState::Accepted(a) => (
            Settlement::Complete,
            Properties::new(),
            DeliveryState::Accepted(*a),
        ),
        DeliveryState::Modified(m) => {
            let settlement = if m.undeliverable_here == Some(true) {
                Settlement::Defer
            } else {
                Settlement::Abandon
            };
            let properties = properties_of(&m.message_annotations, &[]);
            (settlement, properties, DeliveryState::Modified(m.clone()))
        }
        DeliveryState::Released(r) => (
            Settlement::Abandon,
            Properties::new(),
            DeliveryState::Released(*r),
        ),
        DeliveryState::Rejected(r) => {
            let info = r
                .error
                .as_ref()
                .map(|e| e.info.as_slice())
                .unwrap_or_default();
            let text = |name: &str| {
                info.iter()
                    .find(|(k, _)| key_of(k) == Some(name))
                    .and_then(|(_, v)| match v {
                        Value::String(s) | Value::Symbol(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default()
            };
            let settlement = Settlement::DeadLetter {
                reason: text(DEAD_LETTER_REASON),
                description: text(DEAD_LETTER_DESCRIPTION),
            };
            let properties = properties_of(info, &[DEAD_LETTER_REASON, DEAD_LETTER_DESCRIPTION]);
            (
                settlement,
                properties,
                DeliveryState::Rejected(Rejected { error: None }),
            )
        }
        _ => return None,
    })
}

/// Application properties to merge into a settled message.
type Properties = BTreeMap<String, PropertyValue>;

/// The `info` key of a dead-letter outcome's reason.
const DEAD_LETTER_REASON: &str = "DeadLetterReason";
/// The `info` key of a dead-letter outcome's description.
const DEAD_LETTER_DESCRIPTION: &str = "DeadLetterErrorDescription";

/// A fields key as text (the SDKs send symbols; a string is taken too).
fn key_of(key: &Value) -> Option<&str> {
    match key {
        Value::Symbol(s) | Value::String(s) => Some(s),
        _ => None,
    }
}

/// The properties to modify carried in `fields`, except the keys in `skip`. A null value (the
/// JavaScript SDK's `undefined`) or one that is no simple value is left out: Service Bus keeps
/// only simple types in application properties.
fn properties_of(fields: &[(Value, Value)], skip: &[&str]) -> Properties {
    fields
        .iter()
        .filter_map(|(k, v)| {
            let key = key_of(k)?;
            if skip.contains(&key) {
                return None;
            }
            Some((key.to_string(), property_value(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modified_outcome_carries_its_annotations_as_properties_to_modify() {
        let modified = |undeliverable_here| {
            DeliveryState::Modified(docflow_amqp::delivery_state::Modified {
                delivery_failed: Some(true),
                undeliverable_here: Some(undeliverable_here),
                message_annotations: vec![
                    (Value::Symbol("added".into()), Value::String("x".into())),
                    (Value::Symbol("count".into()), Value::Uint(3)),
                    (Value::Symbol("gone".into()), Value::Null),
                ],
            })
        };
        let want: Properties = [
            ("added".to_string(), PropertyValue::String("x".into())),
            ("count".to_string(), PropertyValue::Int(3)),
        ]
        .into();
        let (settlement, properties, echo) = settlement_of(&modified(false)).unwrap();
        assert!(matches!(settlement, Settlement::Abandon));
        assert_eq!(properties, want);
        assert_eq!(echo, modified(false));
        let (settlement, properties, _) = settlement_of(&modified(true)).unwrap();
        assert!(matches!(settlement, Settlement::Defer));
        assert_eq!(properties, want);
    }

    #[test]
    fn a_rejected_outcome_carries_its_other_info_as_properties_to_modify() {
        let mut error = AmqpError::new("com.microsoft:dead-letter", "");
        error.info = vec![
            (Value::Symbol("extra".into()), Value::String("e".into())),
            (Value::Symbol("n".into()), Value::Int(-2)),
            (
                Value::Symbol(DEAD_LETTER_REASON.into()),
                Value::String("why".into()),
            ),
            (
                Value::Symbol(DEAD_LETTER_DESCRIPTION.into()),
                Value::String("what".into()),
            ),
        ];
        let rejected = DeliveryState::Rejected(Rejected { error: Some(error) });
        let (settlement, properties, echo) = settlement_of(&rejected).unwrap();
        let Settlement::DeadLetter {
            reason,
            description,
        } = settlement
        else {
            panic!("a dead-letter settlement");
        };
        assert_eq!((reason.as_str(), description.as_str()), ("why", "what"));
        let want: Properties = [
            ("extra".to_string(), PropertyValue::String("e".into())),
            ("n".to_string(), PropertyValue::Int(-2)),
        ]
        .into();
        assert_eq!(properties, want);
        assert_eq!(echo, DeliveryState::Rejected(Rejected { error: None }));
    }

    #[test]
    fn lock_tokens_are_tagged_in_dotnet_guid_byte_order() {
        let tag = lock_token_tag("00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(
            tag,
            [
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
    }
}
