//! docflow's PDF text extraction against poppler's `pdftotext` on a public corpus: the 72
//! test PDFs of pypdf 7.1.1 (fetched, pinned, by `scripts/fetch-pdf-corpus.sh`).
//!
//! For every PDF: where `pdftotext` finds words, docflow must find at least 90% of them
//! (multiset word recall: lowercase alphanumeric tokens); where `pdftotext` finds none or
//! refuses (a user password), docflow must refuse too (`PdfHasNoText`, `PdfEncrypted` or
//! `UnreadablePdf`). No file may panic or run past the extraction time limit. The figures are
//! printed as a table.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::recall::{recall, words};
use docflow::extract::pdf::{Options, extract_with};
use docflow::extract::{DocumentKind, EXTRACTION_TIME_LIMIT, ExtractError, Extraction, extract};

/// The PDFs of pypdf 7.1.1's `resources/` folder.
const CORPUS_SIZE: usize = 72;

/// The least share of `pdftotext`'s words docflow must find in every PDF.
const MIN_RECALL: f64 = 0.90;

/// What `pdftotext` and docflow made of one PDF.
struct FileResult {
    /// Its path under the corpus folder.
    name: String,
    /// `pdftotext`'s words (`None`: it refused the file).
    poppler: Option<HashMap<String, usize>>,
    /// docflow's default extraction (running headers and footers kept once).
    docflow: Outcome,
    /// docflow with every line kept, as `pdftotext` does.
    all_lines: Outcome,
    /// How long docflow's default extraction took.
    elapsed: Duration,
}

/// How one extraction ended.
enum Outcome {
    Read(Extraction),
    Refused(ExtractError),
    Panicked,
    Hung,
}

impl Outcome {
    fn text(&self) -> Option<&str> {
        match self {
            Outcome::Read(extraction) => Some(&extraction.text),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Read(_) => "read".into(),
            Outcome::Refused(error) => error.code.into(),
            Outcome::Panicked => "PANIC".into(),
            Outcome::Hung => "HUNG".into(),
        }
    }
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus folder, fetched first if it is not there.
fn corpus() -> PathBuf {
    let dir = repository().join(".tools/pdf-corpus");
    if !dir.join(".pypdf-7.1.1").is_file() {
        let status = Command::new("bash")
            .arg(repository().join("scripts/fetch-pdf-corpus.sh"))
            .status()
            .expect("bash runs scripts/fetch-pdf-corpus.sh");
        assert!(
            status.success(),
            "scripts/fetch-pdf-corpus.sh failed: the PDF corpus is needed"
        );
    }
    dir
}

/// `pdftotext`'s words of a file, or `None` when it refuses the file.
fn pdftotext(file: &Path) -> Option<HashMap<String, usize>> {
    let output = match Command::new("pdftotext")
        .args(["-q", "-enc", "UTF-8"])
        .arg(file)
        .arg("-")
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "pdftotext (poppler-utils) is not installed: run `bash scripts/install-test-tools.sh`"
        ),
        Err(error) => panic!("pdftotext could not run: {error}"),
    };
    output
        .status
        .success()
        .then(|| words(&String::from_utf8_lossy(&output.stdout)))
}

/// Runs an extraction on its own thread: a panic or a run past the time limit (with a
/// margin) is an outcome, not a crash of the test.
fn guarded(
    bytes: Vec<u8>,
    run: fn(&[u8], Instant) -> Result<Extraction, ExtractError>,
) -> (Outcome, Duration) {
    let (sender, receiver) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let result = run(&bytes, Instant::now() + EXTRACTION_TIME_LIMIT);
        let _ = sender.send(result);
    });
    let outcome = match receiver.recv_timeout(EXTRACTION_TIME_LIMIT + Duration::from_secs(10)) {
        Ok(Ok(extraction)) => Outcome::Read(extraction),
        Ok(Err(error)) => Outcome::Refused(error),
        Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::Panicked,
        Err(mpsc::RecvTimeoutError::Timeout) => Outcome::Hung,
    };
    (outcome, started.elapsed())
}

