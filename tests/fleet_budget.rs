//! The fleet's budget with its ledger on Azurite: three instances' budgets of one deployment
//! (three `FleetBudget`s, each with its own instance id and renewal task, as three app
//! instances hold them), calling a simulated deployment that answers with Azure-style rate
//! headers. Checked: the limits are learned once (one probe, the others wait for its
//! answer), the shares add up to the limit and follow demand, a `429` seen by one instance
//! holds all of them until its reset, a killed instance's share returns to the others when its
//! lease ends, the storage round trips stay well below one per call, and a store that never
//! answers holds a call no longer than the budget's wait.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::azurite::Azurite;
use docflow::ai::budget::{BudgetStore, RateHeaders};
use docflow::ai::fleet::ledger::Ledger;
use docflow::ai::fleet::{FleetBudget, SharedBudget};
use docflow::blob::connection::BlobConnection;
use docflow::blob::{AzureBlobStore, Blob, BlobError, BlobItem, BlobProperties, BlobStore, ETag};

const ENDPOINT: &str = "https://contoso.openai.azure.com";
const DEPLOYMENT: &str = "gpt-4o-mini";
const CALL: u64 = 500;

/// Azurite, counted: every operation is a storage transaction.
struct Counted {
    inner: AzureBlobStore,
    operations: AtomicU64,
}

#[async_trait]
impl BlobStore for Counted {
    async fn get(&self, c: &str, n: &str) -> Result<Blob, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.get(c, n).await
    }
    async fn properties(&self, c: &str, n: &str) -> Result<Option<BlobProperties>, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.properties(c, n).await
    }
    async fn put(&self, c: &str, n: &str, d: Bytes, t: &str) -> Result<ETag, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.put(c, n, d, t).await
    }
    async fn create_if_absent(
        &self,
        c: &str,
        n: &str,
        d: Bytes,
        t: &str,
    ) -> Result<ETag, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.create_if_absent(c, n, d, t).await
    }
    async fn put_if_match(
        &self,
        c: &str,
        n: &str,
        d: Bytes,
        t: &str,
        e: &ETag,
    ) -> Result<ETag, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.put_if_match(c, n, d, t, e).await
    }
    async fn list(&self, c: &str, p: &str) -> Result<Vec<BlobItem>, BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.list(c, p).await
    }
    async fn delete(&self, c: &str, n: &str) -> Result<(), BlobError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(c, n).await
    }
}

/// What happened, in order: admissions and answers, by instance.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Admitted(usize, Instant),
    Answered(usize, Instant),
}

struct Fleet {
    store: Arc<Counted>,
    events: Arc<Mutex<Vec<Event>>>,
    /// The next answer of this instance is a `429` with this reset.
    refuse: Arc<Mutex<Option<(usize, Duration)>>>,
    started: Instant,
}

impl Fleet {
    fn new(azurite: &Azurite) -> Self {
        let connection = BlobConnection::from_connection_string(&azurite.connection_string());
        let inner = AzureBlobStore::new(&connection.unwrap(), None).unwrap();
        Self {
            store: Arc::new(Counted {
                inner,
                operations: AtomicU64::new(0),
            }),
            events: Arc::default(),
            refuse: Arc::default(),
            started: Instant::now(),
        }
    }

    fn budget(&self, instance: usize, lease: Duration, tpm: Option<u64>) -> Arc<FleetBudget> {
        let shared = SharedBudget {
            blobs: self.store.clone(),
            container: "docflow-state".into(),
            instance: format!("instance-{instance}"),
            lease,
        };
        Arc::new(FleetBudget::start(
            shared,
            ENDPOINT,
            DEPLOYMENT,
            (tpm, None),
            4,
        ))
    }

