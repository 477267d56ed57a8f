//! The ATOM management API's reads (`servicebus.md` §2.11), answered as Azure answers them:
//! feeds of the queues, the topics and a topic's subscriptions (`$skip`/`$top`, a `next` link
//! while more remain), and one queue's, topic's or subscription's entry, settings from the
//! topology and `CountDetails` from the store. A read of an entity that does not exist is
//! `200` with a feed that holds no entry, as on Azure.

mod xml;

use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use self::xml::{Atom, Described};
use super::Request;
use super::reply::{Failure, set_header};
use crate::Broker;
use crate::core::Runtime;
use crate::entities::{Target, TopicDef};
use docflow_servicebus::admin::PAGE_SIZE;

/// Content type of a feed.
pub const FEED_CONTENT_TYPE: &str = "application/atom+xml;type=feed;charset=utf-8";
/// Content type of an entry.
pub const ENTRY_CONTENT_TYPE: &str = "application/atom+xml;type=entry;charset=utf-8";

/// Answers a management GET of `segments` (decoded, any case).
pub(super) async fn handle(
    broker: &Broker,
    request: &Request,
    segments: &[String],
) -> Result<Response, Failure> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let atom = Atom::new(broker, request);
    let entities = broker.entities();
    match lower.as_slice() {
        ["$resources", "queues"] => {
            let queues: Vec<_> = entities.queues().collect();
            let (skip, top) = page(request, queues.len())?;
            let page = window(&queues, skip, top);
            let paths = page.iter().map(|q| q.name.clone()).collect();
            let runtimes = broker.runtimes(paths).await?;
            let entries = page
                .iter()
                .zip(&runtimes)
                .map(|(q, r)| Described::Queue(q, r))
                .collect();
            return reply(
                atom.feed(
                    "Queues",
                    "$Resources/Queues",
                    (skip, top),
                    queues.len(),
                    entries,
                ),
                FEED_CONTENT_TYPE,
            );
        }
        ["$resources", "topics"] => {
            let topics: Vec<_> = entities.topics().collect();
            let (skip, top) = page(request, topics.len())?;
            let page = window(&topics, skip, top);
            let runtimes = topic_runtimes(broker, page).await?;
            let entries = page
                .iter()
                .zip(&runtimes)
                .map(|(t, r)| Described::Topic(t, r))
                .collect();
            return reply(
                atom.feed(
                    "Topics",
                    "$Resources/Topics",
                    (skip, top),
                    topics.len(),
                    entries,
                ),
                FEED_CONTENT_TYPE,
            );
        }
        [.., "subscriptions"] if segments.len() >= 2 => {
            let topic_path = segments[..segments.len() - 1].join("/");
            if let Some(Target::Topic(topic)) = entities.resolve(&topic_path) {
                let subs = &topic.subscriptions;
                let (skip, top) = page(request, subs.len())?;
                let page = window(subs, skip, top);
                let paths = page
                    .iter()
                    .map(|s| Target::Subscription(topic, s).display())
                    .collect();
                let runtimes = broker.runtimes(paths).await?;
                let entries = page
                    .iter()
                    .zip(&runtimes)
                    .map(|(s, r)| Described::Subscription(topic, s, r))
                    .collect();
                let listing = format!("{}/Subscriptions", topic.name);
                return reply(
                    atom.feed("Subscriptions", &listing, (skip, top), subs.len(), entries),
                    FEED_CONTENT_TYPE,
                );
            }
        }
        _ => {}
    }
    let described = match entities.resolve(&segments.join("/")) {
        None => return reply(atom.not_found(), FEED_CONTENT_TYPE),
        Some(Target::Queue(q)) => {
            let runtimes = broker.runtimes(vec![q.name.clone()]).await?;
            atom.entry(&Described::Queue(q, &runtimes[0]))
        }
        Some(target @ Target::Subscription(topic, sub)) => {
            let runtimes = broker.runtimes(vec![target.display()]).await?;
            atom.entry(&Described::Subscription(topic, sub, &runtimes[0]))
        }
        Some(Target::Topic(topic)) => {
            let runtimes = topic_runtimes(broker, &[topic]).await?;
            atom.entry(&Described::Topic(topic, &runtimes[0]))
        }
    };
    reply(described, ENTRY_CONTENT_TYPE)
}

/// `$skip` (default 0, at most `total`) and `$top` (default [`PAGE_SIZE`]) as whole numbers.
fn page(request: &Request, total: usize) -> Result<(usize, usize), Failure> {
    let number = |name: &str, default: usize| match request.query.get(name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map_err(|_| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a whole number, not {text:?}"),
            )
        }),
    };
    Ok((number("$skip", 0)?.min(total), number("$top", PAGE_SIZE)?))
}

/// The `top` items from `skip` on (`skip` is at most the number of items).
fn window<T>(items: &[T], skip: usize, top: usize) -> &[T] {
    &items[skip..skip.saturating_add(top).min(items.len())]
}

/// A topic's figures: what its subscriptions hold, summed (its own counts are all zero: the
/// broker stores a topic's messages in its subscriptions only).
async fn topic_runtimes(broker: &Broker, topics: &[&TopicDef]) -> Result<Vec<Runtime>, Failure> {
    let paths = topics
        .iter()
        .flat_map(|t| {
            t.subscriptions
                .iter()
                .map(|s| Target::Subscription(t, s).display())
        })
        .collect();
    let mut subscriptions = broker.runtimes(paths).await?.into_iter();
    Ok(topics
        .iter()
        .map(|t| {
            let mut runtime = Runtime::default();
            for sub in subscriptions.by_ref().take(t.subscriptions.len()) {
                runtime.size_in_bytes += sub.size_in_bytes;
                runtime.last_enqueued_at = runtime.last_enqueued_at.max(sub.last_enqueued_at);
            }
            runtime
        })
        .collect())
}

fn reply(body: std::io::Result<Vec<u8>>, content_type: &str) -> Result<Response, Failure> {
    let body = body.map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing the Atom answer failed: {e}"),
        )
    })?;
    let mut response = warp::reply::with_status(body, StatusCode::OK).into_response();
    set_header(&mut response, "content-type", content_type);
    Ok(response)
}

#[cfg(test)]
mod tests;
