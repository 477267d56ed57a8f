//! The AMQP half of `docflow bench broker`: the same figures as over REST, measured with a
//! Rust AMQP 1.0 client (`fe2o3-amqp`) as Microsoft's Service Bus SDKs use the protocol.
//!
//! Each client opens one connection (SASL `ANONYMOUS`), puts a SAS token for the queue on
//! `$cbs`, and keeps its links open: a sender link with up to [`SEND_WINDOW`] deliveries in
//! flight, each awaited to its `accepted` outcome (the broker answers once the message is
//! durable), and a peek-lock receiver link (`rcv-settle-mode` second) with [`RECEIVE_CREDIT`]
//! credit, completing each message by an `accepted` disposition. A receive latency is the time
//! from granting one credit to holding the message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::DeliveryFut;
use fe2o3_amqp::link::{CreditMode, SendError};
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::ReceiverSettleMode;
use fe2o3_amqp::types::messaging::annotations::AnnotationKey;
use fe2o3_amqp::types::messaging::{ApplicationProperties, Body, Message, Outcome, Properties};
use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Value};
use fe2o3_amqp::{Connection, Delivery, Receiver, Sender, Session};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::servicebus::connection::{EMULATOR_KEY, EMULATOR_KEY_NAME};
use crate::servicebus::message::Message as BrokerMessage;
use crate::servicebus::sas;

/// Deliveries a sender keeps in flight before it waits for the oldest one's outcome.
pub const SEND_WINDOW: usize = 100;
/// The credit a throughput receiver link keeps (refilled by the client as it goes).
pub const RECEIVE_CREDIT: u32 = 100;
/// How long any one step may take before the benchmark gives up.
const STEP: Duration = Duration::from_secs(30);

/// One AMQP connection with a session, authorised for one entity.
pub struct AmqpClient {
    connection: ConnectionHandle<()>,
    session: SessionHandle<()>,
    port: u16,
}

impl AmqpClient {
    /// Connects to the broker on 127.0.0.1:`port` and puts a token for `entity` on `$cbs`.
    pub async fn connect(port: u16, name: &str, entity: &str) -> Result<AmqpClient, String> {
        let mut connection = Connection::builder()
            .container_id(format!("docflow-bench-{name}"))
            .sasl_profile(SaslProfile::Anonymous)
            .open(format!("amqp://127.0.0.1:{port}").as_str())
            .await
            .map_err(|e| format!("amqp open: {e}"))?;
        let session = Session::begin(&mut connection)
            .await
            .map_err(|e| format!("amqp begin: {e}"))?;
        let mut client = AmqpClient {
            connection,
            session,
            port,
        };
        client.put_token(entity).await?;
        Ok(client)
    }

    /// Puts a SAS token for `entity` as the SDKs do: a request on a `$cbs` sender link, the
    /// reply (status-code 200) on a `$cbs` receiver link.
    async fn put_token(&mut self, entity: &str) -> Result<(), String> {
        let audience = format!("sb://127.0.0.1:{}/{entity}", self.port);
        let expiry = chrono::Utc::now().timestamp().max(0) as u64 + 3600;
        let token = sas::sign(&audience, EMULATOR_KEY_NAME, EMULATOR_KEY, expiry);
        let mut requests = Sender::attach(&mut self.session, "cbs-requests", "$cbs")
            .await
            .map_err(|e| format!("$cbs sender attach: {e}"))?;
        let mut replies = Receiver::builder()
            .name("cbs-replies")
            .source("$cbs")
            .target("cbs-replies")
            .attach(&mut self.session)
            .await
            .map_err(|e| format!("$cbs receiver attach: {e}"))?;
        let request = Message::builder()
            .properties(
                Properties::builder()
                    .message_id(1u64)
                    .reply_to("cbs-replies")
                    .build(),
            )
            .application_properties(
                ApplicationProperties::builder()
                    .insert("operation", "put-token")
                    .insert("type", "servicebus.windows.net:sastoken")
                    .insert("name", audience.as_str())
                    .build(),
            )
            .value(token)
            .build();
        let outcome = requests
            .send(request)
            .await
            .map_err(|e| format!("$cbs put-token: {e}"))?;
        expect_accepted(outcome)?;
        let reply: Delivery<Body<Value>> = timed(replies.recv(), "the $cbs reply")
            .await?
            .map_err(|e| format!("$cbs reply: {e}"))?;
        let status = reply
            .message()
            .application_properties
            .as_ref()
            .and_then(|p| p.get("status-code"))
            .cloned();
        if !matches!(status, Some(SimpleValue::Int(200))) {
            return Err(format!("$cbs put-token for {entity} answered {status:?}"));
        }
        replies
            .accept(&reply)
            .await
            .map_err(|e| format!("$cbs reply: {e}"))?;
        let _ = requests.close().await;
        let _ = replies.close().await;
        Ok(())
    }

