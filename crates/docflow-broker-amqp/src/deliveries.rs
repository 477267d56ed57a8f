//! Incoming deliveries: transfers (possibly multi-frame) assembled into messages, CBS
//! requests answered, messages handed to the link's send worker, and settlement once the
//! broker has answered.

use docflow_amqp::delivery_state::{Accepted, Rejected};
use docflow_amqp::message::{BATCH_MESSAGE_FORMAT, Message as AmqpMessage, split_batch};
use docflow_amqp::performative::{Detach, Disposition, Transfer};
use docflow_amqp::{AmqpError, DeliveryState, Role};
use docflow_broker::{Broker, BrokerError};
use docflow_servicebus::message::Message;
use tokio::sync::mpsc;

use crate::cbs;
use crate::convert::to_broker_message;
use crate::engine::{Completion, Connection, Next, WINDOW};
use crate::links::LinkKind;

/// A message (or batch) on its way to the broker.
pub(crate) struct Delivery {
    pub(crate) delivery_id: u32,
    pub(crate) settled: bool,
    pub(crate) messages: Vec<Message>,
}

/// The broker's answer to one delivery, back to the connection task.
pub(crate) struct SendDone {
    channel: u16,
    handle: u32,
    link_id: u64,
    pub(crate) delivery_id: u32,
    pub(crate) settled: bool,
    outcome: DeliveryState,
}

/// A message arriving in several transfers.
pub(crate) struct Partial {
    pub(crate) delivery_id: u32,
    pub(crate) settled: bool,
    pub(crate) message_format: u32,
    pub(crate) payload: Vec<u8>,
}

impl Connection {
    pub(crate) fn on_transfer(
        &mut self,
        channel: u16,
        transfer: &Transfer,
        payload: &[u8],
    ) -> Next {
        let max_bytes = self.broker.options().max_message_bytes;
        let session = self.session(channel);
        session.next_incoming_id = session.next_incoming_id.wrapping_add(1);
        session.incoming_since_flow += 1;
        if session.incoming_since_flow >= WINDOW / 2 {
            session.incoming_since_flow = 0;
            let flow = session.flow();
            self.push(channel, &flow.into(), &[]);
        }
        let session = self.session(channel);
        let Some(link) = session.links.get_mut(&transfer.handle) else {
            // A session error (part 2, section 2.7.5): the session ends, not the connection.
            let error = AmqpError::new(
                "amqp:session:unattached-handle",
                format!(
                    "transfer on handle {}, which is not attached",
                    transfer.handle
                ),
            );
            return self.end_session(channel, error);
        };
        if link.partial.is_none() {
            let Some(delivery_id) = transfer.delivery_id else {
                return Next::Close(Some(AmqpError::new(
                    "amqp:invalid-field",
                    "the first transfer of a delivery has no delivery-id",
                )));
            };
            if link.credit == 0 {
                let error = AmqpError::new(
                    "amqp:link:transfer-limit-exceeded",
                    "transfer without link credit",
                );
                return self.detach_with(channel, transfer.handle, error);
            }
            link.credit -= 1;
            link.delivery_count = link.delivery_count.wrapping_add(1);
            link.partial = Some(Partial {
                delivery_id,
                settled: transfer.settled.unwrap_or(false),
                message_format: transfer.message_format.unwrap_or(0),
                payload: Vec::new(),
            });
        }
        if transfer.aborted {
            link.partial = None;
            return Next::Continue;
        }
        let Some(partial) = link.partial.as_mut() else {
            return Next::Continue;
        };
        partial.settled |= transfer.settled.unwrap_or(false);
        // Room for a batch's framing around the largest message.
        if partial.payload.len() + payload.len() > max_bytes.saturating_mul(2) + 64 * 1024 {
            let error = AmqpError::new(
                "amqp:link:message-size-exceeded",
                format!("the message exceeds the maximum size of {max_bytes} bytes"),
            );
            return self.detach_with(channel, transfer.handle, error);
        }
        partial.payload.extend_from_slice(payload);
        if transfer.more {
            return Next::Continue;
        }
        let Some(partial) = link.partial.take() else {
            return Next::Continue;
        };
        self.on_delivery(channel, transfer.handle, partial);
        Next::Continue
    }

