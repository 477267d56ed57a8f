//! Hostile input against every process docflow runs: the broker's REST API (`docflow broker`),
//! the handler (`docflow serve`) and the local host (`docflow dev`). Each bad value gets a clear
//! 4xx, never a panic or a dropped connection, and every process is still serving afterwards.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, free_port};
use docflow::servicebus::connection::{EMULATOR_KEY, EMULATOR_KEY_NAME};
use docflow::servicebus::sas;
use reqwest::StatusCode;

fn docflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docflow"));
    for var in [
        "FUNCTIONS_CUSTOMHANDLER_PORT",
        "FUNCTIONS_HTTPWORKER_PORT",
        "DOCFLOW_AI_PROVIDER",
        "DOCFLOW_BLOB_CONNECTION",
    ] {
        command.env_remove(var);
    }
    command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Waits until `port` accepts connections (the process has started listening).
async fn listening(port: u16, process: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = process.0.try_wait().unwrap() {
            panic!("the process exited: {status}");
        }
        assert!(Instant::now() < deadline, "port {port} never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token(resource: &str) -> String {
    let expiry = chrono::Utc::now().timestamp() as u64 + 3_600;
    sas::sign(resource, EMULATOR_KEY_NAME, EMULATOR_KEY, expiry)
}

struct Case<'a> {
    what: &'a str,
    request: reqwest::RequestBuilder,
    expect: StatusCode,
}

