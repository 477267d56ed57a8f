//! Many connections at once: 500 AMQP connections, each through SASL, `open`, `begin` and a
//! CBS put-token, all held open together, then each closed in good order.
//!
//! Each connection costs this process two file descriptors (the client's socket and the
//! broker's), so the test needs a soft open-file limit of about 1,100 with the broker's own
//! files. On Linux it reads the limit from `/proc/self/limits` and fails with the fix
//! (`ulimit -n 4096`) rather than with a confusing connect error; it does not raise the limit
//! itself, which would take `setrlimit` and so unsafe code or a new dependency.

mod common;

use std::time::Duration;

use common::{Client, EMULATOR_KEY, start, status, token};
use docflow_amqp::performative::{Close, Flow};
use docflow_amqp::{Performative, Value};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

/// Connections held open at once.
const CONNECTIONS: usize = 500;
/// Descriptors the test needs besides two per connection (the broker's files, the runtime).
const SPARE_FILES: u64 = 100;

/// The soft limit on open files, where the platform tells it (Linux's `/proc`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    // "unlimited" parses as None: no limit to check.
    soft.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_connections_are_served_and_closed() {
    let needed = 2 * CONNECTIONS as u64 + SPARE_FILES;
    if let Some(limit) = open_file_limit() {
        assert!(
            limit >= needed,
            "the soft open-file limit is {limit}, this test needs {needed} descriptors for \
             {CONNECTIONS} connections (both ends in this process): raise it with `ulimit -n 4096`"
        );
    }
    let server = start().await;
    let port = server.port;
    let audience = format!("sb://127.0.0.1:{port}/q");
    let token = token(&audience, EMULATOR_KEY);

    // Every connection opens, begins and puts a token, concurrently.
    let mut opening = JoinSet::new();
    for i in 0..CONNECTIONS {
        let (audience, token) = (audience.clone(), token.clone());
        opening.spawn(async move {
            let mechanism = if i % 2 == 0 { "ANONYMOUS" } else { "MSSBCBS" };
            let mut client = Client::connect(port, Some(mechanism)).await;
            let id = Value::String(format!("token-{i}"));
            let reply = client.put_token(&token, &audience, id.clone()).await;
            assert_eq!(status(&reply), Value::Int(200));
            assert_eq!(reply.properties.unwrap().correlation_id, Some(id));
            client
        });
    }
    let mut clients = Vec::with_capacity(CONNECTIONS);
    while let Some(client) = opening.join_next().await {
        clients.push(client.expect("a connection was served"));
    }
    assert_eq!(clients.len(), CONNECTIONS);

    // All are open at once: each still answers a session flow with echo.
    let mut checking = JoinSet::new();
    for mut client in clients {
        checking.spawn(async move {
            let echo = Flow {
                next_incoming_id: Some(1),
                incoming_window: 5000,
                next_outgoing_id: 1,
                outgoing_window: 5000,
                echo: true,
                ..Flow::default()
            };
            client.send(0, echo.into(), &[]).await;
            loop {
                match client.recv().await.1 {
                    Performative::Flow(f) if f.handle.is_none() => break,
                    // Credit top-ups on the $cbs links may come first.
                    Performative::Flow(_) => {}
                    other => panic!("expected the session flow, got {other:?}"),
                }
            }
            client
        });
    }
    let mut clients = Vec::with_capacity(CONNECTIONS);
    while let Some(client) = checking.join_next().await {
        clients.push(client.expect("an open connection answered"));
    }

    // Then each closes in good order: close answered, socket ended.
    let mut closing = JoinSet::new();
    for mut client in clients {
        closing.spawn(async move {
            client.send(0, Close::default().into(), &[]).await;
            let Performative::Close(close) = client.recv().await.1 else {
                panic!("expected close");
            };
            assert_eq!(close.error, None);
            let mut rest = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(10), client.stream.read(&mut rest))
                .await
                .expect("the broker ended the socket after close");
            assert!(matches!(read, Ok(0)), "{read:?}");
        });
    }
    let mut closed = 0;
    while let Some(done) = closing.join_next().await {
        done.expect("a connection closed cleanly");
        closed += 1;
    }
    assert_eq!(closed, CONNECTIONS);
}
