//! Documents as users have them, end to end under the local host: a Word file, a web page and
//! an e-mail with a PDF attachment through `POST /api/documents` and `docflow run`; scans read
//! by OCR through a scripted Azure AI Document Intelligence endpoint (with a `429` on the way)
//! and through Tesseract; `GET /api/documents/{id}/text` shows what was analysed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::documents::{docx, eml, html};
use common::pipeline::{PipelineApp, pdf};
use serde_json::Value;
use wiremock::matchers::{header, method, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn word_file() -> Vec<u8> {
    docx(
        &[
            "Master Services Agreement",
            "Contoso Ltd agrees to deliver forty routers to Fabrikam Inc by April 2025.",
        ],
        &[["Item", "Price"], ["Router", "$89.00"]],
    )
}

fn web_page() -> Vec<u8> {
    html(
        "Delivery notice",
        &["Adventure Works shipped the replacement router on January 20, 2025."],
    )
}

fn email() -> Vec<u8> {
    eml(
        "Late delivery of my router",
        "Hello, my router has not arrived. The invoice is attached.",
        (
            "invoice.pdf",
            "application/pdf",
            &pdf(Some("Invoice INV-2025-0117 from Contoso Ltd")),
        ),
    )
}

/// The text the API says was analysed.
async fn text_of(app: &PipelineApp, id: &str) -> (u16, String, String) {
    let answer = reqwest::get(format!("{}/documents/{id}/text", app.api))
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, answer.text().await.unwrap())
}

async fn submit_and_finish(app: &PipelineApp, content_type: &str, body: Vec<u8>) -> Value {
    let (status, _, answer) = app
        .submit("", &[("content-type", content_type)], body)
        .await;
    assert_eq!(status, 202, "{content_type}: {answer}");
    app.wait_final(answer["id"].as_str().unwrap(), Duration::from_secs(60))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_html_and_an_email_with_a_pdf_attachment_complete_with_their_text() {
    let app = PipelineApp::start(&[]).await;

    let doc = submit_and_finish(&app, DOCX, word_file()).await;
    assert_eq!(doc["status"], "completed", "{doc:#}");
    assert_eq!(doc["extraction"]["method"], "wordprocessing", "{doc:#}");
    let (status, content_type, text) = text_of(&app, doc["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    for expected in [
        "Master Services Agreement",
        "forty routers",
        "Router | $89.00",
        "Contoso Confidential Header",
        "Footer of Contoso Ltd",
        "warranty period",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from {text:?}"
        );
    }

    let doc = submit_and_finish(&app, "text/html; charset=utf-8", web_page()).await;
    assert_eq!(doc["status"], "completed", "{doc:#}");
    assert_eq!(doc["extraction"]["method"], "html");
    let (_, _, text) = text_of(&app, doc["id"].as_str().unwrap()).await;
    assert!(text.contains("shipped the replacement router"), "{text:?}");
    assert!(text.contains("full terms of service"), "{text:?}");
    assert!(!text.contains("SHOULD-NOT-APPEAR"), "{text:?}");
    assert!(!text.contains("font-family"), "{text:?}");

    let doc = submit_and_finish(&app, "message/rfc822", email()).await;
    assert_eq!(doc["status"], "completed", "{doc:#}");
    assert_eq!(doc["extraction"]["method"], "email");
    let (_, _, text) = text_of(&app, doc["id"].as_str().unwrap()).await;
    for expected in [
        "Late delivery of my router",
        "alice@contoso.example",
        "has not arrived",
        "invoice.pdf",
        "Invoice INV-2025-0117 from Contoso Ltd",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from {text:?}"
        );
    }

    // A PDF reports its pages, and the text it was analysed on.
    let doc = submit_and_finish(
        &app,
        "application/pdf",
        pdf(Some("Purchase order 42 from Fabrikam")),
    )
    .await;
    assert_eq!(doc["extraction"]["method"], "textLayer", "{doc:#}");
    assert_eq!(doc["extraction"]["pages"], 1);
    assert_eq!(doc["extraction"]["pageSpans"][0]["page"], 1);
    let (_, _, text) = text_of(&app, doc["id"].as_str().unwrap()).await;
    assert!(text.contains("Purchase order 42 from Fabrikam"), "{text:?}");

    let (status, _, _) = text_of(&app, "no-such-document").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[test]
fn docflow_run_reads_word_html_and_email_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agreement.docx"), word_file()).unwrap();
    std::fs::write(dir.path().join("notice.html"), web_page()).unwrap();
    std::fs::write(dir.path().join("late-delivery.eml"), email()).unwrap();
    std::fs::write(dir.path().join("archive.zip"), b"PK\x03\x04").unwrap();
    let results = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--kinds", "summarize,classify", "--out"])
        .arg(&results)
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The zip is refused (415, listing the supported types), so the run exits 1.
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for name in ["agreement.docx", "notice.html", "late-delivery.eml"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {stdout}"));
        assert!(line.contains("completed"), "{line}");
    }
    assert!(stdout.contains("415 UnsupportedMediaType"), "{stdout}");
    let documents: Vec<Value> = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let methods: Vec<&str> = documents
        .iter()
        .map(|d| d["extraction"]["method"].as_str().unwrap_or(""))
        .collect();
    for method in ["wordprocessing", "html", "email"] {
        assert!(methods.contains(&method), "{methods:?}");
    }
}

