//! Links: attach and detach, flow and credit, and request/response replies (CBS on `$cbs`,
//! management on `<entity>/$management`) on the client's receiver links of those nodes.

use std::collections::VecDeque;

use docflow_amqp::performative::{Attach, Detach, Flow, Transfer};
use docflow_amqp::{AmqpError, Performative, ReceiverSettleMode, Role, SenderSettleMode};
use docflow_broker::entities::Target;
use docflow_broker::{ReceiveMode, split_dlq};
use docflow_servicebus::sas::Right;
use tokio::sync::mpsc;

use crate::cbs::{CBS_ADDRESS, normalize_address};
use crate::deliveries::{Delivery, Partial, send_worker, transfer_payload};
use crate::engine::{Connection, Next, Session};
use crate::management::{self, ManagementRequests};
use crate::receive::Receiver;
use crate::sessions::{SessionWanted, session_filter, wait_of};

/// Credit the broker grants a sender link; refilled when half is used.
pub(crate) const LINK_CREDIT: u32 = 100;
/// Replies queued on one link for a client that gives no credit.
const MAX_PENDING_REPLIES: usize = 16;

/// What a link is for.
pub(crate) enum LinkKind {
    /// The client sends CBS requests to `$cbs`.
    CbsRequests,
    /// The broker sends replies of a request/response node (`$cbs`, `<entity>/$management`)
    /// to the client.
    Replies {
        /// The node's normalised address: replies of this node only go on this link.
        node: String,
        /// Its target address or name, to match a request's `reply-to`.
        address: String,
        pending: VecDeque<Vec<u8>>,
    },
    /// The client sends management requests to `<entity>/$management`.
    Management(ManagementRequests),
    /// The client sends messages to an entity; a worker forwards them in order.
    Entity {
        /// Where the link's deliveries go, in order.
        worker: mpsc::Sender<Delivery>,
    },
    /// The broker sends an entity's messages to the client (peek-lock or receive-and-delete).
    Receive(Receiver),
    /// A session receiver waiting for the broker to lock its session; its attach reply is
    /// held back until then.
    SessionPending(SessionWanted),
}

/// One attached link.
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) kind: LinkKind,
    /// Credit left: granted by the broker (incoming links) or by the peer (outgoing links).
    pub(crate) credit: u32,
    pub(crate) delivery_count: u32,
    pub(crate) in_flight: u32,
    pub(crate) partial: Option<Partial>,
}

impl Connection {
    /// Attach, flow, transfer, disposition and detach, on an existing session.
    pub(crate) fn on_link_performative(
        &mut self,
        channel: u16,
        p: Performative,
        body: &[u8],
    ) -> Next {
        match p {
            Performative::Attach(attach) => self.on_attach(channel, attach),
            Performative::Flow(flow) => self.on_flow(channel, &flow),
            Performative::Transfer(transfer) => {
                let payload = transfer_payload(body);
                self.on_transfer(channel, &transfer, payload)
            }
            Performative::Detach(detach) => {
                if self.remove_link(channel, detach.handle) {
                    let reply = Detach {
                        handle: detach.handle,
                        closed: detach.closed,
                        error: None,
                    };
                    self.push(channel, &reply.into(), &[]);
                }
                Next::Continue
            }
            Performative::Disposition(d) => {
                self.on_receiver_disposition(channel, &d);
                Next::Continue
            }
            _ => Next::Continue,
        }
    }

    pub(crate) fn session(&mut self, channel: u16) -> &mut Session {
        self.sessions.entry(channel).or_default()
    }