    /// A whole message (or batch) has arrived.
    fn on_delivery(&mut self, channel: u16, handle: u32, partial: Partial) {
        let decoded = AmqpMessage::decode(&partial.payload).and_then(|m| {
            if partial.message_format == BATCH_MESSAGE_FORMAT {
                split_batch(&m)
            } else {
                Ok(vec![m])
            }
        });
        let rules = self.broker.options().sas_rules.clone();
        let now = self.now_secs();
        let Some(link) = self
            .sessions
            .get_mut(&channel)
            .and_then(|s| s.links.get_mut(&handle))
        else {
            return;
        };
        let messages = match decoded {
            Ok(messages) => messages,
            Err(e) => {
                let error = AmqpError::new("amqp:decode-error", e.to_string());
                self.settle(
                    channel,
                    partial.delivery_id,
                    partial.settled,
                    rejected(error),
                );
                self.grant_credit(channel, handle);
                return;
            }
        };
        match &link.kind {
            LinkKind::Entity { worker } => {
                let delivery = Delivery {
                    delivery_id: partial.delivery_id,
                    settled: partial.settled,
                    messages: messages.iter().map(to_broker_message).collect(),
                };
                if worker.try_send(delivery).is_ok() {
                    link.in_flight += 1;
                } else {
                    let error = AmqpError::new("amqp:internal-error", "the link's sender stopped");
                    self.settle(
                        channel,
                        partial.delivery_id,
                        partial.settled,
                        rejected(error),
                    );
                }
            }
            LinkKind::CbsRequests => {
                for request in &messages {
                    let reply = cbs::handle_request(request, &mut self.auth, &rules, now);
                    let reply_to = request.properties.as_ref().and_then(|p| p.reply_to.clone());
                    let node = cbs::CBS_ADDRESS;
                    self.queue_reply(channel, node, reply_to.as_deref(), reply.encode());
                }
                let outcome = DeliveryState::Accepted(Accepted);
                self.settle(channel, partial.delivery_id, partial.settled, outcome);
            }
            LinkKind::Management(_) => {
                for request in &messages {
                    self.on_management_request(channel, handle, request);
                }
                let outcome = DeliveryState::Accepted(Accepted);
                self.settle(channel, partial.delivery_id, partial.settled, outcome);
            }
            LinkKind::Replies { .. } | LinkKind::Receive(_) | LinkKind::SessionPending(_) => {}
        }
        self.grant_credit(channel, handle);
    }

    /// Sends a settled disposition for an unsettled delivery.
    fn settle(&mut self, channel: u16, delivery_id: u32, settled: bool, outcome: DeliveryState) {
        if settled {
            return;
        }
        let disposition = Disposition {
            role: Role::Receiver,
            first: delivery_id,
            last: None,
            settled: true,
            state: Some(outcome),
            batchable: false,
        };
        self.push(channel, &disposition.into(), &[]);
    }

    pub(crate) fn detach_with(&mut self, channel: u16, handle: u32, error: AmqpError) -> Next {
        self.remove_link(channel, handle);
        let detach = Detach {
            handle,
            closed: true,
            error: Some(error),
        };
        self.push(channel, &detach.into(), &[]);
        Next::Continue
    }

    /// The broker answered a delivery: settle it and give the credit back.
    pub(crate) fn on_send_done(&mut self, done: SendDone) {
        let Some(link) = self
            .sessions
            .get_mut(&done.channel)
            .and_then(|s| s.links.get_mut(&done.handle))
            .filter(|l| l.id == done.link_id)
        else {
            return;
        };
        link.in_flight = link.in_flight.saturating_sub(1);
        self.settle(done.channel, done.delivery_id, done.settled, done.outcome);
        self.grant_credit(done.channel, done.handle);
    }
}

/// A transfer frame's payload: the bytes after its performative.
pub(crate) fn transfer_payload(body: &[u8]) -> &[u8] {
    match docflow_amqp::codec::decode(body) {
        Ok((_, used)) => &body[used..],
        Err(_) => &[],
    }
}

pub(crate) fn rejected(error: AmqpError) -> DeliveryState {
    DeliveryState::Rejected(Rejected { error: Some(error) })
}

/// Sends a link's deliveries to the broker one at a time, in order, and reports each answer.
pub(crate) async fn send_worker(
    broker: Broker,
    entity: String,
    mut deliveries: mpsc::Receiver<Delivery>,
    done: mpsc::Sender<Completion>,
    (channel, handle, link_id): (u16, u32, u64),
) {
    while let Some(delivery) = deliveries.recv().await {
        let outcome = match broker.send(&entity, delivery.messages).await {
            Ok(_) => DeliveryState::Accepted(Accepted),
            Err(e) => rejected(broker_error(&e)),
        };
        let answer = SendDone {
            channel,
            handle,
            link_id,
            delivery_id: delivery.delivery_id,
            settled: delivery.settled,
            outcome,
        };
        if done.send(Completion::Sent(answer)).await.is_err() {
            break;
        }
    }
}

fn broker_error(e: &BrokerError) -> AmqpError {
    let condition = match e {
        BrokerError::EntityNotFound(_) => "amqp:not-found",
        BrokerError::TooLarge { .. } => "amqp:link:message-size-exceeded",
        BrokerError::BadRequest(_) | BrokerError::SessionIdMissing => {
            "com.microsoft:argument-error"
        }
        _ => "amqp:internal-error",
    };
    AmqpError::new(condition, e.to_string())
}
