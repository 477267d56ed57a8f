//! Serves AMQP on 127.0.0.1 for trying Microsoft's SDKs by hand: a broker with queue `q` in
//! a temporary folder, the emulator's well-known key. Usage: `serve [PORT]` (default 5672).

use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_broker_amqp::{AmqpOptions, serve_connection};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let port: u16 = std::env::args().nth(1).map_or(Ok(5672), |p| p.parse())?;
    let dir = tempfile::tempdir()?;
    let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "q", "Properties": {}}], "Topics": []}]}});
    let broker = Broker::open(
        Entities::from_json(&topology)?,
        BrokerOptions::new(dir.path()),
    )?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("serving AMQP on 127.0.0.1:{port}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve_connection(
            broker.clone(),
            stream,
            AmqpOptions::default(),
        ));
    }
}