    /// One instance calling the deployment as fast as its budget admits, until `stop`.
    fn worker(
        &self,
        instance: usize,
        budget: Arc<FleetBudget>,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let events = self.events.clone();
        let refuse = self.refuse.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let reservation = match budget.reserve(CALL, Instant::now()) {
                    Ok(r) => r,
                    Err(wait) => {
                        tokio::time::sleep(
                            wait.clamp(Duration::from_millis(5), Duration::from_millis(100)),
                        )
                        .await;
                        continue;
                    }
                };
                events
                    .lock()
                    .unwrap()
                    .push(Event::Admitted(instance, Instant::now()));
                tokio::time::sleep(Duration::from_millis(30)).await;
                let refused = {
                    let mut r = refuse.lock().unwrap();
                    match *r {
                        Some((i, reset)) if i == instance => {
                            *r = None;
                            Some(reset)
                        }
                        _ => None,
                    }
                };
                // The deployment tells its limits, as OpenAI does.
                let headers = RateHeaders {
                    limit_tokens: Some(600_000),
                    limit_requests: Some(6_000),
                    ..RateHeaders::default()
                };
                let now = Instant::now();
                match refused {
                    Some(reset) => budget.refused(reservation, &headers, Some(reset), now),
                    None => budget.settle(reservation, CALL, &headers, now),
                }
                events.lock().unwrap().push(Event::Answered(instance, now));
            }
        })
    }

    fn admitted(&self, instance: Option<usize>, from: Instant, to: Instant) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| match e {
                Event::Admitted(i, at) => {
                    instance.is_none_or(|x| x == *i) && *at >= from && *at < to
                }
                Event::Answered(..) => false,
            })
            .count()
    }

    async fn ledger(&self) -> Ledger {
        let name = SharedBudget::ledger_name(ENDPOINT, DEPLOYMENT);
        let blob = self.store.inner.get("docflow-state", &name).await.unwrap();
        serde_json::from_slice(&blob.data).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_learn_the_limits_once_and_share_them_by_demand() {
    let azurite = Azurite::start();
    let fleet = Fleet::new(&azurite);
    let stop = Arc::new(AtomicBool::new(false));
    // Shares converge within a lease or so: 4 s leases leave a steady state from 6 s on.
    let lease = Duration::from_secs(4);
    let workers: Vec<_> = (0..3)
        .map(|i| fleet.worker(i, fleet.budget(i, lease, None), stop.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let events = fleet.events.lock().unwrap().clone();
    // One probe: the second admission comes after the first answer.
    let first_answer = events
        .iter()
        .find_map(|e| match e {
            Event::Answered(_, at) => Some(*at),
            Event::Admitted(..) => None,
        })
        .unwrap();
    let admissions: Vec<Instant> = events
        .iter()
        .filter_map(|e| match e {
            Event::Admitted(_, at) => Some(*at),
            Event::Answered(..) => None,
        })
        .collect();
    assert!(
        admissions[1] >= first_answer,
        "a second call before the probe's answer"
    );
    let ledger = fleet.ledger().await;
    assert_eq!(ledger.token_limit, Some(600_000));
    assert_eq!(ledger.source.as_deref(), Some("told"));
    // Over the steady state (after the first leases), the fleet stays within the limit
    // (95 % of 10,000 tokens a second, plus a second's burst per instance) and uses most of it.
    let (from, to) = (
        fleet.started + Duration::from_secs(6),
        fleet.started + Duration::from_secs(12),
    );
    let tokens = fleet.admitted(None, from, to) as f64 * CALL as f64;
    let aim = 600_000.0 * 0.95 / 60.0 * 6.0;
    assert!(
        tokens <= aim + 3.0 * 600_000.0 * 0.95 / 60.0,
        "{tokens} tokens over {aim}"
    );
    assert!(tokens >= 0.7 * aim, "only {tokens} of {aim}");
    // Each instance had its share.
    for i in 0..3 {
        let mine = fleet.admitted(Some(i), from, to) as f64 * CALL as f64;
        assert!(mine >= 0.2 * aim, "instance {i}: {mine} of {aim}");
    }
    // Round trips to storage per call, well below one.
    let calls = admissions.len() as f64;
    let operations = fleet.store.operations.load(Ordering::Relaxed) as f64;
    eprintln!("{calls} calls, {operations} storage operations");
    assert!(
        operations / calls < 0.3,
        "{operations} operations for {calls} calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_instance_holds_them_all_and_a_killed_one_s_share_returns() {
    let azurite = Azurite::start();
    let fleet = Fleet::new(&azurite);
    let stop = Arc::new(AtomicBool::new(false));
    let lease = Duration::from_millis(600);
    let budgets: Vec<_> = (0..3)
        .map(|i| fleet.budget(i, lease, Some(600_000)))
        .collect();
    let mut workers: Vec<_> = budgets
        .iter()
        .enumerate()
        .map(|(i, b)| fleet.worker(i, b.clone(), stop.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Instance 0's next call is refused, with 3 s to wait.
    *fleet.refuse.lock().unwrap() = Some((0, Duration::from_secs(3)));
    let refused_at = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if fleet.refuse.lock().unwrap().is_none() {
            break Instant::now();
        }
    };
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    // The others heard of it at their next renewal (within a lease), and held until the reset.
    let held = fleet.admitted(
        None,
        refused_at + lease + Duration::from_millis(200),
        refused_at + Duration::from_millis(2_800),
    );
    assert_eq!(held, 0, "calls during the backoff");
    // After the reset the instances start again, from empty buckets (each drained for the
    // length of the hold, so that they do not spend banked bursts together).
    assert!(
        fleet.admitted(
            None,
            refused_at + Duration::from_millis(3_100),
            Instant::now()
        ) > 0
    );
    // Instance 2 is killed: its task stops and its budget goes, with no goodbye.
    let killed = workers.remove(2);
    killed.abort();
    drop(budgets);
    let gone = Instant::now();
    tokio::time::sleep(lease * 4).await;
    let ledger = fleet.ledger().await;
    let now = chrono::Utc::now().timestamp_millis();
    let live: Vec<(&String, f64)> = ledger
        .members
        .iter()
        .filter(|(_, m)| m.until > now)
        .map(|(k, m)| (k, m.tokens.unwrap_or(0.0)))
        .collect();
    assert!(
        live.iter().all(|(k, _)| k.as_str() != "instance-2"),
        "{live:?}"
    );
    let shared: f64 = live.iter().map(|(_, t)| t).sum();
    assert!(
        shared >= 0.9 * 600_000.0 * 0.95,
        "the survivors hold {shared}: {live:?}"
    );
    assert!(fleet.admitted(Some(0), gone, Instant::now()) > 0);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
}

/// A store that never answers (a storage account unreachable, a network partition).
struct Hanging;

#[async_trait]
impl BlobStore for Hanging {
    async fn get(&self, _: &str, _: &str) -> Result<Blob, BlobError> {
        std::future::pending().await
    }
    async fn properties(&self, _: &str, _: &str) -> Result<Option<BlobProperties>, BlobError> {
        std::future::pending().await
    }
    async fn put(&self, _: &str, _: &str, _: Bytes, _: &str) -> Result<ETag, BlobError> {
        std::future::pending().await
    }
    async fn create_if_absent(
        &self,
        _: &str,
        _: &str,
        _: Bytes,
        _: &str,
    ) -> Result<ETag, BlobError> {
        std::future::pending().await
    }
    async fn put_if_match(
        &self,
        _: &str,
        _: &str,
        _: Bytes,
        _: &str,
        _: &ETag,
    ) -> Result<ETag, BlobError> {
        std::future::pending().await
    }
    async fn list(&self, _: &str, _: &str) -> Result<Vec<BlobItem>, BlobError> {
        std::future::pending().await
    }
    async fn delete(&self, _: &str, _: &str) -> Result<(), BlobError> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_holds_a_call_no_longer_than_the_budget_s_wait() {
    use docflow::ai::budget::BudgetOptions;
    use docflow::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
    use docflow::ai::{AiProvider, AiRequest, Operation, ProviderError};
    // No model endpoint is needed: the call never gets past the budget.
    let provider = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: "http://127.0.0.1:9/v1".into(),
        },
        auth: Auth::None,
        budget: BudgetOptions {
            max_wait: Duration::from_secs(1),
            ..BudgetOptions::default()
        },
        shared: Some(SharedBudget {
            blobs: Arc::new(Hanging),
            container: "docflow-state".into(),
            instance: "cut-off".into(),
            lease: Duration::from_secs(2),
        }),
        ..OpenAiOptions::default()
    })
    .unwrap();
    let request = AiRequest {
        operation: Operation::Sentiment,
        text: "The storage account is unreachable.".into(),
    };
    // Held about the budget's one-second wait, then handed back to be rescheduled (the ten
    // seconds only catch a call that would hang with its store).
    let outcome = tokio::time::timeout(Duration::from_secs(10), provider.run(&request))
        .await
        .expect("the call came back while the store hangs");
    match outcome {
        Err(ProviderError::RetryAfter { delay, detail }) => {
            assert!(delay <= Duration::from_secs(1), "{delay:?}: {detail}");
        }
        other => panic!("expected a rate-limit answer, got {other:?}"),
    }
}