async fn check(cases: Vec<Case<'_>>) {
    for case in cases {
        let response = case
            .request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer ({e})", case.what));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, case.expect, "{}: {body}", case.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_answers_bad_values_with_400s_and_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Running(
        docflow()
            .args(["broker", "--port", &port.to_string(), "--config"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/servicebus.config.json"
            ))
            .arg("--data-dir")
            .arg(data.path())
            .spawn()
            .unwrap(),
    );
    listening(port, &mut broker).await;
    let base = format!("http://127.0.0.1:{port}");
    let auth = token(&format!("{base}/"));
    let http = reqwest::Client::new();
    let send = |props: &str| {
        http.post(format!("{base}/audit/messages"))
            .header("Authorization", &auth)
            .header("BrokerProperties", props)
            .body("x")
    };
    let receive = |query: &str| {
        http.post(format!("{base}/audit/messages/head{query}"))
            .header("Authorization", &auth)
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bad = StatusCode::BAD_REQUEST;
    check(vec![
        Case {
            what: "a negative TimeToLiveTimeSpan",
            request: send(r#"{"TimeToLiveTimeSpan":"00:00:-1"}"#),
            expect: bad,
        },
        Case {
            what: "an overflowing TimeToLiveTimeSpan",
            request: send(r#"{"TimeToLiveTimeSpan":"18446744073709551615.00:00:00"}"#),
            expect: bad,
        },
        Case {
            what: "TimeToLiveTimeSpan with minutes over 59",
            request: send(r#"{"TimeToLiveTimeSpan":"00:99:00"}"#),
            expect: bad,
        },
        Case {
            what: "a negative TimeToLive",
            request: send(r#"{"TimeToLive":-1}"#),
            expect: bad,
        },
        Case {
            what: "a huge TimeToLive",
            request: send(r#"{"TimeToLive":1e308}"#),
            expect: bad,
        },
        Case {
            what: "TimeToLive as text",
            request: send(r#"{"TimeToLive":"NaN"}"#),
            expect: bad,
        },
        Case {
            what: "a malformed ScheduledEnqueueTimeUtc",
            request: send(r#"{"ScheduledEnqueueTimeUtc":"the day after tomorrow"}"#),
            expect: bad,
        },
        Case {
            what: "BrokerProperties that are not JSON",
            request: send("{"),
            expect: bad,
        },
        Case {
            what: "BrokerProperties nested ten thousand deep",
            request: send(&deep),
            expect: bad,
        },
        Case {
            what: "a body over the size limit",
            request: http
                .post(format!("{base}/audit/messages"))
                .header("Authorization", &auth)
                .body(vec![b'x'; 4 * 1024 * 1024]),
            expect: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            what: "a batch that is not JSON",
            request: http
                .post(format!("{base}/audit/messages"))
                .header("Authorization", &auth)
                .header("Content-Type", docflow::broker::rest::BATCH_CONTENT_TYPE)
                .body("[{"),
            expect: bad,
        },
        Case {
            what: "a negative receive timeout",
            request: receive("?timeout=-1"),
            expect: bad,
        },
        Case {
            what: "a receive timeout in exponent form",
            request: receive("?timeout=1e3"),
            expect: bad,
        },
        Case {
            what: "a receive timeout that is not a number",
            request: receive("?timeout=soon"),
            expect: bad,
        },
        Case {
            what: "a clock advance past any date",
            request: http
                .post(format!("{base}/$local/clock?advance=P99999999999999999D"))
                .header("Authorization", &auth),
            expect: bad,
        },
        Case {
            what: "a negative clock advance",
            request: http
                .post(format!("{base}/$local/clock?advance=PT-1S"))
                .header("Authorization", &auth),
            expect: bad,
        },
        Case {
            what: "a NaN clock advance",
            request: http
                .post(format!("{base}/$local/clock?advance=PTNaNS"))
                .header("Authorization", &auth),
            expect: bad,
        },
        Case {
            what: "a token with an overflowing expiry and a broken signature",
            request: http
                .post(format!("{base}/audit/messages"))
                .header(
                    "Authorization",
                    "SharedAccessSignature sr=x&sig=%ZZ&se=99999999999999999999999&skn=a",
                )
                .body("x"),
            expect: StatusCode::UNAUTHORIZED,
        },
        Case {
            what: "a token without fields",
            request: http
                .post(format!("{base}/audit/messages"))
                .header("Authorization", "SharedAccessSignature &&&==")
                .body("x"),
            expect: StatusCode::UNAUTHORIZED,
        },
    ])
    .await;

    // Far-future values that are valid are accepted, and a receive does not trip over them.
    check(vec![
        Case {
            what: "a schedule at the end of time",
            request: send(r#"{"ScheduledEnqueueTimeUtc":"Fri, 31 Dec 9999 23:59:59 GMT"}"#),
            expect: StatusCode::CREATED,
        },
        Case {
            what: "a TimeToLive of a million years",
            request: send(r#"{"TimeToLiveTimeSpan":"365000000.00:00:00"}"#),
            expect: StatusCode::CREATED,
        },
        Case {
            what: "an overflowing receive timeout with a message waiting",
            request: receive("?timeout=99999999999999999999999999"),
            expect: StatusCode::CREATED,
        },
        Case {
            what: "a receive that waits for the scheduled message",
            request: receive("?timeout=1"),
            expect: StatusCode::NO_CONTENT,
        },
    ])
    .await;

    // Microsoft's legacy REST client signs the whole request URI, query string included.
    let url = format!("{base}/audit/messages/head?timeout=1");
    let legacy = token(&url);
    check(vec![Case {
        what: "a token signed over the URI with its query",
        request: http.post(&url).header("Authorization", legacy),
        expect: StatusCode::NO_CONTENT,
    }])
    .await;

    // Still serving.
    check(vec![Case {
        what: "a plain send afterwards",
        request: send("{}"),
        expect: StatusCode::CREATED,
    }])
    .await;
    assert!(broker.0.try_wait().unwrap().is_none(), "the broker exited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_answers_bad_requests_and_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut handler = Running(
        docflow()
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("DOCFLOW_BLOB_DIR", data.path().join("blobs"))
            .env("DOCFLOW_MAX_REQUEST_BYTES", "1048576")
            .spawn()
            .unwrap(),
    );
    listening(port, &mut handler).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let invoke = |function: &str, body: Vec<u8>| {
        http.post(format!("{base}/{function}"))
            .header("Content-Type", "application/json")
            .body(body)
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let bad = StatusCode::BAD_REQUEST;
    check(vec![
        Case {
            what: "an invocation that is not JSON",
            request: invoke("ProcessDocument", b"not json".to_vec()),
            expect: bad,
        },
        Case {
            what: "an invocation nested a hundred thousand deep",
            request: invoke("ProcessDocument", deep),
            expect: bad,
        },
        Case {
            what: "an invocation over DOCFLOW_MAX_REQUEST_BYTES",
            request: invoke("ProcessDocument", vec![b' '; 2 * 1024 * 1024]),
            expect: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            what: "an invocation whose Data is a number",
            request: invoke(
                "ProcessDocument",
                br#"{"Data": 5, "Metadata": {}}"#.to_vec(),
            ),
            expect: bad,
        },
        Case {
            what: "a function that does not exist",
            request: invoke("NoSuchFunction", b"{}".to_vec()),
            expect: StatusCode::NOT_FOUND,
        },
        Case {
            what: "a forwarded submission over its limit",
            request: http
                .post(format!("{base}/api/documents"))
                .header("Content-Type", "text/plain")
                .body(vec![b'a'; 12 * 1024 * 1024]),
            expect: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            what: "a forwarded submission in an unknown charset",
            request: http
                .post(format!("{base}/api/documents"))
                .header("Content-Type", "text/plain; charset=klingon")
                .body(vec![0xff, 0xfe, 0x00]),
            expect: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            what: "a forwarded submission of invalid UTF-8",
            request: http
                .post(format!("{base}/api/documents"))
                .header("Content-Type", "text/plain")
                .body(vec![0xff, 0xfe, 0x00]),
            expect: bad,
        },
    ])
    .await;
    check(vec![Case {
        what: "the readiness probe afterwards",
        request: http.get(format!("{base}/")),
        expect: StatusCode::OK,
    }])
    .await;
    assert!(
        handler.0.try_wait().unwrap().is_none(),
        "the handler exited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_host_limits_bodies_and_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let mut dev = Running(
        docflow()
            .args([
                "dev",
                "--app-root",
                env!("CARGO_MANIFEST_DIR"),
                "--http-port",
                &http_port.to_string(),
                "--broker-port",
                "0",
                "--dashboard-port",
                "0",
                "--data-dir",
            ])
            .arg(data.path())
            .env("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "1048576")
            .spawn()
            .unwrap(),
    );
    listening(http_port, &mut dev).await;
    let api = format!("http://127.0.0.1:{http_port}/api/documents");
    let http = reqwest::Client::new();
    check(vec![
        Case {
            what: "a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT",
            request: http
                .post(&api)
                .header("Content-Type", "text/plain")
                .body(vec![b'a'; 2 * 1024 * 1024]),
            expect: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            what: "a chunked body over the limit",
            request: http.post(&api).header("Content-Type", "text/plain").body(
                reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..40).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 64 * 1024])),
                )),
            ),
            expect: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            what: "analyses that are not task kinds",
            request: http
                .post(format!("{api}?analyses=%ZZ,drop-tables"))
                .header("Content-Type", "text/plain")
                .body("text"),
            expect: StatusCode::BAD_REQUEST,
        },
        Case {
            what: "a document id with a path in it",
            request: http.get(format!("{api}/..%2F..%2Fetc%2Fpasswd")),
            expect: StatusCode::NOT_FOUND,
        },
    ])
    .await;
    check(vec![Case {
        what: "a listing afterwards",
        request: http.get(&api),
        expect: StatusCode::OK,
    }])
    .await;
    assert!(dev.0.try_wait().unwrap().is_none(), "docflow dev exited");
}
