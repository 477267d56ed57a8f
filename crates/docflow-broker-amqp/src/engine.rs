//! One connection's state machine: `open`, sessions, links, flow and `close`. All state lives
//! in one task; handlers are synchronous and only queue frames, which the loop writes after
//! each event, so no lock is ever held across an await.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use docflow_amqp::frame::{self, FrameType, HEARTBEAT, MIN_MAX_FRAME_SIZE};
use docflow_amqp::performative::{self, Begin, Close, End, Flow, Open};
use docflow_amqp::{AmqpError, Composite, Performative, Value, codec};
use docflow_broker::{Broker, SessionLock};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};
use tokio_util::sync::CancellationToken;

use crate::cbs::Authorizations;
use crate::deliveries::SendDone;
use crate::handshake::handshake;
use crate::io::{OwnedFrame, Reader, Writer};
use crate::links::Link;
use crate::receive::{Fetched, Settled, Unsettled};
use crate::{AmqpOptions, ConnectionError};

/// The session window the broker advertises (transfers), refreshed at half.
pub(crate) const WINDOW: u32 = 2048;
/// Completions from send workers waiting for the connection task.
const DONE_QUEUE: usize = 256;

/// What the connection's worker tasks report back.
pub(crate) enum Completion {
    /// The broker answered a send.
    Sent(SendDone),
    /// A receiver link's worker fetched (or gave up fetching) a message.
    Fetched(Box<Fetched>),
    /// The broker answered a settlement.
    Settled(Settled),
    /// A management request link's worker answered a request.
    Managed(Box<crate::management::Reply>),
    /// The broker locked a session for a session receiver (or could not).
    SessionAccepted(Box<crate::sessions::SessionAccepted>),
}

/// One session, keyed by the peer's channel (the broker answers on the same number).
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) next_outgoing_id: u32,
    pub(crate) next_incoming_id: u32,
    pub(crate) incoming_since_flow: u32,
    pub(crate) next_delivery_id: u32,
    /// Links by the peer's handle (the broker uses the same handle).
    pub(crate) links: HashMap<u32, Link>,
    /// Peek-locked deliveries the peer has not settled, by delivery id.
    pub(crate) unsettled: HashMap<u32, Unsettled>,
}

impl Session {
    /// A session-level flow carrying the windows, for a link (`handle`) or the session.
    pub(crate) fn flow(&self) -> Flow {
        Flow {
            next_incoming_id: Some(self.next_incoming_id),
            incoming_window: WINDOW,
            next_outgoing_id: self.next_outgoing_id,
            outgoing_window: WINDOW,
            ..Flow::default()
        }
    }
}

/// A connection after `open`.
pub(crate) struct Connection {
    pub(crate) broker: Broker,
    pub(crate) options: AmqpOptions,
    reader: Reader,
    writer: Writer,
    /// Frames queued by the handlers, written after each event.
    out: Vec<u8>,
    /// The largest frame the peer accepts.
    pub(crate) peer_max_frame: u32,
    pub(crate) sessions: HashMap<u16, Session>,
    /// Channels whose session the broker ended with an error, until the peer's `end` comes:
    /// frames still arriving on them are dropped, and that `end` is not answered again.
    ending: HashSet<u16>,
    pub(crate) auth: Authorizations,
    pub(crate) done_tx: mpsc::Sender<Completion>,
    done_rx: mpsc::Receiver<Completion>,
    heartbeat: Option<Interval>,
    last_read: Instant,
    pub(crate) next_link_id: u64,
    /// Cancelled when the broker shuts down.
    stop: CancellationToken,
    /// Sessions this connection's receivers hold, by entity key and session id.
    pub(crate) held_sessions: HashMap<(String, String), SessionLock>,
}

impl Drop for Connection {
    /// The connection is gone: the sessions its receivers held are released at once, as
    /// Service Bus does, rather than when their locks lapse.
    fn drop(&mut self) {
        if self.held_sessions.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let broker = self.broker.clone();
        let held = std::mem::take(&mut self.held_sessions);
        runtime.spawn(async move {
            for ((entity, _), lock) in held {
                let _ = broker.close_session(&entity, &lock).await;
            }
        });
    }
}

