//! The fleet's budget in the whole app: `docflow dev --instances 3` (three Functions host
//! instances, three handler processes) with its storage on Azurite, against `fake-llm`
//! enforcing a TPM limit over a sliding window as Azure OpenAI does. Every document completes,
//! the limit is learned once (the first call's answer comes before any second call), almost no
//! call is refused, and the ledger on Azurite names the three instances sharing the
//! deployment. Two separate `docflow dev` processes, each with its own broker, share the budget
//! just as well: what they share is the storage, whatever started them.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::azurite::Azurite;
use common::{free_port, start_dev_with_args};
use docflow::ai::fleet::SharedBudget;
use docflow::ai::fleet::ledger::Ledger;
use docflow::blob::BlobStore;
use docflow::blob::connection::BlobConnection;
use docflow::cli::bench_stack::{document, fake_llm_env};
use docflow::fake_llm::{FakeLlm, FakeLlmOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const DOCUMENTS: usize = 24;

/// 30,000 tokens a (scaled) minute; a minute lasts 6 s.
fn endpoint() -> FakeLlm {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    FakeLlm::start(
        tokio::net::TcpListener::from_std(listener).unwrap(),
        FakeLlmOptions {
            tpm: 30_000,
            rpm: 3_000,
            time_scale: 10.0,
            ..FakeLlmOptions::default()
        },
        CancellationToken::new(),
    )
}

/// The settings of an app calling `llm`, its storage on `azurite`.
fn app_env(llm: &FakeLlm, azurite: &Azurite) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&str, String)> = fake_llm_env(llm.port())
        .into_iter()
        .filter(|(k, _)| k != "RUST_LOG")
        .map(|(k, v)| (leak(k), v))
        .collect();
    env.push(("DOCFLOW_BLOB_CONNECTION", "DocflowStorage".into()));
    env.push(("DocflowStorage", azurite.connection_string()));
    env.push(("DOCFLOW_AI_BUDGET_LEASE_MS", "1000".into()));
    env
}

/// Submits documents `range` to the app at `api`; their ids.
async fn submit(http: &reqwest::Client, api: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in range {
        let r = http
            .post(format!(
                "{api}/documents?analyses=summarize,classify,sentiment"
            ))
            .header("content-type", "text/plain")
            .body(document(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids
}

/// Waits until every document of `ids` at `api` is completed.
async fn all_completed(http: &reqwest::Client, api: &str, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(180);
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        common::completed(http, &format!("{api}/documents/{id}"), left).await;
    }
}

/// What `llm` saw: the limit learned once (the second call starts after the first one's
/// answer) and almost no call refused. The fake's window is 6 s and the budget aims at 95 %
/// of it with a second's burst: a rare 429 can happen, as with one instance; a storm cannot.
fn learned_once_with_few_refusals(llm: &FakeLlm) {
    let stats = llm.stats();
    let mut requests = stats.requests.clone();
    requests.sort_by_key(|r| r.at_ms);
    assert!(
        requests[1].at_ms >= requests[0].at_ms + requests[0].latency_ms,
        "{:?}",
        &requests[..2]
    );
    let calls = requests.len() as f64;
    let refused = stats.rate_limited as f64;
    assert!(
        refused / calls <= 0.03,
        "{refused} of {calls} calls refused"
    );
    eprintln!("{calls} calls, {refused} refused");
}

/// The deployment's ledger on `azurite`: the limit as the endpoint told it.
async fn ledger(azurite: &Azurite, llm: &FakeLlm) -> Ledger {
    let blobs = docflow::blob::AzureBlobStore::new(
        &BlobConnection::from_connection_string(&azurite.connection_string()).unwrap(),
        None,
    )
    .unwrap();
    let name = SharedBudget::ledger_name(
        &format!("http://127.0.0.1:{}/v1", llm.port()),
        "gpt-4o-mini",
    );
    let ledger: Ledger =
        serde_json::from_slice(&blobs.get("state", &name).await.unwrap().data).unwrap();
    assert_eq!(ledger.source.as_deref(), Some("told"), "{ledger:?}");
    assert_eq!(
        ledger.token_limit,
        Some(300_000),
        "30,000 a scaled minute is 300,000 a real one"
    );
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_deployment_s_budget_through_azurite() {
    let azurite = Azurite::start();
    let llm = endpoint();
    let data = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let _dev = start_dev_with_args(
        data.path(),
        ports,
        &app_env(&llm, &azurite),
        &["--instances", "3"],
        Stdio::null(),
    );
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{}/api", ports.0);
    let ids = submit(&http, &api, 0..DOCUMENTS).await;
    all_completed(&http, &api, &ids).await;
    learned_once_with_few_refusals(&llm);
    let ledger = ledger(&azurite, &llm).await;
    assert_eq!(ledger.members.len(), 3, "{:?}", ledger.members.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_separate_processes_on_the_same_storage_share_one_budget() {
    let azurite = Azurite::start();
    let llm = endpoint();
    let http = reqwest::Client::new();
    // Two `docflow dev` processes, each with its own data folder and broker: nothing in
    // common but the storage account and the deployment.
    let mut apps = Vec::new();
    for _ in 0..2 {
        let data = tempfile::tempdir().unwrap();
        let ports = (free_port(), free_port(), free_port());
        let dev = start_dev_with_args(
            data.path(),
            ports,
            &app_env(&llm, &azurite),
            &[],
            Stdio::null(),
        );
        apps.push((data, dev, format!("http://127.0.0.1:{}/api", ports.0)));
    }
    let mut submitted = Vec::new();
    for (i, (_, _, api)) in apps.iter().enumerate() {
        let half = DOCUMENTS / 2;
        submitted.push(submit(&http, api, i * half..(i + 1) * half).await);
    }
    for ((_, _, api), ids) in apps.iter().zip(&submitted) {
        all_completed(&http, api, ids).await;
    }
    learned_once_with_few_refusals(&llm);
    let ledger = ledger(&azurite, &llm).await;
    assert_eq!(
        ledger.members.len(),
        2,
        "each process is a member of the one ledger: {:?}",
        ledger.members.keys()
    );
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
