//! The routes. Every request's `Host` is checked ([`crate::guard`]); actions also need the
//! token and their own `Origin`. Rejections and errors end as JSON.

use std::convert::Infallible;
use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::Dashboard;
use crate::documents::{Filter as DocumentFilter, FilterQuery};
use crate::events::{self, EventsQuery};
use crate::guard::{ApiError, TOKEN_HEADER};
use crate::pages::{self, Nav};
use crate::triage::{self, ActionRequest, DeadLetterQuery};
use docflow_app::dead_letters::{DeadLetterAction, Selection};
use docflow_app::pipeline::state::DocumentState;

/// The stylesheet.
const CSS: &str = include_str!("../assets/dashboard.css");
/// The script: live updates and actions.
const JS: &str = include_str!("../assets/dashboard.js");
/// Largest action body accepted.
const MAX_ACTION_BYTES: u64 = 16 * 1024;
/// Most characters of a task result shown on a document's page.
const MAX_RESULT_CHARS: usize = 4_000;

#[derive(Debug)]
struct Refused(ApiError);
impl warp::reject::Reject for Refused {}

fn refuse(e: ApiError) -> Rejection {
    warp::reject::custom(Refused(e))
}

/// Every route of `dashboard`.
pub fn routes(
    dashboard: Arc<Dashboard>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with = {
        let d = dashboard.clone();
        warp::any().map(move || d.clone())
    };
    let host_ok = {
        let d = dashboard.clone();
        warp::header::optional::<String>("host")
            .and_then(move |host: Option<String>| {
                let d = d.clone();
                async move { d.guard.check_host(host.as_deref()).map_err(refuse) }
            })
            .untuple_one()
    };
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();

    // GET /
    let documents = warp::path::end()
        .and(warp::get())
        .and(with.clone())
        .and(warp::query::<FilterQuery>())
        .and(raw_query)
        .then(documents_page);
    // GET /documents/{id}
    let document = warp::path!("documents" / String)
        .and(warp::get())
        .and(with.clone())
        .then(document_page);
    // GET /queues
    let queues = warp::path!("queues")
        .and(warp::get())
        .and(with.clone())
        .then(queues_page);
    // GET /dead-letters
    let dead_letters = warp::path!("dead-letters")
        .and(warp::get())
        .and(with.clone())
        .and(warp::query::<DeadLetterQuery>())
        .and(raw_query)
        .then(dead_letters_page);
    // GET /dead-letters/message?entity=…&seq=…
    let message = warp::path!("dead-letters" / "message")
        .and(warp::get())
        .and(with.clone())
        .and(warp::query::<MessageQuery>())
        .then(message_page);
    // GET /budget
    let budget = warp::path!("budget")
        .and(warp::get())
        .and(with.clone())
        .then(budget_page);
    // GET /events?view=…
    let events = warp::path!("events")
        .and(warp::get())
        .and(with.clone())
        .and(warp::query::<EventsQuery>())
        .map(
            |d: Arc<Dashboard>, q: EventsQuery| match events::stream(d, q) {
                Ok(stream) => {
                    warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
                }
                Err(e) => e.into_response(),
            },
        );
    // POST /api/dead-letters/{resubmit|discard}
    let action = warp::path!("api" / "dead-letters" / String)
        .and(warp::post())
        .and(with.clone())
        .and(warp::header::optional::<String>(TOKEN_HEADER))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::body::content_length_limit(MAX_ACTION_BYTES))
        .and(warp::body::bytes())
        .then(action);
    // GET /metrics
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with.clone())
        .then(metrics_text);
    // POST /v1/traces (OTLP/JSON from the handler)
    let traces = warp::path!("v1" / "traces")
        .and(warp::post())
        .and(with.clone())
        .and(warp::addr::remote())
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::content_length_limit(
            crate::traces::MAX_BODY_BYTES,
        ))
        .and(warp::body::bytes())
        .map(crate::traces::ingest);
    // GET /assets/…
    let css = warp::path!("assets" / "dashboard.css")
        .map(|| warp::reply::with_header(CSS, "content-type", "text/css; charset=utf-8"));
    let js = warp::path!("assets" / "dashboard.js")
        .map(|| warp::reply::with_header(JS, "content-type", "text/javascript; charset=utf-8"));

    host_ok
        .and(
            documents
                .or(document)
                .unify()
                .or(queues)
                .unify()
                .or(dead_letters)
                .unify()
                .or(message)
                .unify()
                .or(events)
                .unify()
                .or(action)
                .unify()
                .or(metrics)
                .unify()
                .or(traces)
                .unify()
                .or(budget)
                .unify()
                .or(css.map(Reply::into_response))
                .unify()
                .or(js.map(Reply::into_response))
                .unify(),
        )
        .recover(recover)
        .unify()
}