/// A one-page scan as a PDF without a text layer: PostScript text rendered to an image by
/// Ghostscript's `pdfimage24` device.
fn scanned_pdf(dir: &Path, lines: &[&str]) -> Vec<u8> {
    let mut ps = String::from("%!PS\n/Helvetica findfont 30 scalefont setfont\n");
    for (i, line) in lines.iter().enumerate() {
        ps.push_str(&format!("72 {} moveto ({line}) show\n", 700 - 50 * i));
    }
    ps.push_str("showpage\n");
    let source = dir.join("scan.ps");
    let out = dir.join("scan.pdf");
    std::fs::write(&source, ps).unwrap();
    let status = Command::new("gs")
        .args(["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfimage24", "-r200"])
        .arg(format!("-sOutputFile={}", out.display()))
        .arg(&source)
        .status()
        .unwrap_or_else(|e| {
            panic!("Ghostscript (gs) is needed to render a scan ({e}): run bash scripts/install-test-tools.sh")
        });
    assert!(status.success());
    std::fs::read(out).unwrap()
}

const OCR_TEXT: &str =
    "Scanned contract between Contoso and Fabrikam\nDelivery of forty routers in April";

fn succeeded(content: &str) -> Value {
    let mut result = common::fixture_json("document-intelligence/succeeded-read.json");
    let length = content.encode_utf16().count();
    result["analyzeResult"]["content"] = content.into();
    let page = &mut result["analyzeResult"]["pages"][0];
    page["spans"] = serde_json::json!([{"offset": 0, "length": length}]);
    page["words"] = serde_json::json!([]);
    page["lines"] = serde_json::json!([]);
    result["analyzeResult"]["pages"] = serde_json::json!([page.clone()]);
    result["analyzeResult"]["paragraphs"] = serde_json::json!([]);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_completes_through_document_intelligence_after_a_429() {
    let dir = tempfile::tempdir().unwrap();
    let scan = scanned_pdf(dir.path(), &["Scanned contract"]);
    let service = MockServer::start().await;
    let operation = format!(
        "{}/documentintelligence/documentModels/prebuilt-read/analyzeResults/op-1?api-version=2024-11-30",
        service.uri()
    );
    // The first submission is refused for the resource's rate limit, as Azure does.
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/documentintelligence/documentModels/prebuilt-read:analyze$",
        ))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(common::fixture_json(
                    "document-intelligence/error-rate-limited.json",
                )),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&service)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/documentintelligence/documentModels/prebuilt-read:analyze$",
        ))
        .and(query_param("api-version", "2024-11-30"))
        .and(header("Ocp-Apim-Subscription-Key", "test-key"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("Operation-Location", operation.as_str())
                .insert_header("Retry-After", "1"),
        )
        .with_priority(2)
        .mount(&service)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/analyzeResults/op-1$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::fixture_json("document-intelligence/running.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&service)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/analyzeResults/op-1$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(succeeded(OCR_TEXT)))
        .with_priority(2)
        .mount(&service)
        .await;

    let app = PipelineApp::start(&[
        (
            "AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT",
            service.uri().as_str(),
        ),
        ("AZURE_DOCUMENT_INTELLIGENCE_KEY", "test-key"),
        ("DOCFLOW_RETRY_BASE_MS", "200"),
    ])
    .await;
    let (status, _, answer) = app
        .submit("", &[("content-type", "application/pdf")], scan)
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let doc = app.wait_final(&id, Duration::from_secs(90)).await;
    assert_eq!(doc["status"], "completed", "{doc:#}");
    let extraction = &doc["extraction"];
    assert_eq!(extraction["method"], "ocr", "{doc:#}");
    assert_eq!(extraction["provider"], "azure-document-intelligence");
    assert_eq!(extraction["status"], "done");
    assert_eq!(extraction["pages"], 1);
    let (status, _, text) = text_of(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(text.trim(), OCR_TEXT);
    let posts = service
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 2, "one refused for the rate limit, one accepted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ocr_analysis_fails_the_document_with_the_reason() {
    let service = MockServer::start().await;
    let operation = format!(
        "{}/documentintelligence/documentModels/prebuilt-read/analyzeResults/op-2?api-version=2024-11-30",
        service.uri()
    );
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202).insert_header("Operation-Location", operation.as_str()),
        )
        .mount(&service)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::fixture_json("document-intelligence/failed.json")),
        )
        .mount(&service)
        .await;
    let app = PipelineApp::start(&[
        (
            "AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT",
            service.uri().as_str(),
        ),
        ("AZURE_DOCUMENT_INTELLIGENCE_KEY", "test-key"),
    ])
    .await;
    let (status, _, answer) = app
        .submit(
            "",
            &[("content-type", "image/png")],
            b"\x89PNG\r\n\x1a\nnot really".to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let doc = app.wait_final(&id, Duration::from_secs(90)).await;
    assert_eq!(doc["status"], "failed", "{doc:#}");
    assert_eq!(doc["extraction"]["status"], "failed", "{doc:#}");
    for (_, task) in doc["tasks"].as_object().unwrap() {
        let reason = task["error"]["reason"].as_str().unwrap();
        assert!(
            reason == "OcrFailed" || reason == "UnsupportedImage",
            "{task:#}"
        );
    }
    let (status, _, _) = text_of(&app, &id).await;
    assert_eq!(status, 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_completes_through_tesseract_with_its_words_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let scan = scanned_pdf(
        dir.path(),
        &[
            "Scanned contract between Contoso",
            "and Fabrikam for forty routers",
        ],
    );
    let app = PipelineApp::start(&[("DOCFLOW_OCR_PROVIDER", "tesseract")]).await;
    let (status, _, answer) = app
        .submit("", &[("content-type", "application/pdf")], scan.clone())
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let doc = app.wait_final(&id, Duration::from_secs(120)).await;
    assert_eq!(doc["status"], "completed", "{doc:#}");
    assert_eq!(doc["extraction"]["provider"], "tesseract");
    let (_, _, text) = text_of(&app, &id).await;
    let lower = text.to_lowercase();
    for word in ["scanned", "contract", "contoso", "fabrikam", "routers"] {
        assert!(lower.contains(word), "{word:?} not recognised in {text:?}");
    }
    app.stop().await;

    // Without OCR configured, the same scan is refused at once, as before.
    let app = PipelineApp::start(&[]).await;
    let (status, _, answer) = app
        .submit("", &[("content-type", "application/pdf")], scan)
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "PdfHasNoText");
    app.stop().await;
}
