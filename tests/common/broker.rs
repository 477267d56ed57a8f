//! A broker on a real loopback port with a temporary store, and raw REST helpers.
#![allow(dead_code)]

use std::time::Duration;

use docflow::broker::{Broker, BrokerOptions, Entities, rest};
use docflow::servicebus::sas::{self, Rights, SasRule};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The topology the broker tests run against.
pub fn test_topology() -> Value {
    let q = |name: &str, props: Value| json!({"Name": name, "Properties": props});
    let sub = |name: &str, props: Value, rules: Value| json!({"Name": name, "Properties": props, "Rules": rules});
    let sql = |name: &str, expr: &str| json!({"Name": name, "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": expr}}});
    let mut queues = vec![
        q("q", json!({"LockDuration": "PT5S", "MaxDeliveryCount": 3})),
        q("q2", json!({"LockDuration": "PT5S", "MaxDeliveryCount": 2})),
        q(
            "dedup",
            json!({"RequiresDuplicateDetection": true, "DuplicateDetectionHistoryTimeWindow": "PT1M"}),
        ),
        q(
            "ttl",
            json!({"DefaultMessageTimeToLive": "PT10S", "LockDuration": "PT10S"}),
        ),
        q(
            "ttl-dlq",
            json!({"DeadLetteringOnMessageExpiration": true, "LockDuration": "PT10S"}),
        ),
        q(
            "sessions",
            json!({"RequiresSession": true, "LockDuration": "PT5S", "MaxDeliveryCount": 5}),
        ),
        q("fwd-src", json!({"ForwardTo": "fwd-dst"})),
        q("fwd-dst", json!({})),
        q(
            "dl-src",
            json!({"MaxDeliveryCount": 1, "ForwardDeadLetteredMessagesTo": "dl-dst"}),
        ),
        q("dl-dst", json!({})),
        q("chain5", json!({})),
        q("chain6", json!({})),
    ];
    // chain1 → … → chain6: five transfers, one more than Service Bus allows.
    for i in 1..=5 {
        let next = format!("chain{}", i + 1);
        let name = format!("chain{i}");
        queues.retain(|q| q["Name"] != name.as_str());
        queues.push(q(&name, json!({"ForwardTo": next})));
    }
    json!({"UserConfig": {"Namespaces": [{"Name": "test", "Queues": queues, "Topics": [
        {"Name": "fan", "Properties": {}, "Subscriptions": [sub("s1", json!({}), json!([])), sub("s2", json!({"MaxDeliveryCount": 1}), json!([]))]},
        {"Name": "filters", "Properties": {}, "Subscriptions": [
            sub("red", json!({}), json!([sql("red", "color = 'red' AND qty > 5")])),
            sub("label", json!({}), json!([sql("label", "sys.Label LIKE 'ord%' AND region IS NULL")])),
            sub("unknown", json!({}), json!([sql("unknown", "missingProp = 1 OR NOT (missingProp = 1)")])),
            sub("corr", json!({}), json!([{"Name": "corr", "Properties": {"FilterType": "Correlation", "CorrelationFilter": {"CorrelationId": "abc", "Properties": {"k": "v"}}}}])),
            sub("none", json!({}), json!([sql("none", "1=0")])),
            sub("multi", json!({}), json!([sql("all", "1=1"), sql("red", "color = 'red'")])),
            sub("actions", json!({}), json!([
                {"Name": "gold", "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "color = 'red'"}, "Action": {"SqlExpression": "SET tier = 'gold'; REMOVE secret"}}},
                {"Name": "silver", "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"}, "Action": {"SqlExpression": "SET tier = 'silver'"}}}
            ])),
            sub("plain", json!({}), json!([])),
        ]},
        {"Name": "sess-topic", "Properties": {}, "Subscriptions": [sub("sess", json!({"RequiresSession": true}), json!([]))]}
    ]}]}})
}

/// A running broker with its REST API on 127.0.0.1.
pub struct Harness {
    pub broker: Broker,
    pub port: u16,
    pub dir: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A received message over raw REST.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub props: Value,
    pub body: Vec<u8>,
}

impl Got {
    pub fn location(&self) -> String {
        self.headers["location"].to_str().unwrap().to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(test_topology(), tempfile::tempdir().unwrap()).await
    }