async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(Refused(e)) = rejection.find::<Refused>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found("no such page")
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("bad query string: {e}"))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooLarge",
            format!("an action's body is at most {MAX_ACTION_BYTES} bytes"),
        )
    } else {
        ApiError::bad_request(format!("{rejection:?}"))
    };
    Ok(error.into_response())
}

fn html(markup: maud::Markup) -> Response {
    warp::reply::html(markup.into_string()).into_response()
}

fn live_url(view: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/events?view={view}")
    } else {
        format!("/events?view={view}&{query}")
    }
}

async fn documents_page(d: Arc<Dashboard>, query: FilterQuery, raw: String) -> Response {
    let filter = match DocumentFilter::parse(&query) {
        Ok(f) => f,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let snapshot = d.live.current(false).await;
    let now = Utc::now();
    let mut rows = Vec::new();
    for row in &snapshot.rows {
        let text = if filter.searches_text() {
            d.live.text_of(&row.id).await
        } else {
            None
        };
        if filter.matches(row, text.as_deref(), now) {
            rows.push(row);
        }
    }
    let body = pages::documents::body(&filter, &raw, &rows, now);
    html(pages::page(
        "Documents",
        Nav::Documents,
        d.guard.page_token(),
        Some(&live_url("documents", &raw)),
        snapshot.problem.as_deref(),
        body,
    ))
}

/// The stored results of a document's succeeded tasks, clipped.
pub(crate) async fn results(
    d: &Dashboard,
    state: &DocumentState,
) -> Vec<pages::document::ResultPreview> {
    let blobs = d.live.sources().store.blobs();
    let mut out = Vec::new();
    for (kind, task) in &state.tasks {
        let Some(r) = &task.result else { continue };
        let Ok(blob) = blobs.get(&r.container, &r.blob).await else {
            continue;
        };
        // The task's output (a stored result also repeats ids and usage, shown above).
        let text = serde_json::from_slice::<serde_json::Value>(&blob.data)
            .ok()
            .map(|v| v.get("output").cloned().unwrap_or(v))
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(&blob.data).into_owned());
        out.push(pages::document::ResultPreview {
            kind: kind.clone(),
            json: docflow_app::dead_letters::clip(&text, MAX_RESULT_CHARS),
        });
    }
    out
}

async fn document_page(id: String, d: Arc<Dashboard>) -> Response {
    let id = docflow_servicebus::http_url::path_segments(&id).join("/");
    let state = match d.live.sources().store.state(&id).await {
        Ok(Some(state)) => state,
        Ok(None) => return ApiError::not_found(format!("no document {id:?}")).into_response(),
        Err(e) => {
            return ApiError::new(StatusCode::BAD_GATEWAY, "StoreFailed", e.to_string())
                .into_response();
        }
    };
    let results = results(&d, &state).await;
    let waterfall = crate::waterfall::of_document(&d.traces, &state);
    let body = pages::document::body(&state, &results, waterfall.as_ref(), Utc::now());
    let live = format!("/events?view=document&id={}", pages::encode(&id));
    html(pages::page(
        &format!("Document {id}"),
        Nav::Documents,
        d.guard.page_token(),
        Some(&live),
        None,
        body,
    ))
}

