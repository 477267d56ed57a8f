//! Round trips that must hold for every input, checked with proptest:
//! - the handler's response encoding against the host's decoding model (§2.2–2.4): the host
//!   turns what docflow writes back into exactly the intended bytes;
//! - a Service Bus message against its REST form (BrokerProperties JSON and property headers);
//! - SQL filter evaluation against SQL's three-valued logic.

use docflow::broker::filter::Filter;
use docflow::protocol::InvocationResponse;
use docflow::protocol::host_rules::{blob_bytes, service_bus_bodies};
use docflow::servicebus::message::{BrokerProperties, Message, PropertyValue, parse_http_date};
use proptest::prelude::*;

fn outputs(response: &InvocationResponse) -> serde_json::Value {
    serde_json::to_value(response).unwrap()["Outputs"].clone()
}

/// Text as handlers produce it: anything, biased towards the shapes the host treats specially
/// (base64-looking words, JSON objects and arrays, numbers).
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/]{0,12}={0,2}",
        r#"\{"[a-z]{1,5}": ?[0-9]{1,3}\}"#,
        r#"\[[0-9, ]{0,10}\]"#,
        "-?[0-9]{1,10}(\\.[0-9]{1,3})?",
        Just("true".to_string()),
        Just("null".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn service_bus_bodies_reach_the_bus_as_written(bodies in proptest::collection::vec(tricky_text(), 0..6)) {
        let response = InvocationResponse::new().service_bus_messages("out", bodies.clone());
        let sent = service_bus_bodies(&outputs(&response)["out"]);
        let expected: Vec<Vec<u8>> = bodies.into_iter().map(String::into_bytes).collect();
        prop_assert_eq!(sent, expected);
    }

    #[test]
    fn blob_bytes_are_written_as_given(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let response = InvocationResponse::new().blob_bytes("b", &bytes);
        prop_assert_eq!(blob_bytes(&outputs(&response)["b"], false), Some(bytes));
    }

    #[test]
    fn blob_json_is_written_compact(map in proptest::collection::btree_map("[a-z]{1,6}", tricky_text(), 0..5)) {
        let value = serde_json::to_value(&map).unwrap();
        let response = InvocationResponse::new().blob_json("b", &value).unwrap();
        prop_assert_eq!(
            blob_bytes(&outputs(&response)["b"], false),
            Some(serde_json::to_vec(&value).unwrap())
        );
    }

    #[test]
    fn property_values_survive_their_header_form(value in property_value()) {
        prop_assert_eq!(PropertyValue::from_header(&value.to_header()), Some(value));
    }

    #[test]
    fn broker_properties_survive_their_json_form(
        message_id in "[A-Za-z0-9-]{1,20}",
        session_id in proptest::option::of("[a-z0-9]{1,10}"),
        correlation_id in proptest::option::of(any::<String>()),
        subject in proptest::option::of(any::<String>()),
        ttl_ms in proptest::option::of(1u64..10_000_000_000),
    ) {
        let mut sent = Message::new(b"body".to_vec());
        sent.message_id = Some(message_id);
        sent.session_id = session_id;
        sent.correlation_id = correlation_id;
        sent.subject = subject;
        sent.time_to_live = ttl_ms.map(std::time::Duration::from_millis);
        let header = serde_json::to_string(&BrokerProperties::for_send(&sent)).unwrap();
        let props: BrokerProperties = serde_json::from_str(&header).unwrap();
        let mut received = Message::new(b"body".to_vec());
        props.apply_to(&mut received).unwrap();
        prop_assert_eq!(&received.message_id, &sent.message_id);
        prop_assert_eq!(&received.session_id, &sent.session_id);
        prop_assert_eq!(&received.correlation_id, &sent.correlation_id);
        prop_assert_eq!(&received.subject, &sent.subject);
        // TTL travels in seconds with millisecond precision.
        prop_assert_eq!(
            received.time_to_live.map(|d| d.as_millis()),
            sent.time_to_live.map(|d| d.as_millis())
        );
    }

    #[test]
    fn filters_follow_three_valued_logic(a in truth(), b in truth()) {
        let matches = |sql: String| Filter::sql(&sql).unwrap().matches(&message());
        // A filter matches exactly when its condition is TRUE (not FALSE, not UNKNOWN).
        prop_assert_eq!(matches(a.sql().into()), a == Truth::True);
        prop_assert_eq!(matches(format!("NOT ({})", a.sql())), a.not() == Truth::True);
        prop_assert_eq!(
            matches(format!("({}) AND ({})", a.sql(), b.sql())),
            a.and(b) == Truth::True
        );
        prop_assert_eq!(
            matches(format!("({}) OR ({})", a.sql(), b.sql())),
            a.or(b) == Truth::True
        );
        // De Morgan holds in three-valued logic too.
        prop_assert_eq!(
            matches(format!("NOT (({}) AND ({}))", a.sql(), b.sql())),
            matches(format!("(NOT ({})) OR (NOT ({}))", a.sql(), b.sql()))
        );
    }
}

fn property_value() -> impl Strategy<Value = PropertyValue> {
    prop_oneof![
        any::<String>()
            .prop_filter("dates come back as dates", |s| parse_http_date(s.trim())
                .is_none()
                && s.trim() == s)
            .prop_map(PropertyValue::String),
        any::<i64>().prop_map(PropertyValue::Int),
        any::<f64>()
            .prop_filter("NaN and infinities have no header form", |x| x.is_finite())
            .prop_map(PropertyValue::Double),
        any::<bool>().prop_map(PropertyValue::Bool),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    /// A condition with this truth value on [`message`].
    fn sql(self) -> &'static str {
        match self {
            Truth::True => "qty = 10",
            Truth::False => "qty = 11",
            Truth::Unknown => "missing = 1",
        }
    }

    fn not(self) -> Self {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    fn or(self, other: Self) -> Self {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }
}

fn truth() -> impl Strategy<Value = Truth> {
    prop_oneof![Just(Truth::True), Just(Truth::False), Just(Truth::Unknown)]
}

fn message() -> Message {
    Message::new(b"x".to_vec()).with_property("qty", 10i64)
}