    /// A sender link to `entity`.
    pub async fn sender(&mut self, name: &str, entity: &str) -> Result<Sender, String> {
        Sender::attach(&mut self.session, name, entity)
            .await
            .map_err(|e| format!("sender attach: {e}"))
    }

    /// A peek-lock receiver link on `entity` (`rcv-settle-mode` second, as the SDKs attach
    /// one), with `credit` kept topped up, or none granted when `None`.
    pub async fn receiver(
        &mut self,
        name: &str,
        entity: &str,
        credit: Option<u32>,
    ) -> Result<Receiver, String> {
        Receiver::builder()
            .name(name)
            .source(entity)
            .target(name)
            .receiver_settle_mode(ReceiverSettleMode::Second)
            .credit_mode(credit.map_or(CreditMode::Manual, CreditMode::Auto))
            .attach(&mut self.session)
            .await
            .map_err(|e| format!("receiver attach: {e}"))
    }

    /// Ends the session and closes the connection.
    pub async fn close(mut self) {
        let _ = self.session.end().await;
        let _ = self.connection.close().await;
    }
}

fn expect_accepted(outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Accepted(_) => Ok(()),
        other => Err(format!("a message was not accepted: {other:?}")),
    }
}

async fn timed<T>(future: impl Future<Output = T>, what: &str) -> Result<T, String> {
    tokio::time::timeout(STEP, future)
        .await
        .map_err(|_| format!("timed out waiting for {what}"))
}

/// `clients` connections, each with a sender link sending its share of `messages` to
/// `entity` (pipelined, every outcome awaited) and a receiver link receiving and completing
/// until every message sent has been received. The time runs from the first send (links
/// attached beforehand) until the broker counts the queue empty: every completion durable.
pub async fn throughput(
    broker: &Broker,
    port: u16,
    entity: &str,
    clients: usize,
    messages: usize,
) -> Result<(Duration, usize), String> {
    let per_client = messages / clients;
    let total = per_client * clients;
    let mut links = Vec::new();
    for c in 0..clients {
        let mut client = AmqpClient::connect(port, &format!("throughput-{c}"), entity).await?;
        let sender = client.sender(&format!("sender-{c}"), entity).await?;
        let receiver = client
            .receiver(&format!("receiver-{c}"), entity, Some(RECEIVE_CREDIT))
            .await?;
        links.push((client, sender, receiver));
    }
    let received = Arc::new(AtomicUsize::new(0));
    let all_received = CancellationToken::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, (client, sender, receiver)) in links.into_iter().enumerate() {
        let sending = tokio::spawn(send_all(sender, c, per_client));
        let receiving = tokio::spawn(receive_until(
            receiver,
            total,
            received.clone(),
            all_received.clone(),
        ));
        tasks.push((client, sending, receiving));
    }
    let mut clients_done = Vec::new();
    for (client, sending, receiving) in tasks {
        sending.await.map_err(|e| e.to_string())??;
        receiving.await.map_err(|e| e.to_string())??;
        clients_done.push(client);
    }
    wait_until_empty(broker, entity).await?;
    let elapsed = started.elapsed();
    for client in clients_done {
        client.close().await;
    }
    Ok((elapsed, received.load(Ordering::SeqCst).min(total)))
}