fn default_extraction(bytes: &[u8], deadline: Instant) -> Result<Extraction, ExtractError> {
    extract(DocumentKind::Pdf, bytes, deadline)
}

fn all_lines_extraction(bytes: &[u8], deadline: Instant) -> Result<Extraction, ExtractError> {
    let extraction = extract_with(
        bytes,
        deadline,
        &Options {
            keep_running_lines: true,
        },
    )?;
    if extraction.text.trim().is_empty() {
        return Err(ExtractError::new("PdfHasNoText", "no text"));
    }
    Ok(extraction)
}

/// Every corpus PDF through `pdftotext` and docflow, once per test run.
fn results() -> &'static [FileResult] {
    static RESULTS: OnceLock<Vec<FileResult>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let dir = corpus();
        let mut files = Vec::new();
        let mut pending = vec![dir.clone()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "pdf") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert_eq!(
            files.len(),
            CORPUS_SIZE,
            "the corpus has {CORPUS_SIZE} PDFs"
        );
        files
            .iter()
            .map(|file| {
                let bytes = std::fs::read(file).unwrap();
                let (docflow, elapsed) = guarded(bytes.clone(), default_extraction);
                let (all_lines, _) = guarded(bytes, all_lines_extraction);
                FileResult {
                    name: file
                        .strip_prefix(&dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    poppler: pdftotext(file),
                    docflow,
                    all_lines,
                    elapsed,
                }
            })
            .collect()
    })
}

fn result(name: &str) -> &'static FileResult {
    results()
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} is in the corpus"))
}

