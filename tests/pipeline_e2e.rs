//! The document pipeline end to end under the local host: documents submitted over HTTP, the
//! real functions on the embedded broker, a scripted OpenAI-compatible endpoint that fails on
//! purpose, callbacks and audit records checked at the end.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::azurite::Azurite;
use common::pipeline::{Call, CallbackServer, FakeLlm, PipelineApp, pdf, provider_env};
use docflow::blob::BlobStore;
use docflow::pipeline::webhook;
use serde_json::{Value, json};

const SECRET: &str = "test-callback-secret";

fn settings(llm: &FakeLlm) -> Vec<(&'static str, String)> {
    provider_env(
        llm,
        &[
            ("DOCFLOW_CALLBACK_SECRET", SECRET),
            ("DOCFLOW_CALLBACK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("DOCFLOW_RETRY_BASE_MS", "200"),
            ("DOCFLOW_MAX_INLINE_RETRY_WAIT_SECS", "0"),
            ("DOCFLOW_MAX_TRANSIENT_RETRIES", "2"),
        ],
    )
}

async fn start(env: &[(&'static str, String)]) -> PipelineApp {
    PipelineApp::start_with(env, None).await
}

fn text_of(n: usize) -> String {
    format!(
        "Document DOC-{n:02}. Contoso Ltd sent invoice {n} to Fabrikam Inc on March 3, 2025. \
         The total of $1,200.00 is due within thirty days. Thank you for your business."
    )
}

fn multipart(name: &str, text: &str, fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "docflow-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
    );
    for (k, v) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

/// Deletes the stored payload whose text contains `marker` (found by scanning the store).
async fn delete_payload(store: &dyn BlobStore, marker: &str) -> bool {
    for item in store.list("documents", "").await.unwrap_or_default() {
        let Ok(blob) = store.get("documents", &item.name).await else {
            continue;
        };
        if String::from_utf8_lossy(&blob.data).contains(marker) {
            return store.delete("documents", &item.name).await.is_ok();
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_documents_reach_a_terminal_state_and_three_fail_with_reasons() {
    twenty_documents(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_documents_on_azure_blob_storage_via_azurite() {
    let azurite = Azurite::start();
    twenty_documents(vec![
        ("DOCFLOW_BLOB_CONNECTION", "DocflowStorage".into()),
        ("DocflowStorage", azurite.connection_string()),
    ])
    .await;
}

async fn twenty_documents(storage: Vec<(&'static str, String)>) {
    let store: Arc<Mutex<Option<docflow::config::Settings>>> = Arc::new(Mutex::new(None));
    let deleted = Arc::new(Mutex::new(false));
    let script = {
        let store = store.clone();
        let deleted = deleted.clone();
        Arc::new(move |call: &Call| {
            if call.kind == "sentiment" && call.text.contains("DOC-03") {
                return Some((
                    400,
                    vec![],
                    json!({"error": {"code": "content_filter", "message": "The response was filtered due to the prompt triggering the content management policy."}}),
                ));
            }
            if call.kind == "classify" && call.text.contains("DOC-07") {
                return Some((
                    200,
                    vec![],
                    json!({"model": "fake-chat", "choices": [{"message": {"content": "I would rather not say."}, "finish_reason": "stop"}]}),
                ));
            }
            if call.text.contains("DOC-11") {
                // The payload disappears while the document is being processed: this call
                // fails transiently, and its retry finds the content gone.
                let mut done = deleted.lock().unwrap();
                if !*done {
                    // On a thread of its own, so that the test's runtime keeps serving.
                    let settings = store.lock().unwrap().clone().unwrap();
                    *done = std::thread::spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        let store = docflow::app::blob_store(&settings).unwrap();
                        runtime.block_on(delete_payload(store.as_ref(), "DOC-11"))
                    })
                    .join()
                    .unwrap();
                    return Some((503, vec![], json!({"error": {"message": "overloaded"}})));
                }
            }
            None
        })
    };
    let llm = FakeLlm::start(script, Duration::from_millis(5)).await;
    let callbacks = CallbackServer::start().await;
    let mut env = settings(&llm);
    env.extend(storage.iter().cloned());
    let app = start(&env).await;
    *store.lock().unwrap() = Some(app.settings.clone());

    let mut ids = Vec::new();
    for n in 0..20 {
        let text = text_of(n);
        let query = format!("?callbackUrl={}", callbacks.url);
        let (status, headers, body) = match n {
            0..=4 => {
                app.submit(&query, &[("content-type", "text/plain")], text)
                    .await
            }
            5..=8 => {
                app.submit(
                    &query,
                    &[("content-type", "text/markdown; charset=utf-8")],
                    format!("# Invoice\n\n{text}"),
                )
                .await
            }
            9..=13 => {
                let body = json!({"text": text, "callbackUrl": callbacks.url, "filename": format!("doc-{n}.json")});
                app.submit(
                    "",
                    &[("content-type", "application/json")],
                    body.to_string(),
                )
                .await
            }
            14..=18 => {
                let (content_type, body) = multipart(
                    &format!("doc-{n}.txt"),
                    &text,
                    &[("callbackUrl", &callbacks.url)],
                );
                app.submit("", &[("content-type", &content_type)], body)
                    .await
            }
            _ => {
                app.submit(
                    &query,
                    &[("content-type", "application/pdf")],
                    pdf(Some(&text.replace(['(', ')'], ""))),
                )
                .await
            }
        };
        assert_eq!(status, 202, "document {n}: {body}");
        let id = body["id"].as_str().unwrap().to_string();
        assert_eq!(
            headers["location"].to_str().unwrap(),
            format!("/api/documents/{id}")
        );
        assert!(headers.contains_key("retry-after"));
        assert_eq!(
            headers["x-correlation-id"].to_str().unwrap(),
            body["correlationId"].as_str().unwrap()
        );
        ids.push(id);
    }

    let mut docs = Vec::new();
    for id in &ids {
        docs.push(app.wait_final(id, Duration::from_secs(120)).await);
    }
    let failing = [
        (3, "sentiment", "ContentFiltered"),
        (7, "classify", "InvalidModelOutput"),
        (11, "", "ContentNotFound"),
    ];
    for (n, doc) in docs.iter().enumerate() {
        match failing.iter().find(|(m, _, _)| *m == n) {
            None => {
                assert_eq!(doc["status"], "completed", "DOC-{n:02}: {doc:#}");
                for kind in [
                    "summarize",
                    "classify",
                    "extract_entities",
                    "sentiment",
                    "embed",
                ] {
                    assert_eq!(doc["tasks"][kind]["status"], "succeeded", "{doc:#}");
                    assert_eq!(
                        llm.calls_for(kind, &format!("DOC-{n:02}")),
                        1,
                        "DOC-{n:02} {kind} called once"
                    );
                }
                assert!(
                    doc["tasks"]["summarize"]["output"]["summary"]
                        .as_str()
                        .unwrap()
                        .contains("DOC")
                );
                assert!(doc["usage"]["totalTokens"].as_u64().unwrap() > 0);
                assert_eq!(doc["tasks"]["classify"]["model"], "fake-chat");
            }
            Some((_, kind, reason)) => {
                assert!(
                    matches!(doc["status"].as_str(), Some("partial" | "failed")),
                    "DOC-{n:02}: {doc:#}"
                );
                let failed = doc["failed"].as_array().unwrap();
                let hit = failed
                    .iter()
                    .find(|f| f["reason"] == *reason && (kind.is_empty() || f["kind"] == *kind))
                    .unwrap_or_else(|| panic!("DOC-{n:02} should fail with {reason}: {doc:#}"));
                let task = &doc["tasks"][hit["kind"].as_str().unwrap()];
                assert_eq!(task["error"]["deadLettered"], true, "{task:#}");
                assert_eq!(
                    task["error"]["deadLetterReason"],
                    "MaxDeliveryCountExceeded"
                );
                for kind in [
                    "summarize",
                    "classify",
                    "extract_entities",
                    "sentiment",
                    "embed",
                ] {
                    if doc["tasks"][kind]["status"] == "succeeded" {
                        assert_eq!(
                            llm.calls_for(kind, &format!("DOC-{n:02}")),
                            1,
                            "DOC-{n:02} {kind}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        *deleted.lock().unwrap(),
        "the payload of DOC-11 was deleted mid-flight"
    );
    // The PDF's text was extracted.
    assert_eq!(docs[19]["contentType"], "application/pdf");

    // The dead-letter queue lists the failed tasks, with their task ids as message ids.
    let connection =
        docflow::servicebus::Namespace::emulator_connection_string(app.host.broker_port());
    let dlq_list = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_docflow"))
            .args([
                "dlq",
                "--connection",
                &connection,
                "list",
                "ai-tasks",
                "--json",
            ])
            .args(extra)
            .env("DOCFLOW_BLOB_DIR", app.data.path().join("blobs"))
            .envs(storage.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let listed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        listed.as_array().unwrap().clone()
    };
    let listed = dlq_list(&[]);
    for (n, kind, reason) in failing {
        let id = &ids[n];
        let entry = listed
            .iter()
            .find(|e| {
                let message = e["messageId"].as_str().unwrap_or_default();
                message.starts_with(id.as_str()) && (kind.is_empty() || message.contains(kind))
            })
            .unwrap_or_else(|| panic!("DOC-{n:02} in the DLQ: {listed:#?}"));
        assert_eq!(
            entry["reason"], reason,
            "the real reason is joined in: {entry:#}"
        );
        assert_eq!(entry["deadLetterReason"], "MaxDeliveryCountExceeded");
    }
    assert_eq!(
        dlq_list(&["--reason", "ContentFiltered"]).len(),
        1,
        "--reason filters on it"
    );

    // Every callback once, signed; audit records for every submission and completion.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit = app.blob_names("audit").await;
        let received = callbacks.received();
        if received.len() >= 20 && audit.len() >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "callbacks {} audit {}",
            received.len(),
            audit.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = callbacks.received();
    assert_eq!(received.len(), 20, "each callback exactly once");
    let now = chrono::Utc::now().timestamp();
    let mut notified: Vec<String> = received
        .iter()
        .map(|c| {
            assert!(webhook::verify(
                SECRET.as_bytes(),
                c.signature.as_deref().unwrap(),
                &c.body,
                now,
                300
            ));
            let body: Value = serde_json::from_slice(&c.body).unwrap();
            body["documentId"].as_str().unwrap().to_string()
        })
        .collect();
    notified.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(notified, expected);
    let audit = app.blob_names("audit").await;
    for id in &ids {
        assert_eq!(
            audit
                .iter()
                .filter(|n| n.ends_with(&format!("DocumentSubmitted-{id}.json")))
                .count(),
            1
        );
        assert_eq!(
            audit
                .iter()
                .filter(|n| n.ends_with(&format!("AnalysisCompleted-{id}.json")))
                .count(),
            1
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_reschedule_tasks_instead_of_redelivering_them() {
    let started = Instant::now();
    let script = Arc::new(move |_call: &Call| {
        (started.elapsed() < Duration::from_secs(3)).then(|| {
            (
                429,
                vec![("retry-after".to_string(), "2".to_string())],
                json!({"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}}),
            )
        })
    });
    let llm = FakeLlm::start(script, Duration::ZERO).await;
    // A budget per process, so that every task meets a 429 and is rescheduled: the fleet's
    // budget would hold all but the first call until the reset (tests/fleet_budget.rs).
    let mut env = settings(&llm);
    env.push(("DOCFLOW_AI_BUDGET_SCOPE", "process".into()));
    let app = start(&env).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, _, body) = app
            .submit(
                "?analyses=summarize,sentiment",
                &[("content-type", "text/plain")],
                text_of(n),
            )
            .await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let broker = app.host.context().broker.clone();
    let mut saw_scheduled = 0;
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        saw_scheduled = saw_scheduled.max(broker.counts("ai-tasks").await.unwrap().scheduled);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_scheduled > 0,
        "rate-limited tasks wait as scheduled copies"
    );
    for id in &ids {
        let doc = app.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(doc["status"], "completed", "{doc:#}");
        for kind in ["summarize", "sentiment"] {
            let attempts = doc["tasks"][kind]["attempts"].as_u64().unwrap();
            assert!(attempts >= 2, "{kind} was retried: {doc:#}");
        }
    }
    let counts = broker.counts("ai-tasks").await.unwrap();
    assert_eq!(counts.dead_lettered, 0, "a rate limit never dead-letters");
    for n in 0..3 {
        for kind in ["summarize", "sentiment"] {
            let calls = llm.calls_for(kind, &format!("DOC-{n:02}"));
            assert!(
                (2..=4).contains(&calls),
                "no tight loop: DOC-{n:02} {kind} called {calls} times"
            );
        }
    }
    app.stop().await;
}

fn long_document(name: &str, paragraphs: usize) -> String {
    (1..=paragraphs)
        .map(|p| {
            format!(
                "{name}-P{p} opens this paragraph. It carries enough words to fill most of a chunk on \
                 its own, so that each chunk holds one paragraph of the document."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The paragraph markers in the new chunk of a refine call (after the running summary).
fn chunk_markers(call: &Call, name: &str) -> Vec<usize> {
    let chunk = call
        .text
        .rsplit("The document continues:\n")
        .next()
        .unwrap();
    chunk
        .match_indices(&format!("{name}-P"))
        .filter_map(|(i, m)| {
            chunk[i + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_documents_are_summarised_chunk_by_chunk_in_order() {
    let llm = FakeLlm::start(Arc::new(|_: &Call| None), Duration::from_millis(150)).await;
    let mut env = settings(&llm);
    env.push(("DOCFLOW_CONTEXT_TOKENS", "45".into()));
    let app = start(&env).await;
    let mut ids = Vec::new();
    for name in ["ALPHA", "BETA"] {
        let (status, _, body) = app
            .submit(
                "?analyses=summarize,embed",
                &[("content-type", "text/plain")],
                long_document(name, 6),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let doc = app.wait_final(id, Duration::from_secs(90)).await;
        assert_eq!(doc["status"], "completed", "{doc:#}");
        let (_, full) = app.get(id, "?include=embed").await;
        let chunks = full["tasks"]["embed"]["output"]["chunks"]
            .as_array()
            .unwrap();
        assert_eq!(chunks.len(), 6, "one vector per chunk: {full:#}");
        assert_eq!(chunks[0]["start"], 0);
        assert!(
            doc["tasks"]["embed"]["output"].is_null(),
            "embeddings are not inlined by default"
        );
        assert!(
            doc["tasks"]["embed"]["resultUrl"]
                .as_str()
                .unwrap()
                .ends_with("?include=embed")
        );
    }
    let calls: Vec<Call> = llm
        .calls()
        .into_iter()
        .filter(|c| c.kind == "summarize")
        .collect();
    let mut order = Vec::new();
    for name in ["ALPHA", "BETA"] {
        let steps: Vec<usize> = calls
            .iter()
            .filter(|c| !chunk_markers(c, name).is_empty())
            .map(|c| chunk_markers(c, name)[0])
            .collect();
        assert_eq!(
            steps,
            (1..=6).collect::<Vec<_>>(),
            "{name}'s chunks in order, each once"
        );
        order.push(
            calls
                .iter()
                .enumerate()
                .filter(|(_, c)| !chunk_markers(c, name).is_empty())
                .map(|(i, _)| i)
                .collect::<Vec<_>>(),
        );
    }
    let (alpha, beta) = (&order[0], &order[1]);
    assert!(
        beta.iter()
            .any(|b| alpha.first() < Some(b) && Some(b) < alpha.last()),
        "the two documents' chunks interleave: {alpha:?} {beta:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_submissions_leave_nothing_behind() {
    let app = PipelineApp::start(&[("DOCFLOW_MAX_SUBMISSION_BYTES", "2000")]).await;
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "?maxWords=0",
            "text/plain",
            b"Hello there.".to_vec(),
            400,
            "maxWords",
        ),
        (
            "?analyses=translate",
            "text/plain",
            b"Hello there.".to_vec(),
            400,
            "analyses",
        ),
        ("", "application/zip", b"PK".to_vec(), 415, "Content-Type"),
        ("", "image/png", b"\x89PNG".to_vec(), 422, "body"),
        ("", "text/plain", vec![b'a'; 2001], 413, "body"),
        ("", "text/plain", b"caf\xe9 au lait".to_vec(), 400, "body"),
        ("", "text/plain", Vec::new(), 400, "body"),
        ("", "application/pdf", pdf(None), 422, "body"),
        (
            "",
            "application/json",
            b"{\"text\": 42}".to_vec(),
            400,
            "text",
        ),
    ];
    for (query, content_type, body, status, field) in cases {
        let (got, _, answer) = app
            .submit(query, &[("content-type", content_type)], body)
            .await;
        assert_eq!(got, status, "{content_type} {query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().len() > 5);
    }
    let broker = app.host.context().broker.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for container in ["documents", "state", "results", "audit"] {
        let names = app.blob_names(container).await;
        assert!(names.is_empty(), "{container}: {names:?}");
    }
    for entity in ["documents/subscriptions/analyze", "ai-tasks", "audit"] {
        let counts = broker.counts(entity).await.unwrap();
        assert_eq!(
            (counts.active, counts.scheduled, counts.dead_lettered),
            (0, 0, 0),
            "{entity}"
        );
    }
    // A real PDF with text is accepted, and Latin-1 text when declared.
    let (status, _, body) = app
        .submit(
            "",
            &[("content-type", "application/pdf")],
            pdf(Some("Invoice from Contoso Ltd")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let doc = app
        .wait_final(body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(doc["status"], "completed");
    let (status, _, body) = app
        .submit(
            "",
            &[("content-type", "text/plain; charset=iso-8859-1")],
            b"Caf\xe9 cr\xe8me, merci.".to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, missing) = app.get("no-such-document", "").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "DocumentNotFound");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_starts_one_pipeline_run() {
    let app = PipelineApp::start(&[]).await;
    let headers = [
        ("content-type", "text/plain"),
        ("idempotency-key", "order-17"),
    ];
    let (first, _, a) = app.submit("", &headers, "Please process this once.").await;
    let (second, _, b) = app.submit("", &headers, "Please process this once.").await;
    assert_eq!((first, second), (202, 202));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["correlationId"], b["correlationId"]);
    assert_eq!(b["replayed"], true);
    let (conflict, _, c) = app.submit("", &headers, "A different document.").await;
    assert_eq!(conflict, 409, "{c}");
    assert_eq!(c["error"]["field"], "Idempotency-Key");
    let id = a["id"].as_str().unwrap();
    app.wait_final(id, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, d) = app.submit("", &headers, "Please process this once.").await;
    assert_eq!(status, 202);
    assert_eq!(d["id"], a["id"]);
    assert_eq!(
        d["status"], "completed",
        "a replay after completion reports the document"
    );
    let list: Value = reqwest::get(format!("{}/documents", app.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["documents"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(app.blob_names("documents").await.len(), 1);
    let audit = app.blob_names("audit").await;
    assert_eq!(
        audit
            .iter()
            .filter(|n| n.contains("DocumentSubmitted"))
            .count(),
        1,
        "{audit:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_loopback_are_refused_unless_allowed() {
    let callbacks = CallbackServer::start().await;
    let app = PipelineApp::start(&[("DOCFLOW_CALLBACK_SECRET", SECRET)]).await;
    let (status, _, body) = app
        .submit(
            &format!("?analyses=sentiment&callbackUrl={}", callbacks.url),
            &[("content-type", "text/plain")],
            "Great service!",
        )
        .await;
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap();
    app.wait_final(id, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc = loop {
        let (_, doc) = app.get(id, "").await;
        if doc["notification"]["status"] == "refused" {
            break doc;
        }
        assert!(Instant::now() < deadline, "{doc:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        doc["notification"]["lastError"]
            .as_str()
            .unwrap()
            .contains("DOCFLOW_CALLBACK_ALLOW_PRIVATE_NETWORKS")
    );
    let broker = app.host.context().broker.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker
        .counts("analysis-completed/subscriptions/notify")
        .await
        .unwrap()
        .dead_lettered
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the refused callback ends in the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(callbacks.received().is_empty());
    app.stop().await;

    let app = PipelineApp::start(&[
        ("DOCFLOW_CALLBACK_SECRET", SECRET),
        ("DOCFLOW_CALLBACK_ALLOW_PRIVATE_NETWORKS", "true"),
    ])
    .await;
    let (_, _, body) = app
        .submit(
            &format!("?analyses=sentiment&callbackUrl={}", callbacks.url),
            &[("content-type", "text/plain")],
            "Great service!",
        )
        .await;
    let id = body["id"].as_str().unwrap();
    app.wait_final(id, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while callbacks.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the allowed callback is delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let callback = &callbacks.received()[0];
    assert!(webhook::verify(
        SECRET.as_bytes(),
        callback.signature.as_deref().unwrap(),
        &callback.body,
        chrono::Utc::now().timestamp(),
        300
    ));
    let body: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(body["documentId"], id);
    assert_eq!(body["status"], "completed");
    app.stop().await;
}
