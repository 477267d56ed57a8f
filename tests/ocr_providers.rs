//! The two OCR providers: Azure AI Document Intelligence against a scripted endpoint that
//! answers as the service does, and Tesseract on scans rendered here.
//!
//! The Document Intelligence answers in `tests/fixtures/document-intelligence/` follow the
//! shapes of Microsoft's REST API description (Azure/azure-rest-api-specs,
//! `specification/ai/data-plane/DocumentIntelligence/stable/2024-11-30/DocumentIntelligence.json`)
//! and its examples; each fixture names the example it follows where it is used.
//!
//! The Tesseract tests need `tesseract`, `pdftoppm` and `pdftotext` (poppler-utils) and
//! Ghostscript (`gs`); without them they fail and say to run
//! `bash scripts/install-test-tools.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine as _;
use bytes::Bytes;
use docflow::extract::{Extraction, ExtractionMethod};
use docflow::ocr::document_intelligence::{
    Auth, DocumentIntelligenceOptions, DocumentIntelligenceProvider,
};
use docflow::ocr::tesseract::{TesseractOptions, TesseractProvider};
use docflow::ocr::{OcrError, OcrProvider};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Azure AI Document Intelligence
// ---------------------------------------------------------------------------------------------

const ANALYZE_PATH: &str = "/documentintelligence/documentModels/prebuilt-read:analyze";
const RESULT_PATH: &str = "/documentintelligence/documentModels/prebuilt-read/analyzeResults/3b31320d-8bab-4f88-b19c-2322a7f11034";
const KEY: &str = "test-key";

/// A PDF as small as a header: the scripted service does not read it.
const PDF: &[u8] = b"%PDF-1.7\n%scanned page\n";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/document-intelligence")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap()
}

fn options(server: &MockServer) -> DocumentIntelligenceOptions {
    DocumentIntelligenceOptions {
        poll_interval_floor: Duration::from_millis(20),
        max_wait: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        ..DocumentIntelligenceOptions::new(server.uri(), Auth::ApiKey(KEY.into()))
    }
}

fn provider(options: DocumentIntelligenceOptions) -> DocumentIntelligenceProvider {
    DocumentIntelligenceProvider::new(options, reqwest::Client::new())
}

/// The `Operation-Location` of the scripted service.
fn operation_location(server: &MockServer) -> String {
    format!("{}{RESULT_PATH}?api-version=2024-11-30", server.uri())
}

/// `202 Accepted` as `AnalyzeDocument_Base64.json` (stable/2024-11-30/examples) shows it:
/// `Operation-Location`, and the `Retry-After` the REST description declares.
fn accepted(server: &MockServer, retry_after: &str) -> ResponseTemplate {
    ResponseTemplate::new(202)
        .insert_header("Operation-Location", operation_location(server).as_str())
        .insert_header("Retry-After", retry_after)
}

/// Mounts the analysis request, answered `202`, checking the key, the query and the body.
async fn mount_submit(server: &MockServer, retry_after: &str) {
    let base64 = base64::engine::general_purpose::STANDARD.encode(PDF);
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .and(query_param("api-version", "2024-11-30"))
        .and(query_param("stringIndexType", "utf16CodeUnit"))
        .and(header("Ocp-Apim-Subscription-Key", KEY))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "base64Source": base64 })))
        .respond_with(accepted(server, retry_after))
        .expect(1)
        .named("analyze")
        .mount(server)
        .await;
}

/// Mounts the result: `running` `running_polls` times, then `last`.
async fn mount_polls(server: &MockServer, running_polls: u64, last: ResponseTemplate) {
    if running_polls > 0 {
        // `running`: an `AnalyzeOperation` before its result (status, created and updated
        // times: the fields the REST description requires).
        Mock::given(method("GET"))
            .and(path(RESULT_PATH))
            .and(query_param("api-version", "2024-11-30"))
            .and(header("Ocp-Apim-Subscription-Key", KEY))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Retry-After", "1")
                    .set_body_json(fixture("running.json")),
            )
            .up_to_n_times(running_polls)
            .expect(running_polls)
            .with_priority(1)
            .named("running")
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(RESULT_PATH))
        .and(header("Ocp-Apim-Subscription-Key", KEY))
        .respond_with(last)
        .with_priority(2)
        .named("result")
        .mount(server)
        .await;
}