    fn on_attach(&mut self, channel: u16, attach: Attach) -> Next {
        let max_links = self.options.max_links_per_session;
        let session = self.session(channel);
        if session.links.contains_key(&attach.handle) {
            return Next::Close(Some(AmqpError::new(
                "amqp:session:handle-in-use",
                format!("handle {} is already attached", attach.handle),
            )));
        }
        let too_many = session.links.len() >= max_links;
        let client_sends = attach.role == Role::Sender;
        let address = if client_sends {
            attach.target.as_ref().and_then(|t| t.address.clone())
        } else {
            attach.source.as_ref().and_then(|s| s.address.clone())
        }
        .unwrap_or_default();
        let normalized = normalize_address(&address);
        let replies = || {
            let address = attach.target.as_ref().and_then(|t| t.address.clone());
            LinkKind::Replies {
                node: normalized.clone(),
                address: address.unwrap_or_else(|| attach.name.clone()),
                pending: VecDeque::new(),
            }
        };
        let kind = if too_many {
            Err(AmqpError::new(
                "amqp:resource-limit-exceeded",
                "too many links on one session",
            ))
        } else if normalized == CBS_ADDRESS {
            Ok(if client_sends {
                LinkKind::CbsRequests
            } else {
                replies()
            })
        } else if let Some(entity) = management::entity_of(&normalized) {
            let ids = (channel, attach.handle, self.next_link_id + 1);
            self.management_link(entity, client_sends, ids)
                .map(|requests| requests.map_or_else(replies, LinkKind::Management))
        } else {
            self.entity_link(channel, &attach, &normalized, client_sends)
        };
        let mut reply = Attach {
            name: attach.name.clone(),
            handle: attach.handle,
            role: if client_sends {
                Role::Receiver
            } else {
                Role::Sender
            },
            snd_settle_mode: attach.snd_settle_mode,
            rcv_settle_mode: attach.rcv_settle_mode,
            source: attach.source.clone(),
            target: attach.target.clone(),
            ..Attach::default()
        };
        if client_sends {
            reply.max_message_size = Some(self.broker.options().max_message_bytes as u64);
        } else {
            reply.initial_delivery_count = Some(0);
        }
        match kind {
            Err(error) => {
                if client_sends {
                    reply.target = None;
                } else {
                    reply.source = None;
                }
                self.push(channel, &reply.into(), &[]);
                let detach = Detach {
                    handle: attach.handle,
                    closed: true,
                    error: Some(error),
                };
                self.push(channel, &detach.into(), &[]);
            }
            Ok(mut kind) => {
                if let LinkKind::SessionPending(wanted) = &mut kind {
                    wanted.reply = Some(Box::new(reply));
                } else {
                    self.push(channel, &reply.into(), &[]);
                }
                self.next_link_id += 1;
                let link = Link {
                    id: self.next_link_id,
                    kind,
                    credit: 0,
                    // .NET may leave it out: default to 0 rather than refusing the attach.
                    delivery_count: attach.initial_delivery_count.unwrap_or(0),
                    in_flight: 0,
                    partial: None,
                };
                if let LinkKind::SessionPending(wanted) = &link.kind {
                    self.accept_session_for(channel, attach.handle, link.id, wanted);
                }
                self.session(channel).links.insert(attach.handle, link);
                if client_sends {
                    self.grant_credit(channel, attach.handle);
                }
            }
        }
        Next::Continue
    }

