//! The management reads through the REST routes in process (`warp::test`), the answers read
//! back with quick-xml's namespace-resolving reader and compared with Azure's recorded ones
//! (`docflow-servicebus/tests/fixtures/atom/`).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};
use serde_json::json;
use warp::http::StatusCode;

use crate::rest::routes;
use crate::{Broker, BrokerOptions, Entities};
use docflow_servicebus::admin::{ATOM_NAMESPACE, CONNECT_NAMESPACE, COUNT_DETAILS_NAMESPACE};
use docflow_servicebus::message::Message;
use docflow_servicebus::sas;

const HOST: &str = "sb.local";

fn broker(dir: &std::path::Path) -> Broker {
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "atomns",
    "Queues": [
        {"Name": "orders", "Properties": {"LockDuration": "PT30S", "MaxDeliveryCount": 4,
            "DefaultMessageTimeToLive": "PT1H", "ForwardDeadLetteredMessagesTo": "parked"}},
        {"Name": "parked", "Properties": {}},
        {"Name": "plain", "Properties": {}}
    ],
    "Topics": [{"Name": "events", "Properties": {}, "Subscriptions": [
        {"Name": "audit", "Properties": {"ForwardTo": "parked"}, "Rules": []},
        {"Name": "mail", "Properties": {"RequiresSession": true}, "Rules": []}
    ]}]}]}});
    Broker::open(
        Entities::from_json(&topology).unwrap(),
        BrokerOptions::new(dir),
    )
    .unwrap()
}

fn token(host: &str, key_name: &str, key: &str) -> String {
    let expiry = (chrono::Utc::now().timestamp() + 600) as u64;
    sas::sign(&format!("http://{host}/"), key_name, key, expiry)
}

async fn get(broker: &Broker, path: &str) -> (StatusCode, String, String) {
    request(
        broker,
        "GET",
        HOST,
        path,
        &token(HOST, "RootManageSharedAccessKey", "SAS_KEY_VALUE"),
    )
    .await
}

async fn request(
    broker: &Broker,
    method: &str,
    host: &str,
    path: &str,
    token: &str,
) -> (StatusCode, String, String) {
    let response = warp::test::request()
        .method(method)
        .path(path)
        .header("host", host)
        .header("authorization", token)
        .reply(&routes(broker.clone()))
        .await;
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    (response.status(), content_type, body)
}

/// One element of a document: its depth, namespace, local name, attributes and text.
#[derive(Debug)]
struct Element {
    depth: usize,
    namespace: String,
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
}

/// Every element in document order, names resolved to their namespaces (a malformed
/// document panics).
fn elements(xml: &str) -> Vec<Element> {
    let mut reader = NsReader::from_str(xml);
    let (mut out, mut open): (Vec<Element>, Vec<usize>) = (Vec::new(), Vec::new());
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let namespace = match ns {
            ResolveResult::Bound(ns) => String::from_utf8(ns.0.to_vec()).unwrap(),
            _ => String::new(),
        };
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let attributes = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                        (
                            key,
                            a.normalized_value(XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                out.push(Element {
                    depth: open.len(),
                    namespace,
                    name: String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(),
                    attributes,
                    text: String::new(),
                });
                if is_start {
                    open.push(out.len() - 1);
                }
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    out[i].text += &t.decode().unwrap();
                }
            }
            Event::GeneralRef(r) => {
                let entity = match &*r.decode().unwrap() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                if let Some(&i) = open.last() {
                    out[i].text += entity;
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

/// The text of the first element named `name` in `namespace`.
fn text_of<'a>(elements: &'a [Element], namespace: &str, name: &str) -> &'a str {
    elements
        .iter()
        .find(|e| e.namespace == namespace && e.name == name)
        .unwrap_or_else(|| panic!("no {name} in {namespace}"))
        .text
        .as_str()
}

/// The local names of the children of the first `parent` element.
fn children(elements: &[Element], parent: &str) -> Vec<String> {
    let at = elements.iter().position(|e| e.name == parent).unwrap();
    let depth = elements[at].depth;
    elements[at + 1..]
        .iter()
        .take_while(|e| e.depth > depth)
        .filter(|e| e.depth == depth + 1)
        .map(|e| e.name.clone())
        .collect()
}

macro_rules! azure {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docflow-servicebus/tests/fixtures/atom/",
            $name
        ))
    };
}

#[tokio::test]
async fn a_queue_entry_holds_its_settings_and_counts_in_azure_s_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    broker
        .send(
            "orders",
            vec![
                Message::new("one"),
                Message::new("two"),
                Message::new("later").with_scheduled_enqueue_time(later),
            ],
        )
        .await
        .unwrap();
    let (status, content_type, body) = get(&broker, "/Orders?api-version=2021-05").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        content_type,
        "application/atom+xml;type=entry;charset=utf-8"
    );
    let doc = elements(&body);
    assert_eq!(
        (doc[0].namespace.as_str(), doc[0].name.as_str()),
        (ATOM_NAMESPACE, "entry")
    );
    assert_eq!(text_of(&doc, ATOM_NAMESPACE, "title"), "orders");
    assert_eq!(text_of(&doc, ATOM_NAMESPACE, "name"), "atomns");
    let setting = |name: &str| text_of(&doc, CONNECT_NAMESPACE, name);
    assert_eq!(setting("LockDuration"), "PT30S");
    assert_eq!(setting("MaxDeliveryCount"), "4");
    assert_eq!(setting("DefaultMessageTimeToLive"), "PT1H");
    assert_eq!(setting("RequiresSession"), "false");
    assert_eq!(setting("Status"), "Active");
    assert_eq!(setting("MessageCount"), "3");
    assert_eq!(
        setting("ForwardDeadLetteredMessagesTo"),
        "sb://sb.local/parked"
    );
    assert_ne!(setting("SizeInBytes"), "0");
    assert_ne!(setting("AccessedAt"), "0001-01-01T00:00:00Z");
    let count = |name: &str| text_of(&doc, COUNT_DETAILS_NAMESPACE, name);
    assert_eq!(count("ActiveMessageCount"), "2");
    assert_eq!(count("ScheduledMessageCount"), "1");
    assert_eq!(count("DeadLetterMessageCount"), "0");
    assert_eq!(count("TransferMessageCount"), "0");
    assert_eq!(count("TransferDeadLetterMessageCount"), "0");
}

