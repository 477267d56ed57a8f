//! The dashboard's routes in process (`warp::test`), over a real embedded broker and a local
//! blob folder: the action token, bad input, grouping, a group resubmitted to the subscription
//! it came from (never its topic) and audited, and a count that changed refused.

use std::sync::Arc;
use std::time::Duration;

use docflow_app::dead_letters::{AuditTrail, Reasons};
use docflow_app::pipeline::store::{Containers, DocumentStore};
use docflow_blob::LocalFolderStore;
use docflow_broker::{Broker, BrokerOptions, Entities, ReceiveMode};
use docflow_dashboard::sources::{LocalBroker, Sources};
use docflow_dashboard::{Bound, Dashboard};
use docflow_servicebus::message::Message;
use serde_json::{Value, json};

struct Fixture {
    broker: Broker,
    audit: AuditTrail,
    dashboard: Arc<Dashboard>,
    host: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "q", "Properties": {"MaxDeliveryCount": 3}}],
        "Topics": [{"Name": "t", "Properties": {}, "Subscriptions": [
            {"Name": "a", "Properties": {}, "Rules": []},
            {"Name": "b", "Properties": {}, "Rules": []}]}]}]}});
    let entities = Entities::from_json(&topology).unwrap();
    let broker = Broker::open(entities, BrokerOptions::new(dir.path().join("broker"))).unwrap();
    let blobs: Arc<dyn docflow_blob::BlobStore> =
        Arc::new(LocalFolderStore::new(dir.path().join("blobs")));
    let containers = Containers::default();
    let audit = AuditTrail::new(blobs.clone(), containers.audit.clone());
    let sources = Sources {
        store: DocumentStore::new(blobs.clone(), containers),
        bus: Arc::new(LocalBroker(broker.clone())),
        reasons: Reasons(None),
        audit: audit.clone(),
    };
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap(), sources)
        .await
        .unwrap();
    let host = bound.local_addr().to_string();
    Fixture {
        broker,
        audit,
        dashboard: bound.dashboard().clone(),
        host,
        _dir: dir,
    }
}

impl Fixture {
    /// Dead-letters one message of `entity` (a copy sent through `send_to`) with `description`.
    async fn dead_letter(&self, send_to: &str, entity: &str, description: &str) {
        self.broker
            .send(
                send_to,
                vec![Message::new(format!("body of {description}"))],
            )
            .await
            .unwrap();
        let got = self
            .broker
            .receive(entity, false, ReceiveMode::PeekLock, Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        self.broker
            .dead_letter_message(entity, &got, "TaskPoison", description)
            .await
            .unwrap();
    }

    fn request(&self) -> warp::test::RequestBuilder {
        warp::test::request().header("host", &self.host)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .request()
            .path(path)
            .reply(&docflow_dashboard::routes::routes(self.dashboard.clone()))
            .await;
        (
            r.status().as_u16(),
            String::from_utf8_lossy(r.body()).into_owned(),
        )
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.request().method("POST").path(path).json(body);
        if let Some(t) = token {
            request = request.header("x-docflow-token", t);
        }
        let r = request
            .reply(&docflow_dashboard::routes::routes(self.dashboard.clone()))
            .await;
        (
            r.status().as_u16(),
            serde_json::from_slice(r.body()).unwrap_or(Value::Null),
        )
    }

    fn token(&self) -> String {
        self.dashboard.guard.token().to_string()
    }
}

#[tokio::test]
async fn actions_without_the_token_or_from_another_origin_are_refused_and_change_nothing() {
    let f = fixture().await;
    f.dead_letter("q", "q", "task 1111111111111111:classify failed")
        .await;
    let body = json!({"entity": "q", "sequenceNumbers": [1], "count": 1});
    let (status, answer) = f.post("/api/dead-letters/discard", None, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("MissingToken"))
    );
    let (status, answer) = f
        .post("/api/dead-letters/discard", Some("guess"), &body)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("BadToken"))
    );
    let r = f
        .request()
        .method("POST")
        .path("/api/dead-letters/discard")
        .header("x-docflow-token", f.token())
        .header("origin", "http://evil.example")
        .json(&body)
        .reply(&docflow_dashboard::routes::routes(f.dashboard.clone()))
        .await;
    assert_eq!(r.status().as_u16(), 403);
    let foreign = warp::test::request()
        .header("host", "rebound.example")
        .path("/")
        .reply(&docflow_dashboard::routes::routes(f.dashboard.clone()))
        .await;
    assert_eq!(foreign.status().as_u16(), 403);
    assert_eq!(f.broker.counts("q").await.unwrap().dead_lettered, 1);
    assert!(f.audit.dead_letter_records().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_a_json_error_with_a_clear_status() {
    let f = fixture().await;
    let (status, body) = f.get("/?status=done").await;
    assert_eq!(status, 400);
    assert!(body.contains("status must be one of"), "{body}");
    assert_eq!(f.get("/nothing-here").await.0, 404);
    assert_eq!(f.get("/dead-letters?entity=nope").await.0, 404);
    assert_eq!(f.get("/events?view=everything").await.0, 400);
    let token = f.token();
    let (status, _) = f
        .post(
            "/api/dead-letters/resubmit",
            Some(&token),
            &json!({"entity": "q", "count": 1}),
        )
        .await;
    assert_eq!(status, 400, "neither a group nor sequence numbers");
    let (status, _) = f
        .post(
            "/api/dead-letters/explode",
            Some(&token),
            &json!({"entity": "q", "count": 1}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = f
        .post(
            "/api/dead-letters/resubmit",
            Some(&token),
            &json!({"entity": "nope", "sequenceNumbers": [1], "count": 1}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_group_is_resubmitted_to_the_subscription_it_came_from_and_audited() {
    let f = fixture().await;
    f.dead_letter(
        "t",
        "t/subscriptions/a",
        "task 9b0d6a0c3c2b4c5f8f0e7f9a1d2c3b4a:classify: missing field \"label\"",
    )
    .await;
    f.dead_letter(
        "t",
        "t/subscriptions/a",
        "task 4bf92f3577b34da6a3ce929d0e0e4736:classify: missing field \"sentiment\"",
    )
    .await;
    f.dead_letter("t", "t/subscriptions/a", "blob documents/x.txt is gone")
        .await;
    // Each send to t also left a copy in b: 3 there, untouched by what follows.
    assert_eq!(
        f.broker.counts("t/subscriptions/b").await.unwrap().active,
        3
    );

    let (status, page) = f.get("/dead-letters").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("task &lt;id&gt;:classify: missing field &quot;…&quot;"),
        "{page}"
    );
    assert!(page.contains("Resubmit 2 to t/subscriptions/a"), "{page}");
    let (_, searched) = f.get("/dead-letters?search=X.TXT").await;
    assert!(
        searched.contains("Resubmit 1 to t/subscriptions/a"),
        "{searched}"
    );
    assert!(!searched.contains("Resubmit 2"), "{searched}");

    let group = json!({
        "entity": "t/subscriptions/a",
        "reason": "TaskPoison",
        "signature": "task <id>:classify: missing field \"…\"",
        "count": 2,
    });
    let (status, answer) = f
        .post("/api/dead-letters/resubmit", Some(&f.token()), &group)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["count"], 2);
    assert_eq!(answer["place"], "t/subscriptions/a");
    let a = f.broker.counts("t/subscriptions/a").await.unwrap();
    assert_eq!((a.active, a.dead_lettered), (2, 1));
    assert_eq!(
        f.broker.counts("t/subscriptions/b").await.unwrap().active,
        3,
        "the topic was not sent to"
    );
    let copy = f
        .broker
        .receive(
            "t/subscriptions/a",
            false,
            ReceiveMode::PeekLock,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        copy.message
            .property("x-docflow-resubmitted-from")
            .is_some_and(|v| v
                .to_string()
                .starts_with("t/subscriptions/a/$DeadLetterQueue/"))
    );
    let records = f.audit.dead_letter_records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event, "DeadLettersResubmitted");
    assert_eq!(records[0].entity, "t/subscriptions/a");
    assert_eq!(records[0].actor, "dashboard");
    assert_eq!(records[0].count, 2);

    // The group is gone; asking again for 2 now finds none, changes nothing and says so.
    let (status, answer) = f
        .post("/api/dead-letters/resubmit", Some(&f.token()), &group)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("CountChanged"))
    );
    let discard = json!({"entity": "t/subscriptions/a", "sequenceNumbers": [3], "count": 1});
    let (status, answer) = f
        .post("/api/dead-letters/discard", Some(&f.token()), &discard)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        f.broker
            .counts("t/subscriptions/a")
            .await
            .unwrap()
            .dead_lettered,
        0
    );
    assert_eq!(f.audit.dead_letter_records().await.unwrap().len(), 2);
}