    /// Checks an entity link and starts its worker.
    fn entity_link(
        &mut self,
        channel: u16,
        attach: &Attach,
        normalized: &str,
        client_sends: bool,
    ) -> Result<LinkKind, AmqpError> {
        let (base, dlq) = split_dlq(normalized);
        let entity = match (self.broker.entities().resolve(&base), client_sends) {
            (Some(t @ (Target::Queue(_) | Target::Topic(_))), true) if !dlq => Some(t.key()),
            (Some(t @ (Target::Queue(_) | Target::Subscription(..))), false) => Some(t.key()),
            _ => None,
        };
        let entity = entity.ok_or_else(|| {
            AmqpError::new(
                "amqp:not-found",
                format!("the messaging entity '{normalized}' could not be found"),
            )
        })?;
        let right = if client_sends {
            Right::Send
        } else {
            Right::Listen
        };
        // The path itself: a token for `q` covers `q/$deadletterqueue`, and the SDKs put one
        // for `q/$DeadLetterQueue` when they receive from the dead-letter queue.
        if !self.auth.allows(normalized, right, self.now_secs()) {
            return Err(AmqpError::new(
                "amqp:unauthorized-access",
                format!(
                    "no valid token with the {} right for '{normalized}' on this connection",
                    right.name()
                ),
            ));
        }
        if !client_sends {
            let sessions = self
                .broker
                .entities()
                .resolve(&base)
                .is_some_and(|t| t.settings().requires_session);
            // Receive-and-delete: the SDKs attach with snd-settle-mode=settled. Peek-lock:
            // rcv-settle-mode=second, the broker echoing each settlement.
            let mode = if attach.snd_settle_mode == SenderSettleMode::Settled {
                ReceiveMode::ReceiveAndDelete
            } else if attach.rcv_settle_mode == ReceiverSettleMode::Second {
                ReceiveMode::PeekLock
            } else {
                return Err(AmqpError::new(
                    "amqp:not-implemented",
                    "a receiver link is served pre-settled (snd-settle-mode settled: \
                     receive-and-delete) or with rcv-settle-mode second (peek-lock)",
                ));
            };
            match (session_filter(attach.source.as_ref()), sessions && !dlq) {
                (Some(session_id), true) => {
                    return Ok(LinkKind::SessionPending(SessionWanted {
                        entity,
                        mode,
                        session_id,
                        timeout: wait_of(attach),
                        reply: None,
                    }));
                }
                (Some(_), false) => {
                    return Err(AmqpError::new(
                        "amqp:not-allowed",
                        format!("'{normalized}' is not session-enabled: receive without a session"),
                    ));
                }
                (None, true) => {
                    return Err(AmqpError::new(
                        "amqp:not-allowed",
                        format!("'{normalized}' requires sessions: accept a session to receive"),
                    ));
                }
                (None, false) => {}
            }
            let ids = (channel, attach.handle, self.next_link_id + 1);
            let done = self.done_tx.clone();
            let source = (entity, dlq, mode);
            let receiver = Receiver::start(self.broker.clone(), source, None, done, ids);
            return Ok(LinkKind::Receive(receiver));
        }
        let (worker, deliveries) = mpsc::channel(LINK_CREDIT as usize);
        tokio::spawn(send_worker(
            self.broker.clone(),
            entity,
            deliveries,
            self.done_tx.clone(),
            (channel, attach.handle, self.next_link_id + 1),
        ));
        Ok(LinkKind::Entity { worker })
    }

    /// Removes a link, stopping its receive worker and forgetting its unsettled deliveries.
    /// Whether it was attached.
    pub(crate) fn remove_link(&mut self, channel: u16, handle: u32) -> bool {
        let Some(link) = self.session(channel).links.remove(&handle) else {
            return false;
        };
        if let LinkKind::Receive(rx) = &link.kind {
            rx.stop();
            self.forget_unsettled(channel, handle);
            if let Some(lock) = rx.session.clone() {
                let entity = rx.entity.clone();
                self.release_session(&entity, lock);
            }
        }
        true
    }

    /// Tops a receiving link's credit up to [`LINK_CREDIT`] once half is used.
    pub(crate) fn grant_credit(&mut self, channel: u16, handle: u32) {
        self.send_link_flow(channel, handle, false);
    }

    /// Sends a receiving link's flow: when credit needs a top-up, or always when `echo`.
    fn send_link_flow(&mut self, channel: u16, handle: u32, echo: bool) {
        let session = self.session(channel);
        let mut flow = session.flow();
        let Some(link) = session.links.get_mut(&handle) else {
            return;
        };
        let low = link.credit + link.in_flight <= LINK_CREDIT / 2;
        if !low && !echo {
            return;
        }
        if low {
            link.credit = LINK_CREDIT - link.in_flight;
        }
        flow.handle = Some(handle);
        flow.delivery_count = Some(link.delivery_count);
        flow.link_credit = Some(link.credit);
        self.push(channel, &flow.into(), &[]);
    }