#[tokio::test]
async fn descriptions_list_their_elements_in_the_order_azure_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let (_, _, queue) = get(&broker, "/plain").await;
    assert_eq!(
        children(&elements(&queue), "QueueDescription"),
        children(&elements(azure!("queue-entry.xml")), "QueueDescription")
    );
    let (_, _, topics) = get(&broker, "/$Resources/Topics").await;
    assert_eq!(
        children(&elements(&topics), "TopicDescription"),
        children(&elements(azure!("topic-feed.xml")), "TopicDescription")
    );
    // Azure's forwarding subscription, read as one: ForwardTo after Status, the dead-letter
    // target after CountDetails.
    let (_, _, sub) = get(&broker, "/events/subscriptions/audit").await;
    let mut azure_sub = children(
        &elements(azure!("subscription-entry.xml")),
        "SubscriptionDescription",
    );
    azure_sub.retain(|name| name != "IsClientAffine" && name != "ForwardDeadLetteredMessagesTo");
    assert_eq!(
        children(&elements(&sub), "SubscriptionDescription"),
        azure_sub
    );
}

#[tokio::test]
async fn feeds_list_queues_topics_and_subscriptions_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let (status, content_type, body) = get(
        &broker,
        "/$resources/QUEUES?$skip=1&$top=1&api-version=2021-05",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/atom+xml;type=feed;charset=utf-8");
    let doc = elements(&body);
    assert_eq!(
        (doc[0].namespace.as_str(), doc[0].name.as_str()),
        (ATOM_NAMESPACE, "feed")
    );
    let titles: Vec<&str> = doc
        .iter()
        .filter(|e| e.name == "title" && e.depth == 2)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(titles, ["parked"], "queues in name order, one page of one");
    let next = doc
        .iter()
        .find(|e| e.name == "link" && e.attributes.contains(&("rel".into(), "next".into())))
        .expect("a next link: plain remains");
    assert!(
        next.attributes.contains(&(
            "href".into(),
            "http://sb.local/$Resources/Queues?$skip=2&$top=1&api-version=2021-05".into()
        )),
        "{next:?}"
    );
    let (_, _, subs) = get(&broker, "/EVENTS/Subscriptions").await;
    let doc = elements(&subs);
    let titles: Vec<&str> = doc
        .iter()
        .filter(|e| e.name == "title" && e.depth == 2)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(titles, ["audit", "mail"]);
    assert_eq!(
        text_of(&doc, CONNECT_NAMESPACE, "ForwardTo"),
        "sb://sb.local/parked"
    );
    let (_, _, topics) = get(&broker, "/$Resources/Topics").await;
    assert_eq!(
        text_of(&elements(&topics), CONNECT_NAMESPACE, "SubscriptionCount"),
        "2"
    );
}

#[tokio::test]
async fn a_missing_entity_is_an_empty_feed_as_on_azure() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    for path in [
        "/nope",
        "/events/subscriptions/nope",
        "/orders/$DeadLetterQueue",
    ] {
        let (status, content_type, body) = get(&broker, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type, "application/atom+xml;type=feed;charset=utf-8");
        let doc = elements(&body);
        assert_eq!(doc[0].name, "feed");
        assert!(doc.iter().all(|e| e.name != "entry"), "{body}");
        assert_eq!(
            children(&doc, "feed"),
            children(&elements(azure!("not-found.xml")), "feed")
        );
    }
}

#[tokio::test]
async fn what_a_client_sends_is_escaped_in_what_it_gets_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let host = "sb.local:7072\"<&'";
    let (status, _, body) = request(
        &broker,
        "GET",
        host,
        "/orders",
        &token(host, "RootManageSharedAccessKey", "SAS_KEY_VALUE"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc = elements(&body);
    let link = doc.iter().find(|e| e.name == "link").unwrap();
    assert!(
        link.attributes.contains(&(
            "href".into(),
            format!("http://{host}/orders?api-version=2021-05")
        )),
        "{link:?}"
    );
    assert_eq!(
        text_of(&doc, CONNECT_NAMESPACE, "ForwardDeadLetteredMessagesTo"),
        format!("sb://{host}/parked")
    );
}

#[tokio::test]
async fn reads_need_the_manage_right_and_writes_are_405() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = BrokerOptions::new(dir.path());
    options.sas_rules.push(sas::SasRule {
        name: "sender".into(),
        key: "send-key".into(),
        rights: sas::Rights::parse("Send,Listen").unwrap(),
    });
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "n",
        "Queues": [{"Name": "q", "Properties": {}}], "Topics": []}]}});
    let broker = Broker::open(Entities::from_json(&topology).unwrap(), options).unwrap();
    let sender = token(HOST, "sender", "send-key");
    for path in ["/q", "/$Resources/Queues"] {
        let (status, _, body) = request(&broker, "GET", HOST, path, &sender).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let root = token(HOST, "RootManageSharedAccessKey", "SAS_KEY_VALUE");
    for method in ["PUT", "DELETE"] {
        let (status, content_type, body) = request(&broker, method, HOST, "/q", &root).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(content_type, "application/xml; charset=utf-8");
        assert!(body.contains("topology file"), "{body}");
    }
}