#[tokio::test]
async fn pages_render_and_queues_show_counts_and_ages() {
    let f = fixture().await;
    f.dead_letter("q", "q", "boom 1").await;
    f.broker
        .send("q", vec![Message::new("waiting")])
        .await
        .unwrap();
    let (status, page) = f.get("/queues").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-entity=\"t/subscriptions/b\""), "{page}");
    assert!(page.contains("href=\"/dead-letters?entity=q\""), "{page}");
    let (status, page) = f.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&f.token()),
        "the page embeds the token for its actions"
    );
    assert!(page.contains("data-live=\"/events?view=documents\""));
    let (status, page) = f.get("/dead-letters/message?entity=q&seq=1").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("body of boom 1"), "{page}");
    assert_eq!(f.get("/dead-letters/message?entity=q&seq=99").await.0, 404);
    assert_eq!(f.get("/documents/unknown").await.0, 404);
    let (status, css) = f.get("/assets/dashboard.css").await;
    assert!(status == 200 && css.contains(".badge"));
}

/// Serves `text` as a handler's `GET /metrics` on a free port; returns its URL.
async fn handler_metrics(text: &'static str) -> String {
    use warp::Filter as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let metrics = warp::path!("metrics").map(move || text);
    tokio::spawn(warp::serve(metrics).incoming(listener).run());
    url
}

#[tokio::test]
async fn the_budget_page_shows_each_deployment_or_why_the_handler_s_metrics_are_missing() {
    let f = fixture().await;
    let (status, page) = f.get("/budget").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("the handler&#39;s metrics address is not known")
            || page.contains("the handler's metrics address is not known"),
        "{page}"
    );
    assert!(page.contains(r#"href="/budget" class="active""#), "{page}");

    let url = handler_metrics(include_str!("fixtures/handler-metrics.txt")).await;
    f.dashboard
        .handler_metrics
        .set(docflow_dashboard::HandlerEndpoint::single(url))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, page) = f.get("/budget").await;
    assert_eq!(status, 200);
    assert!(!page.contains("metrics address"), "{page}");
    for model in [
        "offline-extractive-summary-v1",
        "offline-lexicon-sentiment-v1",
        "offline-similarity-classifier-v1",
    ] {
        assert!(
            page.contains(&format!(r#"data-deployment="{model}" data-tokens=""#)),
            "{model}: {page}"
        );
    }
    assert!(page.contains("unlimited"), "{page}");
    // This topology has no `ai-tasks`: no backlog, no drain time.
    assert!(
        page.contains("unknown (the queue was not sampled)"),
        "{page}"
    );
    assert!(page.contains(r#"<dd class="drain">unknown</dd>"#), "{page}");
}
