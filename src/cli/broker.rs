//! `docflow broker`: runs the embedded Service Bus broker standalone, REST and AMQP 1.0 on one
//! port.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerOptions, Entities};
use crate::broker_amqp::{self, AmqpOptions, ListenOptions};
use crate::servicebus::connection::Namespace;
use crate::servicebus::sas::{Rights, SasRule};

/// Options of `docflow broker`.
#[derive(Debug, Clone)]
pub struct BrokerCommand {
    /// Topology file.
    pub config: PathBuf,
    /// Folder of the durable store.
    pub data_dir: PathBuf,
    /// Port on 127.0.0.1: REST and AMQP, told apart by each connection's first bytes.
    pub port: u16,
    /// An extra port (for example 5672) for tools that insist on AMQP's default.
    pub amqp_port: Option<u16>,
    /// Connections served at once, over every port and both protocols.
    pub max_connections: usize,
    /// AMQP: links one session may hold.
    pub max_links_per_session: usize,
    /// AMQP: how long a silent peer is kept.
    pub idle_timeout: std::time::Duration,
    /// Extra SAS policies `NAME=KEY[:Rights]` (Rights: Manage, Send, Listen; default Manage).
    pub sas_rules: Vec<String>,
}

/// Parses `NAME=KEY[:Send,Listen]`.
pub fn parse_sas_rule(text: &str) -> Result<SasRule, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("SAS rule {text:?} is not NAME=KEY[:Rights]"))?;
    let (key, rights) = match rest.rsplit_once(':') {
        Some((key, rights)) => (
            key,
            Rights::parse(rights)
                .ok_or_else(|| format!("unknown rights {rights:?}: use Manage, Send, Listen"))?,
        ),
        None => (rest, Rights::ALL),
    };
    if name.is_empty() || key.is_empty() {
        return Err(format!("SAS rule {text:?} needs a name and a key"));
    }
    Ok(SasRule {
        name: name.into(),
        key: key.into(),
        rights,
    })
}

/// Starts the broker and serves until Ctrl-C or SIGTERM. Returns the exit code.
pub async fn run(command: BrokerCommand, shutdown: CancellationToken) -> u8 {
    let text = match std::fs::read_to_string(&command.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "docflow broker: cannot read {}: {e}",
                command.config.display()
            );
            return super::EXIT_CONFIG;
        }
    };
    let entities = match Entities::parse(&text) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("docflow broker: {}: {e}", command.config.display());
            return super::EXIT_CONFIG;
        }
    };
    let mut options = BrokerOptions::new(&command.data_dir);
    for rule in &command.sas_rules {
        match parse_sas_rule(rule) {
            Ok(rule) => options.sas_rules.push(rule),
            Err(e) => {
                eprintln!("docflow broker: {e}");
                return super::EXIT_CONFIG;
            }
        }
    }
    let broker = match Broker::open(entities, options) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("docflow broker: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let mut listeners = Vec::new();
    for port in std::iter::once(command.port).chain(command.amqp_port) {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("docflow broker: cannot listen on 127.0.0.1:{port}: {e}");
                return super::EXIT_CONFIG;
            }
        }
    }
    let port = listeners[0]
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(command.port);
    println!("{}", Namespace::emulator_connection_string(port));
    tracing::info!(port, amqp_port = ?command.amqp_port, data_dir = %command.data_dir.display(),
        queues = broker.entities().queues().count(), topics = broker.entities().topics().count(),
        "broker listening (REST and AMQP)");
    let defaults = ListenOptions::default();
    let options = ListenOptions {
        max_connections: command.max_connections,
        amqp: AmqpOptions {
            max_links_per_session: command.max_links_per_session,
            idle_timeout: command.idle_timeout,
            ..defaults.amqp.clone()
        },
        ..defaults
    };
    broker_amqp::serve(broker, listeners, options, async move {
        shutdown.cancelled().await
    })
    .await;
    0
}
