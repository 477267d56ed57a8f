//! `docflow bench broker`: durable throughput and receive latency of the embedded broker,
//! measured on its one port through its REST API with docflow's own client, as an application
//! would use it, and over AMQP with a Rust AMQP client as Microsoft's SDKs use it
//! (`bench_amqp`), each AMQP figure printed with its ratio to the REST one.

use std::time::{Duration, Instant};

use super::bench_amqp;
use crate::broker::{Broker, BrokerOptions, Entities};
use crate::broker_amqp::{self, ListenOptions};
use crate::servicebus::message::Message;
use crate::servicebus::{Namespace, ServiceBusClient, ServiceBusClientOptions};

/// Options of the broker benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerBench {
    /// Messages per throughput run.
    #[arg(long, default_value_t = 2_000)]
    pub messages: usize,
    /// Receives timed per backlog.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Backlogs to time receives at.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    pub backlogs: Vec<usize>,
}

const TOPOLOGY: &str = r#"{"UserConfig": {"Namespaces": [{"Name": "bench", "Queues": [
  {"Name": "throughput", "Properties": {"LockDuration": "PT1M", "MaxDeliveryCount": 10}},
  {"Name": "latency", "Properties": {"LockDuration": "PT1M", "MaxDeliveryCount": 10}}]}]}}"#;

/// Runs the benchmark and prints its figures; returns the exit code.
pub async fn run(bench: BrokerBench) -> u8 {
    super::bench_stack::exit_code("broker", measure(&bench).await)
}

async fn measure(bench: &BrokerBench) -> Result<(), String> {
    let dir = tempfile_dir()?;
    let entities = Entities::parse(TOPOLOGY).map_err(|e| e.to_string())?;
    let broker = Broker::open(entities, BrokerOptions::new(&dir)).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(broker_amqp::serve(
        broker.clone(),
        vec![listener],
        ListenOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let namespace = Namespace::from_connection_string(&Namespace::emulator_connection_string(port))
        .map_err(|e| e.to_string())?;
    let client = ServiceBusClient::new(namespace, ServiceBusClientOptions::default())
        .map_err(|e| e.to_string())?;

    let backlogs: Vec<String> = bench.backlogs.iter().map(usize::to_string).collect();
    println!(
        "docflow bench broker --messages {} --samples {} --backlogs {}",
        bench.messages,
        bench.samples,
        backlogs.join(",")
    );
    println!(
        "durable store (SQLite WAL, synchronous=FULL) in {}",
        dir.display()
    );
    println!(
        "REST: each operation a call over loopback, answered after its transaction is durable"
    );
    println!(
        "AMQP (fe2o3-amqp): links kept open; {} sends in flight per sender, each awaited to `accepted` (durable); receiver credit {}; completed by disposition",
        bench_amqp::SEND_WINDOW,
        bench_amqp::RECEIVE_CREDIT
    );
    for clients in [1usize, 8] {
        let (elapsed, done) = throughput(&client, clients, bench.messages).await?;
        let rest = print_throughput("REST", clients, elapsed, done);
        let (elapsed, done) =
            bench_amqp::throughput(&broker, port, "throughput", clients, bench.messages).await?;
        let amqp = print_throughput("AMQP", clients, elapsed, done);
        println!(
            "throughput, {clients} client(s): AMQP/REST {:.2}x",
            amqp / rest
        );
    }
    for &backlog in &bench.backlogs {
        fill(&broker, backlog).await?;
        let rest = summary(latency(&broker, &client, bench.samples).await?);
        print_latency("REST", backlog, rest, bench.samples);
        let amqp = summary(bench_amqp::latency(&broker, port, "latency", bench.samples).await?);
        print_latency("AMQP", backlog, amqp, bench.samples);
        println!(
            "receive latency, {backlog} messages backlogged: AMQP/REST p50 {:.2}x, p99 {:.2}x, mean {:.2}x",
            ratio(amqp.0, rest.0),
            ratio(amqp.1, rest.1),
            ratio(amqp.2, rest.2)
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Prints one throughput figure; returns messages per second.
fn print_throughput(protocol: &str, clients: usize, elapsed: Duration, done: usize) -> f64 {
    let rate = done as f64 / elapsed.as_secs_f64();
    println!(
        "throughput, {clients} client(s), {protocol}: {done} send+receive+complete in {:.2} s = {rate:.0} messages/s ({:.0} operations/s)",
        elapsed.as_secs_f64(),
        3.0 * rate
    );
    rate
}

fn print_latency(
    protocol: &str,
    backlog: usize,
    (p50, p99, mean): (Duration, Duration, Duration),
    samples: usize,
) {
    println!(
        "receive latency, {backlog} messages backlogged, {protocol}: p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms (peek-lock, {samples} samples)",
        ms(p50),
        ms(p99),
        ms(mean)
    );
}

/// p50, p99 and mean of `timings`.
fn summary(mut timings: Vec<Duration>) -> (Duration, Duration, Duration) {
    if timings.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    timings.sort();
    let mean = timings.iter().sum::<Duration>() / timings.len() as u32;
    let at = |q: f64| timings[((timings.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), mean)
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("docflow-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// `clients` concurrent loops, each sending then receiving and completing its share.
async fn throughput(
    client: &ServiceBusClient,
    clients: usize,
    messages: usize,
) -> Result<(Duration, usize), String> {
    let per_client = messages / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            for i in 0..per_client {
                client
                    .send_message(
                        "throughput",
                        &Message::new(format!("{{\"client\":{c},\"i\":{i}}}")),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(m) = client
                    .peek_lock("throughput", Duration::from_secs(5))
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    return Err("a sent message was not received".to_string());
                };
                client
                    .complete_message(&m)
                    .await
                    .map_err(|e| e.to_string())?;
                done += 1;
            }
            Ok::<usize, String>(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok((started.elapsed(), total))
}

/// Empties the latency queue and fills it with `backlog` messages.
async fn fill(broker: &Broker, backlog: usize) -> Result<(), String> {
    broker
        .purge("latency", false)
        .await
        .map_err(|e| e.to_string())?;
    let mut filled = 0;
    while filled < backlog {
        let n = (backlog - filled).min(2_000);
        let batch: Vec<Message> = (0..n)
            .map(|i| Message::new(format!("{{\"backlog\":{}}}", filled + i)))
            .collect();
        broker
            .send("latency", batch)
            .await
            .map_err(|e| e.to_string())?;
        filled += n;
    }
    Ok(())
}

/// Times peek-lock receives on the filled latency queue (each completed afterwards, and
/// replaced, so the backlog stays constant).
async fn latency(
    broker: &Broker,
    client: &ServiceBusClient,
    samples: usize,
) -> Result<Vec<Duration>, String> {
    let mut timings = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let m = client
            .peek_lock("latency", Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the backlog ran dry")?;
        timings.push(started.elapsed());
        client
            .complete_message(&m)
            .await
            .map_err(|e| e.to_string())?;
        broker
            .send("latency", vec![Message::new("refill")])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(timings)
}