async fn queues_page(d: Arc<Dashboard>) -> Response {
    let snapshot = d.live.current(true).await;
    let body = pages::queues::body(&snapshot.queues, Utc::now());
    html(pages::page(
        "Queues",
        Nav::Queues,
        d.guard.page_token(),
        Some("/events?view=queues"),
        snapshot.problem.as_deref(),
        body,
    ))
}

async fn dead_letters_page(d: Arc<Dashboard>, query: DeadLetterQuery, raw: String) -> Response {
    let snapshot = d.live.current(true).await;
    let with: Vec<String> = snapshot
        .queues
        .iter()
        .filter(|q| q.sample.dead_lettered > 0)
        .map(|q| q.entity.path.clone())
        .collect();
    let entities: Vec<String> = snapshot
        .queues
        .iter()
        .map(|q| q.entity.path.clone())
        .collect();
    let loaded = match triage::load(d.live.sources(), &query, &entities, &with).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let body = pages::dead_letters::body(&query, &entities, &loaded, Utc::now());
    html(pages::page(
        "Dead letters",
        Nav::DeadLetters,
        d.guard.page_token(),
        Some(&live_url("dead-letters", &raw)),
        snapshot.problem.as_deref(),
        body,
    ))
}

#[derive(Debug, Deserialize)]
struct MessageQuery {
    entity: String,
    seq: i64,
}

async fn message_page(d: Arc<Dashboard>, query: MessageQuery) -> Response {
    let sources = d.live.sources();
    let found = docflow_app::dead_letters::select(
        sources.bus.as_dead_letter_bus(),
        &sources.reasons,
        &query.entity,
        &Selection::Sequences(vec![query.seq]),
        triage::MAX_PER_ENTITY,
    )
    .await;
    let (messages, joined) = match found {
        Ok(found) => found,
        Err(e) => return triage::bus_error(e).into_response(),
    };
    let Some(m) = messages.first() else {
        return ApiError::not_found(format!(
            "no dead letter with sequence number {} in {}",
            query.seq, query.entity
        ))
        .into_response();
    };
    html(pages::page(
        &format!("Dead letter {}", query.seq),
        Nav::DeadLetters,
        d.guard.page_token(),
        None,
        None,
        pages::dead_letters::message(&query.entity, m, &joined),
    ))
}

async fn budget_page(d: Arc<Dashboard>) -> Response {
    let snapshot = d.live.current(true).await;
    let view = crate::budget::view(&d, &snapshot).await;
    html(pages::page(
        "LLM budget",
        Nav::Budget,
        d.guard.page_token(),
        Some("/events?view=budget"),
        snapshot.problem.as_deref(),
        pages::budget::body(&view),
    ))
}

async fn metrics_text(d: Arc<Dashboard>) -> Response {
    let mut text = crate::metrics::broker_text(d.live.sources().bus.as_ref()).await;
    if let Some(endpoints) = d.handler_metrics.get() {
        text.push_str(&crate::metrics::handlers_text(endpoints).await);
    }
    warp::reply::with_header(
        text,
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}

async fn action(
    verb: String,
    d: Arc<Dashboard>,
    token: Option<String>,
    origin: Option<String>,
    host: Option<String>,
    body: bytes::Bytes,
) -> Response {
    if let Err(e) = d
        .guard
        .check_action(token.as_deref(), origin.as_deref(), host.as_deref())
    {
        return e.into_response();
    }
    let action = match verb.as_str() {
        "resubmit" => DeadLetterAction::Resubmit,
        "discard" => DeadLetterAction::Discard,
        other => {
            return ApiError::not_found(format!("no action {other:?}: resubmit or discard"))
                .into_response();
        }
    };
    let request: ActionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request(format!("the action's JSON body is invalid: {e}"))
                .into_response();
        }
    };
    match triage::act(d.live.sources(), action, &request).await {
        Ok(result) => {
            d.live.sample(true).await;
            warp::reply::json(&result).into_response()
        }
        Err(e) => e.into_response(),
    }
}
