//! Opening a store an older version wrote: sequence numbers go on above the ones it used.

use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_servicebus::message::Message;
use rusqlite::params;

#[tokio::test]
async fn a_store_an_older_version_numbered_per_subscription_goes_on_above_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What an older version left: subscription `a` numbered up to 3 and `b` up to 1, each
        // from a counter of its own (a topic's subscriptions now share the topic's).
        let db = rusqlite::Connection::open(dir.path().join("broker.sqlite3")).unwrap();
        db.execute_batch(docflow_broker::core::SCHEMA).unwrap();
        for (key, last) in [("t/subscriptions/a", 3), ("t/subscriptions/b", 1)] {
            for seq in 1..=last {
                db.execute(
                    "INSERT INTO messages (entity, dlq, seq, state, message_id, enqueued_at, body, meta)
                     VALUES (?1, 0, ?2, 0, 'old', 0, x'', '{}')",
                    params![key, seq],
                )
                .unwrap();
            }
            db.execute(
                "INSERT INTO counters (entity, next_seq) VALUES (?1, ?2)",
                params![key, last + 1],
            )
            .unwrap();
        }
    }
    let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [], "Topics": [{"Name": "t", "Properties": {}, "Subscriptions": [
            {"Name": "a", "Properties": {}, "Rules": []},
            {"Name": "b", "Properties": {}, "Rules": []}]}]}]}});
    let broker = Broker::open(
        Entities::from_json(&topology).unwrap(),
        BrokerOptions::new(dir.path()),
    )
    .unwrap();
    // Without raising the topic's counter at open, this send would reuse number 1 in both
    // subscriptions (a UNIQUE violation).
    let sent = broker
        .send("t", vec![Message::new("new"), Message::new("newer")])
        .await
        .unwrap();
    assert_eq!(sent, [Some(4), Some(5)]);
    for (sub, old) in [("t/subscriptions/a", 3), ("t/subscriptions/b", 1)] {
        let seqs: Vec<i64> = broker
            .browse(sub, false, 0, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.sequence_number)
            .collect();
        assert_eq!(seqs, [(1..=old).collect(), vec![4, 5]].concat(), "{sub}");
    }
}
