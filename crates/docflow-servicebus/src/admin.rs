//! Reads of Service Bus's ATOM management API (`servicebus.md` §2.11): the runtime figures of
//! queues and subscriptions (active, dead-lettered, scheduled and transfer counts), which Azure
//! gives only there, and the names of topics. Against Azure or the embedded broker alike, signed
//! as the client signs everything else (a SAS needs the Manage right for these reads).
//!
//! Azure answers a read of an entity that does not exist with `200` and a feed that holds no
//! entry; that reads as [`ClientError::EntityNotFound`].

mod atom;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;

pub use self::atom::AtomError;
use self::atom::{Document, Entry};
use crate::client::{ClientError, PathKind, ServiceBusClient};

/// The management API version asked for.
pub const API_VERSION: &str = "2021-05";
/// Entities per page: what Microsoft's SDKs ask for, and the most Azure returns.
pub const PAGE_SIZE: usize = 100;
/// Most pages read from one listing: a Premium namespace holds at most 10,000 queues or
/// topics (and a topic at most 2,000 subscriptions), so more means the server ignores `$skip`.
pub const MAX_PAGES: usize = 10_000 / PAGE_SIZE + 1;
/// Namespace of the Atom elements (`feed`, `entry`, `title`, `content`).
pub const ATOM_NAMESPACE: &str = "http://www.w3.org/2005/Atom";
/// Namespace of the entity descriptions (`QueueDescription` and its settings).
pub const CONNECT_NAMESPACE: &str =
    "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect";
/// Namespace of `CountDetails`' children (`ActiveMessageCount`, …), which Azure prefixes
/// (`d2p1:`, `d3p1:`).
pub const COUNT_DETAILS_NAMESPACE: &str =
    "http://schemas.microsoft.com/netservices/2011/06/servicebus";
/// The XML Schema instance namespace Azure binds to `i` on every description.
pub const SCHEMA_INSTANCE_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One queue's or subscription's runtime figures, as the management API returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRuntime {
    /// `queue`, or `topic/subscriptions/sub`.
    pub path: String,
    /// Whether it is a subscription.
    pub subscription: bool,
    /// The entity its messages are forwarded to (the name from Azure's `sb://host/name`).
    pub forward_to: Option<String>,
    /// `Active`, `Disabled`, `SendDisabled`, `ReceiveDisabled`, …
    pub status: Option<String>,
    /// Messages that can be received (locked ones included).
    pub active: u64,
    /// Messages in its dead-letter queue.
    pub dead_lettered: u64,
    /// Messages waiting for their scheduled time.
    pub scheduled: u64,
    /// Messages waiting to be forwarded.
    pub transfer: u64,
    /// Messages that could not be forwarded.
    pub transfer_dead_lettered: u64,
    /// All its messages, as the service counts them (deferred ones included).
    pub message_count: u64,
    /// Bytes its messages take (Azure reports none for subscriptions: 0).
    pub size_in_bytes: u64,
    /// Deliveries before a message is dead-lettered.
    pub max_delivery_count: Option<u32>,
    /// How long a peek-lock lasts.
    pub lock_duration: Option<Duration>,
    /// When a message was last sent or received (`None`: never, as far as the service says).
    pub accessed_at: Option<DateTime<Utc>>,
    /// When its settings last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl ServiceBusClient {
    /// Every queue's runtime figures (`GET /$Resources/Queues`, page by page).
    pub async fn queue_runtimes(&self) -> Result<Vec<EntityRuntime>, ClientError> {
        let resource = "$Resources/Queues";
        let mut runtimes = Vec::new();
        for entry in self.list(resource).await? {
            let path = entry.name().to_string();
            runtimes.push(entry.into_runtime(path, resource)?);
        }
        Ok(runtimes)
    }

    /// Every topic's name (`GET /$Resources/Topics`, page by page).
    pub async fn topic_names(&self) -> Result<Vec<String>, ClientError> {
        let entries = self.list("$Resources/Topics").await?;
        Ok(entries.iter().map(|e| e.name().to_string()).collect())
    }

    /// The runtime figures of every subscription of `topic` (`GET /{topic}/Subscriptions`,
    /// page by page); paths are `topic/subscriptions/sub`.
    pub async fn subscription_runtimes(
        &self,
        topic: &str,
    ) -> Result<Vec<EntityRuntime>, ClientError> {
        let topic = topic.trim_matches('/');
        let resource = format!("{topic}/Subscriptions");
        let mut runtimes = Vec::new();
        for entry in self.list(&resource).await? {
            let path = format!("{topic}/subscriptions/{}", entry.name());
            runtimes.push(entry.into_runtime(path, &resource)?);
        }
        Ok(runtimes)
    }

    /// One queue's (`queue`) or subscription's (`topic/subscriptions/sub`, any case) runtime
    /// figures; [`ClientError::EntityNotFound`] when there is no such entity.
    pub async fn entity_runtime(&self, path: &str) -> Result<EntityRuntime, ClientError> {
        let path = path.trim_matches('/');
        let entry = self
            .read(path, "")
            .await?
            .into_entries()
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::EntityNotFound {
                entity: path.to_string(),
                detail: "the management API answered a feed with no entry".into(),
            })?;
        let named = match (entry.is_subscription(), split_subscription(path)) {
            (true, Some(topic)) => format!("{topic}/subscriptions/{}", entry.name()),
            _ => path.to_string(),
        };
        Ok(entry.into_runtime(named, path)?)
    }

    /// Every entry of a listing, `PAGE_SIZE` at a time until a page comes back short.
    async fn list(&self, resource: &str) -> Result<Vec<Entry>, ClientError> {
        let mut entries = Vec::new();
        for page in 0..MAX_PAGES {
            let query = format!("$skip={}&$top={PAGE_SIZE}&", page * PAGE_SIZE);
            let got = self.read(resource, &query).await?.into_entries();
            let short = got.len() < PAGE_SIZE;
            entries.extend(got);
            if short {
                return Ok(entries);
            }
        }
        Err(AtomError {
            resource: resource.to_string(),
            problem: format!(
                "more than {} pages of {PAGE_SIZE}: the service seems to ignore $skip",
                MAX_PAGES
            ),
        }
        .into())
    }

    /// `GET /{resource}?{query}api-version=…`, read as an Atom document.
    async fn read(&self, resource: &str, query: &str) -> Result<Document, ClientError> {
        let url = self.url(&format!("{resource}?{query}api-version={API_VERSION}"));
        let timeout = self.request_timeout();
        let response = self
            .execute(
                Method::GET,
                &url,
                PathKind::Entity,
                resource,
                timeout,
                |r| r.header("accept", "application/atom+xml"),
            )
            .await?;
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Unavailable {
                attempts: 1,
                detail: format!("reading the management API's answer for {resource} failed: {e}"),
            })?;
        Ok(Document::parse(&text, &format!("{resource}?{query}"))?)
    }
}

/// The topic of `topic/subscriptions/sub` (any case), if that is what `path` is.
fn split_subscription(path: &str) -> Option<&str> {
    let lower = path.to_ascii_lowercase();
    let at = lower.rfind("/subscriptions/")?;
    Some(&path[..at])
}