/// `succeeded-read.json` follows `GetAnalyzeDocumentResult.json` (the `DocumentModels_GetAnalyzeResult`
/// example, api-version 2024-11-30): status and times, then `analyzeResult` with `apiVersion`,
/// `modelId`, `stringIndexType`, `contentFormat`, `content` and `pages` (`pageNumber`, `angle`,
/// `width`, `height`, `unit`, `words`, `lines`, `spans`), here for `prebuilt-read` with three
/// pages: text with non-ASCII letters, a character outside the Basic Multilingual Plane (two
/// UTF-16 units), and a blank third page.
fn succeeded() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture("succeeded-read.json"))
}

fn page_text(e: &Extraction, page: u32) -> &str {
    let span = e
        .pages
        .iter()
        .find(|p| p.page == page)
        .unwrap_or_else(|| panic!("no page {page} in {:?}", e.pages));
    &e.text[span.offset..span.offset + span.length]
}

fn assert_read(e: &Extraction) {
    assert_eq!(e.method, ExtractionMethod::Ocr);
    assert_eq!(
        e.text,
        "Rechnung für Müller GmbH\nBetrag: 120 € fällig\nLieferung 🚚 am 3. März\nDanke"
    );
    assert_eq!(e.pages.len(), 3, "{:?}", e.pages);
    assert_eq!(
        page_text(e, 1),
        "Rechnung für Müller GmbH\nBetrag: 120 € fällig"
    );
    assert_eq!(page_text(e, 2), "Lieferung 🚚 am 3. März\nDanke");
    assert_eq!(e.pages[2].length, 0);
    assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    assert_eq!(e.warnings[0].code, "PageWithoutText");
    assert_eq!(e.warnings[0].page, Some(3));
}

#[tokio::test]
async fn document_intelligence_submits_polls_and_reads_the_pages() {
    let server = MockServer::start().await;
    mount_submit(&server, "1").await;
    mount_polls(&server, 1, succeeded()).await;
    let p = provider(options(&server));
    assert_eq!(p.name(), "azure-document-intelligence");
    let started = Instant::now();
    let e = p
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
        .unwrap();
    // Retry-After: 1 after the submission and after the `running` poll.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    assert_read(&e);
    server.verify().await;
}

