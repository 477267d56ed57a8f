//! Crash safety: while one client sends and another receives and completes, the broker process
//! is killed with SIGKILL several times and restarted on the same data folder. Afterwards every
//! message acknowledged as sent was completed or is still queued, and no message whose
//! completion was acknowledged is ever delivered again.

use std::collections::{BTreeSet, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docflow::servicebus::message::Message;
use docflow::servicebus::{Namespace, ServiceBusClient, ServiceBusClientOptions};

const MESSAGES: usize = 300;
const KILLS: usize = 4;

fn start_broker(config: &std::path::Path, data: &std::path::Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["broker", "--port", &port.to_string()])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[derive(Default)]
struct Ledger {
    sent_acked: BTreeSet<usize>,
    completed_acked: HashSet<usize>,
    complete_attempted: HashSet<usize>,
    delivered_after_completion: Vec<usize>,
}

fn id_of(body: &[u8]) -> usize {
    std::str::from_utf8(body).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_message_and_redelivers_no_completed_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("topology.json");
    std::fs::write(
        &config,
        r#"{"UserConfig": {"Namespaces": [{"Name": "crash", "Queues": [{"Name": "work", "Properties": {"LockDuration": "PT5S", "MaxDeliveryCount": 1000}}]}]}}"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = start_broker(&config, &data, port);

    let options = ServiceBusClientOptions {
        max_retries: 0,
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let client = ServiceBusClient::new(
        Namespace::from_connection_string(&Namespace::emulator_connection_string(port)).unwrap(),
        options,
    )
    .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let sending = Arc::new(std::sync::atomic::AtomicBool::new(true));

    let sender = tokio::spawn({
        let (client, ledger, sending) = (client.clone(), ledger.clone(), sending.clone());
        async move {
            for i in 0..MESSAGES {
                let message = Message::new(i.to_string()).with_message_id(format!("m{i}"));
                if client.send_message("work", &message).await.is_ok() {
                    ledger.lock().unwrap().sent_acked.insert(i);
                }
                tokio::time::sleep(Duration::from_millis(8)).await;
            }
            sending.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let receiver = tokio::spawn({
        let (client, ledger, sending) = (client.clone(), ledger.clone(), sending.clone());
        async move {
            let mut idle_after_sending = 0;
            loop {
                match client.peek_lock("work", Duration::from_secs(1)).await {
                    Ok(Some(m)) => {
                        let id = id_of(&m.message.body);
                        {
                            let mut l = ledger.lock().unwrap();
                            if l.completed_acked.contains(&id) {
                                l.delivered_after_completion.push(id);
                            }
                            l.complete_attempted.insert(id);
                        }
                        // A failed complete (lock lost, broker killed) may or may not have applied.
                        if client.complete_message(&m).await.is_ok() {
                            ledger.lock().unwrap().completed_acked.insert(id);
                        }
                    }
                    Ok(None) if !sending.load(std::sync::atomic::Ordering::SeqCst) => {
                        idle_after_sending += 1;
                        if idle_after_sending >= 2 {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    });

    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(450)).await;
        broker.kill().unwrap();
        broker.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        broker = start_broker(&config, &data, port);
    }
    sender.await.unwrap();
    receiver.await.unwrap();
    // Locks taken by receives whose answers died with the broker lapse after LockDuration
    // (5 s): move the broker's clock past it rather than waiting.
    let expiry = chrono::Utc::now().timestamp() as u64 + 600;
    let token = docflow::servicebus::sas::sign(
        &format!("http://127.0.0.1:{port}/"),
        docflow::servicebus::connection::EMULATOR_KEY_NAME,
        docflow::servicebus::connection::EMULATOR_KEY,
        expiry,
    );
    let advanced = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/$local/clock?advance=PT6S"))
        .header("Authorization", token)
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status().as_u16(), 200);

    let mut remaining = BTreeSet::new();
    while let Some(m) = client
        .receive_and_delete("work", Duration::from_secs(1))
        .await
        .unwrap()
    {
        remaining.insert(id_of(&m.message.body));
    }
    broker.kill().unwrap();
    broker.wait().unwrap();

    let l = ledger.lock().unwrap();
    assert!(
        l.delivered_after_completion.is_empty(),
        "completed messages delivered again: {:?}",
        l.delivered_after_completion
    );
    let lost: Vec<usize> = l
        .sent_acked
        .iter()
        .filter(|id| !l.complete_attempted.contains(id) && !remaining.contains(id))
        .copied()
        .collect();
    assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
    let completed_and_queued: Vec<usize> = l
        .completed_acked
        .iter()
        .filter(|id| remaining.contains(id))
        .copied()
        .collect();
    assert!(
        completed_and_queued.is_empty(),
        "completed yet still queued: {completed_and_queued:?}"
    );
    assert!(
        l.sent_acked.len() > MESSAGES / 2,
        "too few sends got through to prove anything: {}",
        l.sent_acked.len()
    );
    eprintln!(
        "crash test: {} sends acknowledged, {} completions acknowledged, {} left queued, {KILLS} SIGKILLs",
        l.sent_acked.len(),
        l.completed_acked.len(),
        remaining.len()
    );
}