    pub async fn start_with(topology: Value, dir: tempfile::TempDir) -> Self {
        let entities = Entities::from_json(&topology).unwrap();
        let mut options = BrokerOptions::new(dir.path());
        options.sas_rules.push(SasRule {
            name: "listener".into(),
            key: "listen-key".into(),
            rights: Rights::parse("Listen").unwrap(),
        });
        let broker = Broker::open(entities, options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(rest::serve(broker.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Self {
            broker,
            port,
            dir: Some(dir),
            http: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// Stops the broker and hands back its data folder (to reopen it).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.dir.take().expect("the data folder is still owned")
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// A namespace-wide root token.
    pub fn token(&self) -> String {
        self.token_for(
            &format!("http://127.0.0.1:{}/", self.port),
            "RootManageSharedAccessKey",
            "SAS_KEY_VALUE",
            3600,
        )
    }

    pub fn token_for(&self, resource: &str, name: &str, key: &str, ttl_secs: i64) -> String {
        let expiry = (chrono::Utc::now().timestamp() + ttl_secs).max(0) as u64;
        sas::sign(resource, name, key, expiry)
    }

    pub fn connection_string(&self) -> String {
        docflow::servicebus::Namespace::emulator_connection_string(self.port)
    }

    pub fn client(&self) -> docflow::servicebus::ServiceBusClient {
        docflow::servicebus::ServiceBusClient::from_connection_string(&self.connection_string())
            .unwrap()
    }

    /// Sends with raw REST; returns the status.
    pub async fn send(
        &self,
        entity: &str,
        body: &[u8],
        props: Value,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        self.send_as(entity, body, props, headers, &self.token())
            .await
            .status()
    }

    pub async fn send_as(
        &self,
        entity: &str,
        body: &[u8],
        props: Value,
        headers: &[(&str, &str)],
        token: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(&format!("{entity}/messages")))
            .header("authorization", token)
            .body(body.to_vec());
        if !props.is_null() {
            request = request.header("brokerproperties", props.to_string());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.unwrap()
    }

    /// Peek-lock (POST) or receive-and-delete (DELETE) on `{entity}/messages/head`.
    pub async fn receive(&self, entity: &str, method: Method, timeout: u64) -> Option<Got> {
        let response = self
            .http
            .request(
                method,
                self.url(&format!("{entity}/messages/head?timeout={timeout}")),
            )
            .header("authorization", self.token())
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NO_CONTENT {
            return None;
        }
        let status = response.status();
        let headers = response.headers().clone();
        let props = headers
            .get("brokerproperties")
            .map(|v| serde_json::from_str(v.to_str().unwrap()).unwrap())
            .unwrap_or(Value::Null);
        let body = response.bytes().await.unwrap().to_vec();
        Some(Got {
            status,
            headers,
            props,
            body,
        })
    }

    pub async fn lock(&self, entity: &str) -> Option<Got> {
        self.receive(entity, Method::POST, 0).await
    }

    /// PUT (unlock), DELETE (complete) or POST (renew) on a lock URI.
    pub async fn on_lock(&self, method: Method, location: &str) -> StatusCode {
        self.http
            .request(method, location)
            .header("authorization", self.token())
            .header("content-length", "0")
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A request to `path` carrying the root token.
    pub fn authed(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("authorization", self.token())
    }

    pub fn advance(&self, seconds: u64) {
        self.broker.advance_clock(Duration::from_secs(seconds));
    }

    pub async fn body_of(&self, entity: &str) -> Option<String> {
        let got = self.receive(entity, Method::DELETE, 0).await?;
        Some(String::from_utf8(got.body).unwrap())
    }
}

/// Fills queue `q` of the test topology with one message in every state the management API
/// counts: three sent (one then dead-lettered: two active), one scheduled an hour ahead.
pub async fn a_queue_with_every_count(client: &docflow::servicebus::ServiceBusClient) {
    use docflow::servicebus::message::Message;
    for body in ["a", "b", "c"] {
        client.send_message("q", &Message::new(body)).await.unwrap();
    }
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    client
        .send_message(
            "q",
            &Message::new("later").with_scheduled_enqueue_time(later),
        )
        .await
        .unwrap();
    let poison = client
        .peek_lock("q", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    client
        .dead_letter_message(&poison, "Poison", "bad input")
        .await
        .unwrap();
}