/// Writes straight to standard error, past the test harness's capture, so that the table
/// shows in CI's log.
fn show(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[test]
fn every_corpus_pdf_reads_like_pdftotext() {
    let results = results();
    let mut failures = Vec::new();
    let mut recalls = Vec::new();
    show("| file | pdftotext words | recall | recall, all lines kept | docflow | ms |");
    show("|---|---|---|---|---|---|");
    for r in results {
        let poppler_words = r.poppler.as_ref().map_or(0, |w| w.values().sum::<usize>());
        let recall_of = |outcome: &Outcome| {
            r.poppler
                .as_ref()
                .filter(|_| poppler_words > 0)
                .map(|reference| recall(&words(outcome.text().unwrap_or("")), reference))
        };
        let (default_recall, all_lines_recall) = (recall_of(&r.docflow), recall_of(&r.all_lines));
        let figure = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.3}"));
        show(&format!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            r.poppler
                .as_ref()
                .map_or("refused".into(), |_| poppler_words.to_string()),
            figure(default_recall),
            figure(all_lines_recall),
            r.docflow.describe(),
            r.elapsed.as_millis()
        ));
        for outcome in [&r.docflow, &r.all_lines] {
            if matches!(outcome, Outcome::Panicked | Outcome::Hung) {
                failures.push(format!("{}: {}", r.name, outcome.describe()));
            }
        }
        match (poppler_words > 0, &r.docflow) {
            (true, Outcome::Read(extraction)) => {
                let all_lines_recall = all_lines_recall.unwrap_or(0.0);
                recalls.push(all_lines_recall);
                if all_lines_recall < MIN_RECALL {
                    failures.push(format!(
                        "{}: recall {all_lines_recall:.3} with every line kept",
                        r.name
                    ));
                }
                // Running headers and footers kept once cost words that pdftotext repeats on
                // every page; anything else must not.
                let removed_running_lines = extraction
                    .warnings
                    .iter()
                    .any(|w| w.code == "RunningLinesRemoved");
                let default_recall = default_recall.unwrap_or(0.0);
                if default_recall < MIN_RECALL && !removed_running_lines {
                    failures.push(format!("{}: recall {default_recall:.3}", r.name));
                }
            }
            (true, outcome) => failures.push(format!(
                "{}: pdftotext reads {poppler_words} words, docflow: {}",
                r.name,
                outcome.describe()
            )),
            (false, Outcome::Refused(error))
                if ["PdfHasNoText", "PdfEncrypted", "UnreadablePdf"].contains(&error.code) => {}
            (false, outcome) => failures.push(format!(
                "{}: pdftotext finds no text, docflow: {}",
                r.name,
                outcome.describe()
            )),
        }
    }
    let slowest = results.iter().max_by_key(|r| r.elapsed).unwrap();
    show(&format!(
        "{} PDFs with text: min recall {:.3}, mean {:.3}; slowest {} ({} ms)",
        recalls.len(),
        recalls.iter().copied().fold(1.0, f64::min),
        recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        slowest.name,
        slowest.elapsed.as_millis()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_user_passwords_are_opened_for_every_standard_handler() {
    // RC4 40-bit (R2), RC4 128-bit (R3), AES-128 (R4, AESV2), AES-256 (R5 and R6), and
    // files whose owner password differs from their empty user password.
    for name in [
        "encryption/r2-empty-password.pdf",
        "encryption/r3-empty-password.pdf",
        "encryption/r4-aes-v2-no-key-length.pdf",
        "encryption/r5-empty-password.pdf",
        "encryption/r6-empty-password.pdf",
        "encryption/r2-owner-password.pdf",
        "encryption/r4-owner-password.pdf",
        "encryption/r6-owner-password.pdf",
    ] {
        let r = result(name);
        let reference = r.poppler.as_ref().expect("pdftotext opens it");
        let text = r
            .docflow
            .text()
            .unwrap_or_else(|| panic!("{name}: {}", r.docflow.describe()));
        assert!(
            recall(&words(text), reference) >= MIN_RECALL,
            "{name}: {text:?}"
        );
    }
    // No /ID in the trailer: the key is derived from an empty one. Images only: no text.
    match &result("encrypted_doc_no_id.pdf").docflow {
        Outcome::Refused(error) => assert_eq!(error.code, "PdfHasNoText"),
        other => panic!("encrypted_doc_no_id.pdf: {}", other.describe()),
    }
}

#[test]
fn user_passwords_are_refused_as_encrypted() {
    // These open only with a password (crazyones-encrypted-256.pdf: AES-256 with the user
    // password "password", as pypdf's own tests open it).
    for name in [
        "crazyones-encrypted-256.pdf",
        "encrypted-file.pdf",
        "libreoffice-writer-password.pdf",
        "encryption/r2-user-password.pdf",
        "encryption/r3-user-password.pdf",
        "encryption/r4-aes-user-password.pdf",
        "encryption/r4-user-password.pdf",
        "encryption/r6-both-passwords.pdf",
    ] {
        let r = result(name);
        assert!(
            r.poppler.is_none(),
            "{name}: pdftotext needs its password too"
        );
        match &r.docflow {
            Outcome::Refused(error) => {
                assert_eq!(error.code, "PdfEncrypted", "{name}");
                assert!(error.message.contains("password"), "{}", error.message);
            }
            other => panic!("{name}: {}", other.describe()),
        }
    }
}

#[test]
fn all_text_operators_are_read() {
    // toy.pdf draws with `Tj`, `TJ`, `'` and `"`.
    let toy = result("toy.pdf").docflow.text().expect("toy.pdf is read");
    for line in ["Single quote operator", "AWAY again1"] {
        assert!(toy.contains(line), "{toy:?}");
    }
    assert!(
        toy.contains("D o u b l e q u o t e o p e r a t o r"),
        "{toy:?}"
    );

    // A hand-written PDF: `'` moves to the next line, `"` also sets the spacing.
    let content =
        b"BT /F1 12 Tf 14 TL 72 700 Td (Tj line) Tj (Quote line) ' 1 0 (Double quote line) \" ET";
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{}\nendstream",
            content.len(),
            String::from_utf8_lossy(content)
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 6\n0000000000 65535 f \n");
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    let deadline = Instant::now() + EXTRACTION_TIME_LIMIT;
    let extraction = extract(DocumentKind::Pdf, &pdf, deadline).unwrap();
    assert_eq!(extraction.text, "Tj line\nQuote line\nDouble quote line");
}