#[tokio::test]
async fn document_intelligence_rate_limit_is_returned_and_a_later_call_succeeds() {
    let server = MockServer::start().await;
    // A 429 on the submission: the error body has the shape of `DocumentIntelligenceErrorResponse`.
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_json(fixture("error-rate-limited.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_submit(&server, "0").await;
    mount_polls(&server, 0, succeeded()).await;
    let p = provider(options(&server));
    match p
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    // The pipeline reschedules the message; the next call goes through.
    let e = p
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
        .unwrap();
    assert_read(&e);
    server.verify().await;
}

#[tokio::test]
async fn document_intelligence_polls_again_after_a_rate_limited_poll() {
    let server = MockServer::start().await;
    mount_submit(&server, "0").await;
    // A 429 on a poll: the analysis goes on, so the poll waits and asks again instead of
    // paying for a second analysis.
    Mock::given(method("GET"))
        .and(path(RESULT_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(fixture("error-rate-limited.json")),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_polls(&server, 0, succeeded()).await;
    let started = Instant::now();
    let e = provider(options(&server))
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_read(&e);
    server.verify().await;
}

#[tokio::test]
async fn document_intelligence_failed_analysis_is_rejected() {
    let server = MockServer::start().await;
    mount_submit(&server, "0").await;
    // `failed.json`: an `AnalyzeOperation` with status `failed` and its `error`, the code and
    // inner error of the service's error guide for a corrupt file.
    mount_polls(
        &server,
        1,
        ResponseTemplate::new(200).set_body_json(fixture("failed.json")),
    )
    .await;
    let mut o = options(&server);
    o.poll_interval_floor = Duration::from_millis(10);
    match provider(o)
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Rejected { code, message }) => {
            assert_eq!(code, "OcrFailed");
            assert!(message.contains("InvalidRequest"), "{message}");
            assert!(message.contains("InvalidContent"), "{message}");
            assert!(message.contains("corrupted"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn document_intelligence_refused_document_is_rejected_with_the_service_reason() {
    let server = MockServer::start().await;
    // A 400 with `DocumentIntelligenceErrorResponse`: InvalidRequest / InvalidContent.
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(fixture("error-invalid-content.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    match provider(options(&server))
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Rejected { code, message }) => {
            assert_eq!(code, "OcrFailed");
            assert!(
                message.contains("400") && message.contains("InvalidContent"),
                "{message}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn document_intelligence_wrong_key_is_transient_and_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(fixture("error-unauthorized.json")))
        .expect(1)
        .mount(&server)
        .await;
    match provider(options(&server))
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("refused the credentials"), "{message}");
            assert!(message.contains("invalid subscription key"), "{message}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn document_intelligence_server_error_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {
            "code": "ServiceUnavailable", "message": "A transient error occurred. Try again."}})))
        .expect(1)
        .mount(&server)
        .await;
    match provider(options(&server))
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("ServiceUnavailable"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn document_intelligence_gives_up_after_the_maximum_wait() {
    let server = MockServer::start().await;
    mount_submit(&server, "0").await;
    Mock::given(method("GET"))
        .and(path(RESULT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("running.json")))
        .mount(&server)
        .await;
    let mut o = options(&server);
    o.poll_interval_floor = Duration::from_millis(50);
    o.max_wait = Duration::from_millis(400);
    let started = Instant::now();
    match provider(o)
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("did not finish within"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert!((3..=8).contains(&polls), "{polls} polls in 400 ms");
}

#[tokio::test]
async fn document_intelligence_unreachable_endpoint_is_transient() {
    // A port nothing listens on (wiremock keeps its servers in a pool, so not one of them).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = DocumentIntelligenceOptions::new(
        format!("http://127.0.0.1:{port}"),
        Auth::ApiKey(KEY.into()),
    );
    match provider(o)
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("cannot connect"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn document_intelligence_refuses_a_file_that_is_not_its_content_type() {
    let server = MockServer::start().await;
    match provider(options(&server))
        .recognize(Bytes::from_static(b"plain words"), "image/png")
        .await
    {
        Err(OcrError::Rejected { code, .. }) => assert_eq!(code, "UnsupportedImage"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn document_intelligence_keeps_credentials_on_the_endpoint() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .respond_with(ResponseTemplate::new(202).insert_header(
            "Operation-Location",
            format!("{}{RESULT_PATH}?api-version=2024-11-30", elsewhere.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    match provider(options(&server))
        .recognize(Bytes::from_static(PDF), "application/pdf")
        .await
    {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("another host"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

/// A credential that hands out a fixed token and records the scopes asked for.
#[derive(Debug, Default)]
struct FixedToken {
    scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes
            .lock()
            .unwrap()
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            "entra-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

#[tokio::test]
async fn document_intelligence_sends_a_microsoft_entra_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ANALYZE_PATH))
        .and(header("authorization", "Bearer entra-token"))
        .respond_with(accepted(&server, "0"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RESULT_PATH))
        .and(header("authorization", "Bearer entra-token"))
        .respond_with(succeeded())
        .expect(1)
        .mount(&server)
        .await;
    let credential = Arc::new(FixedToken::default());
    let o = DocumentIntelligenceOptions {
        auth: Auth::Entra(credential.clone()),
        ..options(&server)
    };
    let e = provider(o)
        .recognize(Bytes::from_static(PDF), "application/pdf; name=scan.pdf")
        .await
        .unwrap();
    assert_read(&e);
    let scopes = credential.scopes.lock().unwrap().clone();
    assert_eq!(
        scopes, ["https://cognitiveservices.azure.com/.default"; 2],
        "one token per request, for the Cognitive Services scope"
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r: &Request| !r.headers.contains_key("ocp-apim-subscription-key")),
        "no key header with Entra authentication"
    );
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Tesseract
// ---------------------------------------------------------------------------------------------

/// Fails, naming the fix, when a program the tests need is missing.
fn require(program: &str, version_flag: &str) {
    let ran = Command::new(program).arg(version_flag).output();
    if ran.is_err() {
        panic!(
            "`{program}` is missing: the OCR tests need tesseract, poppler-utils and Ghostscript; \
             run `bash scripts/install-test-tools.sh`"
        );
    }
}

fn require_tools() {
    require("tesseract", "--version");
    require("pdftoppm", "-v");
    require("pdftotext", "-v");
    require("gs", "--version");
}

/// A Letter page of PostScript with lines of Helvetica, 28 pt.
fn postscript_page(lines: &[&str]) -> String {
    let mut page = String::from("/Helvetica findfont 28 scalefont setfont\n");
    for (i, line) in lines.iter().enumerate() {
        page.push_str(&format!("72 {} moveto ({line}) show\n", 700 - 50 * i));
    }
    page.push_str("showpage\n");
    page
}

/// Renders PostScript pages with Ghostscript's `device` at 300 dpi into `out`.
fn render(dir: &Path, pages: &[Vec<&str>], device: &str, out: &str) -> Vec<u8> {
    let mut ps = String::from("%!PS\n<< /PageSize [612 792] >> setpagedevice\n");
    for page in pages {
        ps.push_str(&postscript_page(page));
    }
    let source = dir.join("scan.ps");
    std::fs::write(&source, ps).unwrap();
    let target = dir.join(out);
    let status = Command::new("gs")
        .args(["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-r300"])
        .arg(format!("-sDEVICE={device}"))
        .arg("-o")
        .arg(&target)
        .arg(&source)
        .status()
        .expect("run gs");
    assert!(status.success(), "gs -sDEVICE={device} failed");
    std::fs::read(&target).unwrap()
}

/// How many of `words` occur in `text`, ignoring case.
fn words_found(text: &str, words: &[&str]) -> usize {
    let text = text.to_lowercase();
    words
        .iter()
        .filter(|w| text.contains(&w.to_lowercase()))
        .count()
}

fn tesseract() -> TesseractProvider {
    TesseractProvider::new(TesseractOptions {
        timeout: Duration::from_secs(120),
        ..TesseractOptions::default()
    })
}

const PAGE_ONE: [&str; 2] = [
    "Invoice number 4711 from Contoso",
    "Payment due within thirty days",
];
const PAGE_TWO: [&str; 2] = [
    "Second page mentions Fabrikam",
    "Delivery address in Munich",
];
const WORDS_ONE: [&str; 8] = [
    "Invoice", "number", "4711", "Contoso", "Payment", "due", "thirty", "days",
];
const WORDS_TWO: [&str; 7] = [
    "Second", "page", "mentions", "Fabrikam", "Delivery", "address", "Munich",
];

#[tokio::test]
async fn tesseract_reads_a_png_scan() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let png = render(dir.path(), &[PAGE_ONE.to_vec()], "pnggray", "scan.png");
    let p = tesseract();
    assert_eq!(p.name(), "tesseract");
    let e = p.recognize(Bytes::from(png), "image/png").await.unwrap();
    assert_eq!(e.method, ExtractionMethod::Ocr);
    let found = words_found(&e.text, &WORDS_ONE);
    assert!(found >= 7, "{found} of 8 words in {:?}", e.text);
    assert_eq!(e.pages.len(), 1);
    assert_eq!((e.pages[0].page, e.pages[0].offset), (1, 0));
    assert_eq!(e.pages[0].length, e.text.len());
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[tokio::test]
async fn tesseract_reads_a_scanned_pdf_page_by_page() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    // `pdfimage8` writes each page as one grey image: a PDF without any text layer. The third
    // page is blank.
    let pdf = render(
        dir.path(),
        &[PAGE_ONE.to_vec(), PAGE_TWO.to_vec(), Vec::new()],
        "pdfimage8",
        "scan.pdf",
    );
    let layer = Command::new("pdftotext")
        .arg(dir.path().join("scan.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs");
    assert!(layer.status.success());
    assert!(
        String::from_utf8_lossy(&layer.stdout).trim().is_empty(),
        "the scan must have no text layer"
    );
    let e = tesseract()
        .recognize(Bytes::from(pdf), "application/pdf")
        .await
        .unwrap();
    assert_eq!(
        e.pages.iter().map(|p| p.page).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let one = &e.text[e.pages[0].offset..e.pages[0].offset + e.pages[0].length];
    let two = &e.text[e.pages[1].offset..e.pages[1].offset + e.pages[1].length];
    assert!(words_found(one, &WORDS_ONE) >= 7, "page 1: {one:?}");
    assert!(words_found(two, &WORDS_TWO) >= 6, "page 2: {two:?}");
    assert_eq!(
        words_found(one, &["Fabrikam", "Munich"]),
        0,
        "page 1: {one:?}"
    );
    assert_eq!(words_found(two, &["Contoso", "4711"]), 0, "page 2: {two:?}");
    assert_eq!(
        &e.text[e.pages[0].offset + e.pages[0].length..e.pages[1].offset],
        "\n\n",
        "a blank line between pages"
    );
    assert_eq!(e.pages[2].length, 0);
    assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    assert_eq!(
        (e.warnings[0].code.as_str(), e.warnings[0].page),
        ("PageWithoutText", Some(3))
    );
}

#[tokio::test]
async fn tesseract_rejects_a_corrupt_image_with_its_own_words() {
    require_tools();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(0x5a, 200));
    match tesseract().recognize(Bytes::from(png), "image/png").await {
        Err(OcrError::Rejected { code, message }) => {
            assert_eq!(code, "OcrFailed");
            assert!(
                message.starts_with("tesseract could not read the image"),
                "{message}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn tesseract_rejects_a_corrupt_pdf() {
    require_tools();
    let pdf = b"%PDF-1.7\nthis is not really a PDF\n".to_vec();
    match tesseract()
        .recognize(Bytes::from(pdf), "application/pdf")
        .await
    {
        Err(OcrError::Rejected { code, message }) => {
            assert_eq!(code, "OcrFailed");
            assert!(
                message.starts_with("pdftoppm could not render the PDF"),
                "{message}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn tesseract_missing_program_is_transient_with_the_install_hint() {
    let p = TesseractProvider::new(TesseractOptions {
        tesseract: "docflow-test-no-such-tesseract".into(),
        ..TesseractOptions::default()
    });
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    match p.recognize(Bytes::from(png), "image/png").await {
        Err(OcrError::Transient(message)) => {
            assert!(
                message.contains("docflow-test-no-such-tesseract was not found"),
                "{message}"
            );
            assert!(
                message.contains("apt-get install tesseract-ocr poppler-utils"),
                "{message}"
            );
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn tesseract_missing_language_data_is_transient() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let png = render(dir.path(), &[PAGE_ONE.to_vec()], "pnggray", "scan.png");
    let p = TesseractProvider::new(TesseractOptions {
        languages: "qqq".into(),
        ..TesseractOptions::default()
    });
    match p.recognize(Bytes::from(png), "image/png").await {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("language data"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn tesseract_timeout_is_transient_and_stops_the_program() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for tesseract that never finishes.
    let slow = dir.path().join("slow-tesseract");
    std::fs::write(
        &slow,
        "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 30\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&slow).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&slow, permissions).unwrap();
    let p = TesseractProvider::new(TesseractOptions {
        tesseract: slow,
        timeout: Duration::from_millis(300),
        ..TesseractOptions::default()
    });
    let started = Instant::now();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    match p.recognize(Bytes::from(png), "image/png").await {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("did not finish within 300ms"), "{message}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The stand-in was killed, not left running.
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let alive = || {
        Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    let waited = Instant::now();
    while alive() && waited.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(), "the timed-out program is still running");
}