/// Sends `count` messages with up to [`SEND_WINDOW`] in flight, each awaited to `accepted`.
async fn send_all(mut sender: Sender, client: usize, count: usize) -> Result<(), String> {
    let mut in_flight: VecDeque<DeliveryFut<Result<Outcome, SendError>>> =
        VecDeque::with_capacity(SEND_WINDOW);
    for i in 0..count {
        if in_flight.len() >= SEND_WINDOW {
            let outcome = in_flight.pop_front().expect("the window is not empty");
            expect_accepted(
                timed(outcome, "an outcome")
                    .await?
                    .map_err(|e| e.to_string())?,
            )?;
        }
        let body = format!("{{\"client\":{client},\"i\":{i}}}").into_bytes();
        let message = Message::builder().data(Binary::from(body)).build();
        let outcome = sender
            .send_batchable(message)
            .await
            .map_err(|e| format!("send: {e}"))?;
        in_flight.push_back(outcome);
    }
    for outcome in in_flight {
        expect_accepted(
            timed(outcome, "an outcome")
                .await?
                .map_err(|e| e.to_string())?,
        )?;
    }
    let _ = sender.close().await;
    Ok(())
}

/// Receives and completes until `received` reaches `total` (counted across the clients).
async fn receive_until(
    mut receiver: Receiver,
    total: usize,
    received: Arc<AtomicUsize>,
    all_received: CancellationToken,
) -> Result<(), String> {
    loop {
        let delivery: Delivery<Body<Value>> = tokio::select! {
            () = all_received.cancelled() => break,
            delivery = timed(receiver.recv(), "a message") => {
                delivery?.map_err(|e| format!("receive: {e}"))?
            }
        };
        receiver
            .accept(&delivery)
            .await
            .map_err(|e| format!("complete: {e}"))?;
        if received.fetch_add(1, Ordering::SeqCst) + 1 >= total {
            all_received.cancel();
        }
    }
    let _ = receiver.close().await;
    Ok(())
}

/// Waits until the broker holds no message in `entity`, locked ones included.
async fn wait_until_empty(broker: &Broker, entity: &str) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    loop {
        let counts = broker.counts(entity).await.map_err(|e| e.to_string())?;
        if counts.active == 0 && counts.locked == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{entity} still holds {counts:?}"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Times `samples` peek-lock receives on `entity`, whose backlog is in place: one credit
/// granted, the message held. Each message is then completed and replaced (outside the
/// timing), so the backlog stays constant.
pub async fn latency(
    broker: &Broker,
    port: u16,
    entity: &str,
    samples: usize,
) -> Result<Vec<Duration>, String> {
    let mut client = AmqpClient::connect(port, "latency", entity).await?;
    let mut receiver = client.receiver("latency-receiver", entity, None).await?;
    let mut timings = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        receiver
            .set_credit(1)
            .await
            .map_err(|e| format!("credit: {e}"))?;
        let delivery: Delivery<Body<Value>> = timed(receiver.recv(), "a backlogged message")
            .await?
            .map_err(|e| format!("receive: {e}"))?;
        timings.push(started.elapsed());
        let sequence_number = sequence_number(&delivery)?;
        receiver
            .accept(&delivery)
            .await
            .map_err(|e| format!("complete: {e}"))?;
        broker
            .send(entity, vec![BrokerMessage::new("refill")])
            .await
            .map_err(|e| e.to_string())?;
        wait_until_completed(broker, entity, sequence_number).await?;
    }
    let _ = receiver.close().await;
    client.close().await;
    Ok(timings)
}

/// The `x-opt-sequence-number` annotation of a delivery.
fn sequence_number(delivery: &Delivery<Body<Value>>) -> Result<i64, String> {
    let key: &dyn AnnotationKey = &"x-opt-sequence-number";
    match delivery
        .message()
        .message_annotations
        .as_ref()
        .and_then(|annotations| annotations.0.get(key))
    {
        Some(Value::Long(sequence_number)) => Ok(*sequence_number),
        other => Err(format!("a delivery's x-opt-sequence-number is {other:?}")),
    }
}

/// Waits until the message `sequence_number` of `entity` is gone: its completion, settled by
/// the broker after the client's disposition, is durable. Looks by sequence number (an
/// indexed peek), not by counting the backlog, which would load the broker in proportion to
/// the backlog between the timed receives.
async fn wait_until_completed(
    broker: &Broker,
    entity: &str,
    sequence_number: i64,
) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    loop {
        let next = broker
            .browse(entity, false, sequence_number, 1)
            .await
            .map_err(|e| e.to_string())?;
        if next.first().map(|m| m.sequence_number) != Some(sequence_number) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the completion of message {sequence_number} on {entity} never landed"
            ));
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
}
