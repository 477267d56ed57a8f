//! The broker's ports: each accepted connection is told apart by its first bytes. A peer that
//! starts with `AMQP` (the AMQP 1.0 or SASL protocol header) gets the AMQP front end; anything
//! else is HTTP and gets the REST data plane, so the one connection string the broker prints
//! (`Endpoint=sb://127.0.0.1:7072;…`) serves Microsoft's SDKs and docflow's REST client alike.
//!
//! Connections are capped (an AMQP peer over the cap is told `amqp:resource-limit-exceeded`,
//! an HTTP one gets a `503`). On shutdown the listeners close, HTTP requests in flight finish
//! (hyper's graceful shutdown) and AMQP connections are closed with `amqp:connection:forced`:
//! nothing they had not been told was accepted is lost, as an `accepted` outcome is only sent
//! once a message is durable.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use docflow_amqp::frame::starts_like_amqp;
use docflow_broker::{Broker, rest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::AmqpOptions;

/// How the broker's ports are served.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// The AMQP front end's limits.
    pub amqp: AmqpOptions,
    /// Connections served at once, AMQP and HTTP together.
    pub max_connections: usize,
    /// How long a new connection may take to send its first bytes.
    pub first_bytes_timeout: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            amqp: AmqpOptions::default(),
            max_connections: 1000,
            first_bytes_timeout: Duration::from_secs(30),
        }
    }
}

/// The protocol a connection speaks, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The AMQP 1.0 (or its SASL) protocol header.
    Amqp,
    /// Anything else: HTTP/1.1 or HTTP/2.
    Http,
}

/// Serves REST and AMQP on every listener until `shutdown` resolves, then drains.
pub async fn serve(
    broker: Broker,
    listeners: Vec<TcpListener>,
    options: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (accepted_tx, mut accepted) = mpsc::channel::<TcpStream>(64);
    let stop_accepting = CancellationToken::new();
    for listener in listeners {
        tokio::spawn(accept_loop(
            listener,
            accepted_tx.clone(),
            stop_accepting.clone(),
        ));
    }
    drop(accepted_tx);

    let graceful = GracefulShutdown::new();
    let amqp_stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let routes = rest::routes(broker.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = accepted.recv() => match stream {
                Some(stream) => stream,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let permit = permits.clone().try_acquire_owned().ok();
        let watcher = graceful.watcher();
        let routes = routes.clone();
        let broker = broker.clone();
        let options = options.clone();
        let amqp_stop = amqp_stop.clone();
        tokio::spawn(async move {
            let Some(protocol) = sniff(&stream, options.first_bytes_timeout).await else {
                return;
            };
            if permit.is_none() {
                refuse(broker, stream, protocol, &options).await;
                return;
            }
            match protocol {
                Protocol::Amqp => {
                    crate::serve_connection_until(broker, stream, options.amqp, amqp_stop).await;
                }
                Protocol::Http => {
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http1().pipeline_flush(true);
                    let service = TowerToHyperService::new(warp::service(routes));
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(error = %e, "http connection ended");
                    }
                }
            }
            drop(permit);
        });
    }
    stop_accepting.cancel();
    amqp_stop.cancel();
    graceful.shutdown().await;
}

async fn accept_loop(
    listener: TcpListener,
    accepted: mpsc::Sender<TcpStream>,
    stop: CancellationToken,
) {
    loop {
        let result = tokio::select! {
            result = listener.accept() => result,
            () = stop.cancelled() => return,
        };
        match result {
            Ok((stream, _)) => {
                if accepted.send(stream).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: wait for connections to close.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits for the connection's first bytes and names its protocol; `None` when the peer closed
/// or stayed silent for `timeout`.
pub async fn sniff(stream: &TcpStream, timeout: Duration) -> Option<Protocol> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 4];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if !starts_like_amqp(&buf[..n]) {
            return Some(Protocol::Http);
        }
        if n == buf.len() {
            return Some(Protocol::Amqp);
        }
        // A prefix of "AMQP" so far: `peek` returns at once while those bytes wait, so give
        // the rest of the header a moment to arrive.
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Turns a connection away over the cap, in its own protocol.
async fn refuse(
    broker: Broker,
    mut stream: TcpStream,
    protocol: Protocol,
    options: &ListenOptions,
) {
    let cap = options.max_connections;
    tracing::warn!(cap, ?protocol, "connection refused: too many connections");
    match protocol {
        Protocol::Amqp => {
            let reason = format!("the broker serves at most {cap} connections");
            let refused = crate::engine::refuse(broker, stream, options.amqp.clone(), &reason);
            if let Err(e) = refused.await {
                tracing::debug!(error = %e, "refused amqp connection ended");
            }
        }
        Protocol::Http => {
            let body = format!(
                "{{\"error\":{{\"code\":\"ServerBusy\",\"message\":\"the broker serves at most {cap} connections\"}}}}"
            );
            let reply = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}