    fn on_flow(&mut self, channel: u16, flow: &Flow) -> Next {
        let Some(handle) = flow.handle else {
            if flow.echo {
                let reply = self.session(channel).flow();
                self.push(channel, &reply.into(), &[]);
            }
            return Next::Continue;
        };
        let session = self.session(channel);
        let Some(link) = session.links.get_mut(&handle) else {
            return Next::Continue;
        };
        if let LinkKind::Receive(_) | LinkKind::SessionPending(_) = link.kind {
            self.on_receiver_flow(channel, handle, flow);
            if flow.echo {
                let session = self.session(channel);
                let mut reply = session.flow();
                if let Some(link) = session.links.get(&handle) {
                    reply.handle = Some(handle);
                    reply.delivery_count = Some(link.delivery_count);
                    reply.link_credit = Some(link.credit);
                    self.push(channel, &reply.into(), &[]);
                }
            }
        } else if let LinkKind::Replies { .. } = link.kind {
            // Credit as part 2, section 2.6.7 computes it on the sending side.
            let credit = flow
                .delivery_count
                .unwrap_or(0)
                .wrapping_add(flow.link_credit.unwrap_or(0))
                .wrapping_sub(link.delivery_count);
            link.credit = credit.min(u32::MAX / 2);
            self.flush_replies(channel, handle);
            let session = self.session(channel);
            let mut reply = session.flow();
            let Some(link) = session.links.get_mut(&handle) else {
                return Next::Continue;
            };
            if flow.drain {
                link.delivery_count = link.delivery_count.wrapping_add(link.credit);
                link.credit = 0;
            }
            if flow.drain || flow.echo {
                reply.handle = Some(handle);
                reply.delivery_count = Some(link.delivery_count);
                reply.link_credit = Some(link.credit);
                reply.drain = flow.drain;
                self.push(channel, &reply.into(), &[]);
            }
        } else if flow.echo {
            self.send_link_flow(channel, handle, true);
        }
        Next::Continue
    }

    /// Queues a reply of `node` (normalised: `$cbs`, `q/$management`) on the session's
    /// receiver link of that node (preferring the one named by `reply-to`) and sends what
    /// credit allows.
    pub(crate) fn queue_reply(
        &mut self,
        channel: u16,
        node: &str,
        reply_to: Option<&str>,
        reply: Vec<u8>,
    ) {
        let session = self.session(channel);
        let mut handles: Vec<(u32, bool)> = session
            .links
            .iter()
            .filter_map(|(h, l)| match &l.kind {
                LinkKind::Replies {
                    node: n, address, ..
                } if n == node => Some((*h, Some(address.as_str()) == reply_to)),
                _ => None,
            })
            .collect();
        handles.sort_by_key(|(h, preferred)| (!preferred, *h));
        let Some(&(handle, _)) = handles.first() else {
            tracing::debug!(node, "a request arrived with no receiver link to answer on");
            return;
        };
        if let Some(LinkKind::Replies { pending, .. }) =
            session.links.get_mut(&handle).map(|l| &mut l.kind)
            && pending.len() < MAX_PENDING_REPLIES
        {
            pending.push_back(reply);
        }
        self.flush_replies(channel, handle);
    }

    fn flush_replies(&mut self, channel: u16, handle: u32) {
        loop {
            let session = self.session(channel);
            let delivery_id = session.next_delivery_id;
            let Some(link) = session.links.get_mut(&handle) else {
                return;
            };
            if link.credit == 0 {
                return;
            }
            let LinkKind::Replies { pending, .. } = &mut link.kind else {
                return;
            };
            let Some(reply) = pending.pop_front() else {
                return;
            };
            link.credit -= 1;
            link.delivery_count = link.delivery_count.wrapping_add(1);
            session.next_delivery_id = delivery_id.wrapping_add(1);
            let transfer = Transfer {
                handle,
                delivery_id: Some(delivery_id),
                delivery_tag: Some(delivery_id.to_be_bytes().to_vec()),
                message_format: Some(0),
                settled: Some(true),
                ..Transfer::default()
            };
            self.push_transfer(channel, transfer, &reply);
        }
    }

    /// Queues a transfer, split into frames the peer accepts.
    pub(crate) fn push_transfer(&mut self, channel: u16, transfer: Transfer, payload: &[u8]) {
        let overhead = docflow_amqp::codec::encode_to_vec(
            &Performative::Transfer(transfer.clone()).to_value(),
        )
        .len()
            + 16;
        let room = (self.peer_max_frame as usize)
            .saturating_sub(overhead)
            .max(1);
        let mut chunks = payload.chunks(room).peekable();
        if payload.is_empty() {
            self.push_transfer_frame(channel, transfer, &[]);
            return;
        }
        while let Some(chunk) = chunks.next() {
            let mut frame = transfer.clone();
            frame.more = chunks.peek().is_some();
            self.push_transfer_frame(channel, frame, chunk);
        }
    }

    fn push_transfer_frame(&mut self, channel: u16, transfer: Transfer, chunk: &[u8]) {
        let session = self.session(channel);
        session.next_outgoing_id = session.next_outgoing_id.wrapping_add(1);
        self.push(channel, &transfer.into(), chunk);
    }
}