enum Event {
    Frame(OwnedFrame),
    Eof,
    Done(Completion),
    Heartbeat,
    Idle,
    Shutdown,
}

/// What a handler decided about the connection.
pub(crate) enum Next {
    Continue,
    /// Close the connection, with this error if any.
    Close(Option<AmqpError>),
}

/// Runs a connection from its first byte to its end, or until `stop` (then closed with
/// `amqp:connection:forced`).
pub(crate) async fn run(
    broker: Broker,
    stream: TcpStream,
    options: AmqpOptions,
    stop: CancellationToken,
) -> Result<(), ConnectionError> {
    let mut connection = tokio::select! {
        opened = opened(broker, stream, options, stop.clone()) => opened?,
        () = stop.cancelled() => return Ok(()),
    };
    connection.flush().await?;
    connection.serve().await
}

/// Turns a connection away with `amqp:resource-limit-exceeded` once it has opened (so the
/// SDK reports the reason), or as soon as the handshake fails or times out.
pub(crate) async fn refuse(
    broker: Broker,
    stream: TcpStream,
    options: AmqpOptions,
    reason: &str,
) -> Result<(), ConnectionError> {
    let mut connection = opened(broker, stream, options, CancellationToken::new()).await?;
    let error = AmqpError::new("amqp:resource-limit-exceeded", reason);
    connection.close(Some(error)).await;
    Ok(())
}

/// The handshake and `open`, answered (queued, not yet written).
async fn opened(
    broker: Broker,
    stream: TcpStream,
    options: AmqpOptions,
    stop: CancellationToken,
) -> Result<Connection, ConnectionError> {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut reader = Reader::new(read);
    let mut writer = Writer::new(write);
    let open = tokio::time::timeout(options.handshake_timeout, async {
        handshake(&mut reader, &mut writer).await?;
        let frame = reader.next_frame(MIN_MAX_FRAME_SIZE).await?;
        match decode(&frame) {
            Ok(Some(Performative::Open(open))) => Ok(open),
            _ => Err(ConnectionError::Protocol("expected open".into())),
        }
    })
    .await
    .map_err(|_| ConnectionError::Timeout("handshake"))??;
    let (done_tx, done_rx) = mpsc::channel(DONE_QUEUE);
    let mut connection = Connection {
        broker,
        options,
        reader,
        writer,
        out: Vec::new(),
        peer_max_frame: open.max_frame_size.max(MIN_MAX_FRAME_SIZE),
        sessions: HashMap::new(),
        ending: HashSet::new(),
        auth: Authorizations::default(),
        done_tx,
        done_rx,
        heartbeat: None,
        last_read: Instant::now(),
        next_link_id: 0,
        stop,
        held_sessions: HashMap::new(),
    };
    connection.on_open(&open);
    Ok(connection)
}

fn decode(frame: &OwnedFrame) -> Result<Option<Performative>, AmqpError> {
    if frame.frame_type != FrameType::Amqp {
        return Err(AmqpError::new(
            "amqp:connection:framing-error",
            "a SASL frame after the AMQP header",
        ));
    }
    performative::decode_frame_body(&frame.body)
        .map(|p| p.map(|(p, _)| p))
        .map_err(|e| AmqpError::new("amqp:decode-error", e.to_string()))
}

/// A performative with every field present, trailing nulls included: Python's `_pyamqp`
/// indexes the fields of `open` (and others) by position and fails on the compact form the
/// spec allows (part 1, section 1.4), so the broker never trims.
fn full_value(p: &Performative) -> Value {
    fn full<C: Composite>(c: &C) -> Value {
        Value::described(C::DESCRIPTOR.code, Value::List(c.fields()))
    }
    match p {
        Performative::Open(p) => full(p),
        Performative::Begin(p) => full(p),
        Performative::Attach(p) => full(p),
        Performative::Flow(p) => full(p),
        Performative::Transfer(p) => full(p),
        Performative::Disposition(p) => full(p),
        Performative::Detach(p) => full(p),
        Performative::End(p) => full(p),
        Performative::Close(p) => full(p),
    }
}

