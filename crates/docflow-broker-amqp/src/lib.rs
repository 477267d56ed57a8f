//! The embedded broker's AMQP 1.0 front end: the protocol Microsoft's Service Bus SDKs speak,
//! served from the same [`Broker`] core as the REST data plane.
//!
//! It serves a connection through SASL (`MSSBCBS`, `ANONYMOUS`), `open`, sessions and links;
//! authorises entities by CBS `put-token` with the REST API's SAS rules; accepts messages
//! (single and batched) on sender links, answering `accepted` only once the broker has made
//! them durable; delivers messages to peek-lock receiver links (credit and drain, lock tokens
//! as delivery tags, settlements echoed) and to receive-and-delete ones (pre-settled), named
//! and next-available session receivers included; and answers `$management` requests (lock
//! renewal, peek, scheduling, deferred messages, settlement by lock token, session locks and
//! state, the list of sessions).
//!
//! # Layout
//! - [`serve_connection`] and [`AmqpOptions`]: the entry point, one call per TCP connection.
//! - [`serve`] and [`ListenOptions`]: the broker's ports, AMQP and HTTP told apart by each
//!   connection's first bytes, with a connection cap and a graceful drain.
//! - `handshake`: protocol headers and the SASL exchange.
//! - `io`: bounded frame reading and writing over the socket.
//! - `engine`: the connection's state machine (open, sessions, links, flow, close).
//! - `links`: attach, detach, flow and credit; replies on `$cbs` and `$management` receiver
//!   links.
//! - `deliveries`: incoming transfers, the per-link send worker, settlement.
//! - `receive`: receiver links: credit, drain, lock-token tags, settlement echo; pre-settled
//!   receive-and-delete deliveries.
//! - `management`: `<entity>/$management` request/response links and their operations.
//! - `sessions`: session receivers (session filter, lock, `locked-until-utc`) and the
//!   sessions a connection holds.
//! - `cbs`: SAS token checks, address normalisation, the connection's authorisations.
//! - `convert`: AMQP messages to the broker's messages.

mod cbs;
mod convert;
mod deliveries;
mod engine;
mod handshake;
mod io;
mod links;
mod listener;
mod management;
mod receive;
mod sessions;

use std::time::Duration;

use docflow_broker::Broker;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub use cbs::normalize_address;
pub use listener::{ListenOptions, Protocol, serve, sniff};

/// Limits and timeouts of the AMQP front end.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// The container id the broker announces in `open`.
    pub container_id: String,
    /// The largest frame the broker accepts (announced in `open`).
    pub max_frame_size: u32,
    /// How long a peer may take to finish the protocol headers and SASL.
    pub handshake_timeout: Duration,
    /// The idle timeout announced in `open`: a peer silent for longer is disconnected.
    pub idle_timeout: Duration,
    /// Sessions one connection may hold.
    pub max_sessions: usize,
    /// Links one session may hold.
    pub max_links_per_session: usize,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            container_id: "docflow-broker".into(),
            max_frame_size: 256 * 1024,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_sessions: 64,
            max_links_per_session: 256,
        }
    }
}

/// Why a connection ended other than by an orderly `close`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol; the broker told it so where it could.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer took too long (handshake, or silence beyond the idle timeout).
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

/// Serves one AMQP connection on `stream` until the peer closes it or breaks the protocol.
///
/// Every error is logged and ends only this connection; the broker keeps serving others.
pub async fn serve_connection(broker: Broker, stream: TcpStream, options: AmqpOptions) {
    serve_connection_until(broker, stream, options, CancellationToken::new()).await;
}

/// [`serve_connection`] until `stop` is cancelled: the connection is then closed with
/// `amqp:connection:forced` (the broker is shutting down).
pub async fn serve_connection_until(
    broker: Broker,
    stream: TcpStream,
    options: AmqpOptions,
    stop: CancellationToken,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match engine::run(broker, stream, options, stop).await {
        Ok(()) => tracing::debug!(%peer, "amqp connection closed"),
        Err(e) => tracing::info!(%peer, error = %e, "amqp connection ended"),
    }
}
