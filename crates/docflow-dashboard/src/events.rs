//! `GET /events?view=…`: one server-sent event stream per open page, woken by each new
//! [`Snapshot`](crate::live::Snapshot): `row` events carry a changed document row (Documents),
//! `replace` events a part of the page rendered again (Queues, a document, Dead letters).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use warp::sse::Event;

use crate::Dashboard;
use crate::documents::{DocumentRow, Filter, FilterQuery};
use crate::pages;
use crate::triage::{self, DeadLetterQuery};

/// The stream's query string: the view and that view's own parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    /// `documents`, `document`, `queues`, `dead-letters` or `budget`.
    #[serde(default)]
    pub view: String,
    /// Documents: the filter.
    #[serde(flatten)]
    pub filter: FilterQuery,
    /// A document: its id.
    #[serde(default)]
    pub id: String,
    /// Dead letters: the entity.
    #[serde(default)]
    pub entity: String,
    /// Dead letters: the body search.
    #[serde(default)]
    pub search: String,
}

/// Events the page applies.
type Sender = mpsc::Sender<Event>;

fn replace(target: &str, html: String) -> Event {
    Event::default()
        .event("replace")
        .data(json!({"target": target, "html": html}).to_string())
}

/// Starts the producer of one stream and returns the stream.
pub fn stream(
    dashboard: Arc<Dashboard>,
    query: EventsQuery,
) -> Result<
    impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + Sync + 'static,
    crate::guard::ApiError,
> {
    let (tx, rx) = mpsc::channel::<Event>(64);
    match query.view.as_str() {
        "documents" => {
            let filter = Filter::parse(&query.filter)
                .map_err(|e| crate::guard::ApiError::bad_request(e.to_string()))?;
            tokio::spawn(documents(dashboard, filter, tx));
        }
        "document" => {
            tokio::spawn(document(dashboard, query.id, tx));
        }
        "queues" => {
            tokio::spawn(queues(dashboard, tx));
        }
        "budget" => {
            tokio::spawn(budget(dashboard, tx));
        }
        "dead-letters" => {
            let q = DeadLetterQuery {
                entity: query.entity,
                search: query.search,
            };
            tokio::spawn(dead_letters(dashboard, q, tx));
        }
        other => {
            return Err(crate::guard::ApiError::bad_request(format!(
                "view must be documents, document, queues, dead-letters or budget (got {other:?})"
            )));
        }
    }
    Ok(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok(e), rx))
    }))
}

async fn documents(dashboard: Arc<Dashboard>, filter: Filter, tx: Sender) {
    let live = &dashboard.live;
    let mut snapshots = live.subscribe();
    let mut sent: HashMap<String, DocumentRow> = HashMap::new();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let now = Utc::now();
        // Oldest first, so that the page, adding new rows on top, keeps newest first.
        for row in snapshot.rows.iter().rev() {
            if sent.get(&row.id) == Some(row) {
                continue;
            }
            let text = if filter.searches_text() {
                live.text_of(&row.id).await
            } else {
                None
            };
            if !filter.matches(row, text.as_deref(), now) {
                continue;
            }
            let html = pages::documents::row_html(row, now).into_string();
            let event = Event::default()
                .event("row")
                .data(json!({"id": row.id, "html": html}).to_string());
            if tx.send(event).await.is_err() {
                return;
            }
            sent.insert(row.id.clone(), row.clone());
        }
        if snapshots.changed().await.is_err() || tx.is_closed() {
            return;
        }
    }
}

async fn document(dashboard: Arc<Dashboard>, id: String, tx: Sender) {
    let mut snapshots = dashboard.live.subscribe();
    let mut last = None;
    loop {
        // Re-rendered when the state record or the spans of its trace change.
        if let Ok(Some(state)) = dashboard.live.sources().store.state(&id).await {
            let spans = state
                .trace_id
                .as_deref()
                .and_then(crate::traces::TraceId::parse)
                .map_or(0, |t| dashboard.traces.received(t));
            let key = (state, spans);
            if last.as_ref() != Some(&key) {
                let state = &key.0;
                let results = crate::routes::results(&dashboard, state).await;
                let waterfall = crate::waterfall::of_document(&dashboard.traces, state);
                let html = pages::document::detail(state, &results, waterfall.as_ref(), Utc::now())
                    .into_string();
                if tx.send(replace("document", html)).await.is_err() {
                    return;
                }
                last = Some(key);
            }
        }
        if snapshots.changed().await.is_err() || tx.is_closed() {
            return;
        }
    }
}

async fn queues(dashboard: Arc<Dashboard>, tx: Sender) {
    let mut snapshots = dashboard.live.subscribe();
    let mut last_version = None;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let key: Vec<_> = snapshot.queues.iter().map(|q| q.sample.at).collect();
        if !snapshot.queues.is_empty() && last_version.as_ref() != Some(&key) {
            let html = pages::queues::rows_html(&snapshot.queues, Utc::now()).into_string();
            if tx.send(replace("queue-rows", html)).await.is_err() {
                return;
            }
            last_version = Some(key);
        }
        if snapshots.changed().await.is_err() || tx.is_closed() {
            return;
        }
    }
}

/// The LLM budget: sampled with each new sample of the queues (every 2 s), sent when changed.
async fn budget(dashboard: Arc<Dashboard>, tx: Sender) {
    let mut snapshots = dashboard.live.subscribe();
    let mut last_queues = None;
    let mut last_html = String::new();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let key: Vec<_> = snapshot.queues.iter().map(|q| q.sample.at).collect();
        if !snapshot.queues.is_empty() && last_queues.as_ref() != Some(&key) {
            let view = crate::budget::view(&dashboard, &snapshot).await;
            let html = pages::budget::live_html(&view).into_string();
            if html != last_html {
                if tx.send(replace("budget", html.clone())).await.is_err() {
                    return;
                }
                last_html = html;
            }
            last_queues = Some(key);
        }
        if snapshots.changed().await.is_err() || tx.is_closed() {
            return;
        }
    }
}

async fn dead_letters(dashboard: Arc<Dashboard>, query: DeadLetterQuery, tx: Sender) {
    let mut snapshots = dashboard.live.subscribe();
    let mut last: Option<Vec<(String, u64)>> = None;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let counts: Vec<(String, u64)> = snapshot
            .queues
            .iter()
            .map(|q| (q.entity.path.clone(), q.sample.dead_lettered))
            .collect();
        if !counts.is_empty() && last.as_ref() != Some(&counts) {
            if last.is_some() {
                let known: Vec<String> = counts.iter().map(|(p, _)| p.clone()).collect();
                let with: Vec<String> = counts
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(p, _)| p.clone())
                    .collect();
                let sources = dashboard.live.sources();
                if let Ok(loaded) = triage::load(sources, &query, &known, &with).await {
                    let html = pages::dead_letters::groups_html(&loaded, Utc::now()).into_string();
                    if tx.send(replace("dead-letter-groups", html)).await.is_err() {
                        return;
                    }
                }
            }
            last = Some(counts);
        }
        if snapshots.changed().await.is_err() || tx.is_closed() {
            return;
        }
    }
}
