//! docflow's Service Bus REST client against the embedded broker and a scripted server.

mod common;

use std::time::Duration;

use common::broker::Harness;
use docflow::servicebus::message::{Message, PropertyValue};
use docflow::servicebus::{ClientError, Namespace, ServiceBusClient, ServiceBusClientOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn send_receive_and_settle_round_trip() {
    let h = Harness::start().await;
    let client = h.client();
    let message = Message::new(b"{\"a\":1}".to_vec())
        .with_content_type("application/json")
        .with_correlation_id("corr-1")
        .with_subject("Subject")
        .with_time_to_live(Duration::from_secs(90))
        .with_property("tenant", "contoso")
        .with_property("priority", 5i64)
        .with_property("ratio", 0.5)
        .with_property("urgent", true);
    let seq = client.send_message("q", &message).await.unwrap();
    assert_eq!(seq, Some(1));
    let got = client.peek_lock("q", WAIT).await.unwrap().unwrap();
    assert_eq!(got.message.body, message.body);
    assert_eq!(
        got.message.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(got.message.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(got.message.subject.as_deref(), Some("Subject"));
    assert!(
        got.message.message_id.is_some(),
        "the client gives every message an id"
    );
    assert_eq!(
        got.message.properties["tenant"],
        PropertyValue::String("contoso".into())
    );
    assert_eq!(got.message.properties["priority"], PropertyValue::Int(5));
    assert_eq!(got.message.properties["ratio"], PropertyValue::Double(0.5));
    assert_eq!(got.message.properties["urgent"], PropertyValue::Bool(true));
    assert_eq!(got.delivery_count, 1);
    assert!(got.expires_at.is_some());
    client.renew_message_lock(&got).await.unwrap();
    client.abandon_message(&got).await.unwrap();
    let again = client.peek_lock("q", WAIT).await.unwrap().unwrap();
    assert_eq!(again.delivery_count, 2);
    client.complete_message(&again).await.unwrap();
    assert!(matches!(
        client.complete_message(&again).await,
        Err(ClientError::MessageLockLost(_))
    ));
    assert!(
        client
            .peek_lock("q", Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn batch_send_and_receive_and_delete() {
    let h = Harness::start().await;
    let client = h.client();
    let batch: Vec<Message> = (0..3)
        .map(|i| {
            Message::new(format!("m{i}"))
                .with_property("i", i as i64)
                .with_time_to_live(Duration::from_secs(60))
        })
        .collect();
    client.send_messages("q", &batch).await.unwrap();
    for i in 0..3 {
        let got = client.receive_and_delete("q", WAIT).await.unwrap().unwrap();
        assert_eq!(got.message.body, format!("m{i}").into_bytes());
        assert_eq!(got.message.properties["i"], PropertyValue::Int(i));
        assert!(got.lock_token.is_none() && got.location.is_none());
    }
}

#[tokio::test]
async fn errors_are_classified() {
    let h = Harness::start().await;
    let client = h.client();
    assert!(matches!(
        client.send_message("nope", &Message::new("x")).await,
        Err(ClientError::EntityNotFound { .. })
    ));
    assert!(matches!(
        client.peek_lock("sessions", Duration::ZERO).await,
        Err(ClientError::SessionRequired(_))
    ));
    assert!(matches!(
        client.send_message("sessions", &Message::new("x")).await,
        Err(ClientError::BadRequest(_))
    ));
    let big = Message::new(vec![0u8; 300 * 1024]);
    assert!(matches!(
        client.send_message("q", &big).await,
        Err(ClientError::QuotaOrTooLarge(_))
    ));
    let wrong_key = format!(
        "Endpoint=sb://127.0.0.1:{};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=wrong;UseDevelopmentEmulator=true;",
        h.port
    );
    let bad = ServiceBusClient::from_connection_string(&wrong_key).unwrap();
    assert!(matches!(
        bad.send_message("q", &Message::new("x")).await,
        Err(ClientError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn local_extras_dead_letter_and_browse() {
    let h = Harness::start().await;
    let client = h.client();
    client
        .send_message("q", &Message::new("poison"))
        .await
        .unwrap();
    let got = client.peek_lock("q", WAIT).await.unwrap().unwrap();
    client
        .dead_letter_message(&got, "Poison", "bad input")
        .await
        .unwrap();
    let listed = client.browse("q/$DeadLetterQueue", 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].dead_letter_reason(), Some("Poison"));
    assert_eq!(listed[0].dead_letter_description(), Some("bad input"));
}

fn scripted_client(server: &MockServer) -> ServiceBusClient {
    let namespace = Namespace::from_connection_string(&format!(
        "Endpoint=sb://{};SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;",
        server.address()
    ))
    .unwrap();
    let options = ServiceBusClientOptions {
        retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_millis(40),
        ..ServiceBusClientOptions::default()
    };
    ServiceBusClient::new(namespace, options).unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/q/messages"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/q/messages"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    scripted_client(&server)
        .send_message("q", &Message::new("x"))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let ids: Vec<_> = requests
        .iter()
        .map(|r| r.headers["brokerproperties"].to_str().unwrap().to_string())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "every retry carries the same MessageId"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(4)
        .mount(&server)
        .await;
    let err = scripted_client(&server)
        .send_message("q", &Message::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Unavailable { attempts: 4, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn authorization_and_not_found_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/q/messages"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string("<Error><Code>401</Code><Detail>ExpiredToken</Detail></Error>"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/gone/messages"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let client = scripted_client(&server);
    assert!(
        matches!(client.send_message("q", &Message::new("x")).await, Err(ClientError::Unauthorized(d)) if d == "ExpiredToken")
    );
    assert!(matches!(
        client.send_message("gone", &Message::new("x")).await,
        Err(ClientError::EntityNotFound { .. })
    ));
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let namespace =
        Namespace::from_connection_string(&Namespace::emulator_connection_string(port)).unwrap();
    let options = ServiceBusClientOptions {
        max_retries: 2,
        retry_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let client = ServiceBusClient::new(namespace, options).unwrap();
    let err = client
        .send_message("q", &Message::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Unavailable { attempts: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn azure_only_features_are_refused_against_azure() {
    let namespace = Namespace::from_connection_string(
        "Endpoint=sb://ns.servicebus.windows.net;SharedAccessKeyName=a;SharedAccessKey=b",
    )
    .unwrap();
    let client = ServiceBusClient::new(namespace, ServiceBusClientOptions::default()).unwrap();
    assert!(matches!(
        client.browse("q", 0, 1).await,
        Err(ClientError::Unsupported(_))
    ));
}