async fn tick(heartbeat: &mut Option<Interval>) {
    match heartbeat {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Connection {
    fn on_open(&mut self, open: &Open) {
        if let Some(ms) = open.idle_time_out.filter(|ms| *ms > 0) {
            let period = Duration::from_millis(u64::from(ms / 2).max(1));
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            self.heartbeat = Some(interval);
        }
        let idle = u32::try_from(self.options.idle_timeout.as_millis()).unwrap_or(u32::MAX);
        let channel_max =
            u16::try_from(self.options.max_sessions.saturating_sub(1)).unwrap_or(u16::MAX);
        let reply = Open {
            container_id: self.options.container_id.clone(),
            max_frame_size: self.options.max_frame_size.max(MIN_MAX_FRAME_SIZE),
            channel_max,
            idle_time_out: Some(idle),
            offered_capabilities: vec!["ANONYMOUS-RELAY".into()],
            ..Open::default()
        };
        self.push(0, &reply.into(), &[]);
    }

    /// Queues one frame.
    pub(crate) fn push(&mut self, channel: u16, performative: &Performative, payload: &[u8]) {
        let value = full_value(performative);
        let written = frame::encode_frame_with(FrameType::Amqp, channel, &mut self.out, |out| {
            codec::encode(&value, out);
            out.extend_from_slice(payload);
        });
        // Only bodies over 4 GiB fail to encode; the broker never builds one.
        if let Err(e) = written {
            tracing::warn!(error = %e, "an outgoing frame could not be encoded");
        }
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.writer.write(&out).await?;
            self.out = out;
            self.out.clear();
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        loop {
            match self
                .reader
                .take_frame(self.options.max_frame_size.max(MIN_MAX_FRAME_SIZE))
            {
                Ok(Some(frame)) => return Ok(Event::Frame(frame)),
                Ok(None) => {}
                Err(e) => {
                    let error = AmqpError::new("amqp:connection:framing-error", e.to_string());
                    self.close(Some(error)).await;
                    return Err(ConnectionError::Protocol(e.to_string()));
                }
            }
            let idle_deadline = self.last_read + self.options.idle_timeout;
            tokio::select! {
                filled = self.reader.fill() => {
                    if !filled? {
                        return Ok(Event::Eof);
                    }
                    self.last_read = Instant::now();
                }
                Some(done) = self.done_rx.recv() => return Ok(Event::Done(done)),
                () = tick(&mut self.heartbeat) => return Ok(Event::Heartbeat),
                () = tokio::time::sleep_until(idle_deadline) => return Ok(Event::Idle),
                () = self.stop.cancelled() => return Ok(Event::Shutdown),
            }
        }
    }

    async fn serve(&mut self) -> Result<(), ConnectionError> {
        loop {
            let next = match self.next_event().await? {
                Event::Frame(frame) => match decode(&frame) {
                    Ok(None) => Next::Continue,
                    Ok(Some(p)) => self.on_performative(frame.channel, p, &frame.body),
                    Err(error) => Next::Close(Some(error)),
                },
                Event::Done(Completion::Sent(done)) => {
                    self.on_send_done(done);
                    Next::Continue
                }
                Event::Done(Completion::Fetched(fetched)) => {
                    self.on_fetched(*fetched);
                    Next::Continue
                }
                Event::Done(Completion::Settled(settled)) => {
                    self.on_settled(settled);
                    Next::Continue
                }
                Event::Done(Completion::SessionAccepted(accepted)) => {
                    self.on_session_accepted(*accepted);
                    Next::Continue
                }
                Event::Done(Completion::Managed(reply)) => {
                    self.on_managed(*reply);
                    Next::Continue
                }
                Event::Heartbeat => {
                    self.out.extend_from_slice(&HEARTBEAT);
                    Next::Continue
                }
                Event::Eof => {
                    return Err(ConnectionError::Protocol(
                        "the peer closed the socket without close".into(),
                    ));
                }
                Event::Idle => {
                    let error = AmqpError::new("amqp:resource-limit-exceeded", "idle timeout");
                    self.close(Some(error)).await;
                    return Err(ConnectionError::Timeout("idle"));
                }
                Event::Shutdown => {
                    let error =
                        AmqpError::new("amqp:connection:forced", "the broker is shutting down");
                    self.close(Some(error)).await;
                    return Ok(());
                }
            };
            self.flush().await?;
            if let Next::Close(error) = next {
                let description = error
                    .as_ref()
                    .map(|e| format!("{}: {:?}", e.condition, e.description));
                self.close(error).await;
                return match description {
                    None => Ok(()),
                    Some(d) => Err(ConnectionError::Protocol(d)),
                };
            }
        }
    }

    /// Sends `close` (with `error`) and shuts the socket down.
    async fn close(&mut self, error: Option<AmqpError>) {
        self.push(0, &Close { error }.into(), &[]);
        let _ = self.flush().await;
        self.writer.shutdown().await;
    }

    fn on_performative(&mut self, channel: u16, p: Performative, body: &[u8]) -> Next {
        match p {
            Performative::Open(_) => Next::Close(Some(AmqpError::new(
                "amqp:illegal-state",
                "open was already received",
            ))),
            Performative::Close(_) => Next::Close(None),
            Performative::Begin(begin) => self.on_begin(channel, &begin),
            Performative::End(_) => {
                if self.ending.remove(&channel) {
                    // The peer answers the broker's own end.
                    return Next::Continue;
                }
                self.drop_session(channel);
                self.push(channel, &End::default().into(), &[]);
                Next::Continue
            }
            // Frames the peer sent before it saw the broker's end.
            _ if self.ending.contains(&channel) => Next::Continue,
            p => {
                if !self.sessions.contains_key(&channel) {
                    return Next::Close(Some(AmqpError::new(
                        "amqp:connection:framing-error",
                        format!("{} on channel {channel}, which has no session", p.name()),
                    )));
                }
                self.on_link_performative(channel, p, body)
            }
        }
    }

    /// Ends a session with a session error (part 2, section 2.7.7): its links go, the broker
    /// sends `end` with `error` and waits for the peer's; the connection goes on.
    pub(crate) fn end_session(&mut self, channel: u16, error: AmqpError) -> Next {
        self.drop_session(channel);
        self.ending.insert(channel);
        self.push(channel, &End { error: Some(error) }.into(), &[]);
        Next::Continue
    }

    /// Forgets a session, stopping its links' workers first.
    fn drop_session(&mut self, channel: u16) {
        let handles: Vec<u32> = match self.sessions.get(&channel) {
            Some(session) => session.links.keys().copied().collect(),
            None => return,
        };
        for handle in handles {
            self.remove_link(channel, handle);
        }
        self.sessions.remove(&channel);
    }

    fn on_begin(&mut self, channel: u16, begin: &Begin) -> Next {
        let busy = self.sessions.contains_key(&channel) || self.ending.contains(&channel);
        if begin.remote_channel.is_some() || busy {
            return Next::Close(Some(AmqpError::new(
                "amqp:illegal-state",
                format!("unexpected begin on channel {channel}"),
            )));
        }
        // Channels run from 0 to the channel-max announced in open (max_sessions - 1).
        let sessions = self.sessions.len() + self.ending.len();
        if sessions >= self.options.max_sessions
            || usize::from(channel) >= self.options.max_sessions
        {
            return Next::Close(Some(AmqpError::new(
                "amqp:resource-limit-exceeded",
                "too many sessions on one connection",
            )));
        }
        let session = Session {
            next_incoming_id: begin.next_outgoing_id,
            ..Session::default()
        };
        let reply = Begin {
            remote_channel: Some(channel),
            next_outgoing_id: 0,
            incoming_window: WINDOW,
            outgoing_window: WINDOW,
            handle_max: u32::try_from(self.options.max_links_per_session.saturating_sub(1))
                .unwrap_or(u32::MAX),
            ..Begin::default()
        };
        self.sessions.insert(channel, session);
        self.push(channel, &reply.into(), &[]);
        Next::Continue
    }

    /// Unix seconds by the broker's clock, for token expiry.
    pub(crate) fn now_secs(&self) -> u64 {
        (self.broker.now() / 1000).max(0) as u64
    }
}
