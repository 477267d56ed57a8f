//! PDFs as real producers write them, read back: a contract printed by Ghostscript
//! (`ps2pdf`) and one exported by LibreOffice Writer. docflow must find at least 90% of the
//! words of the source text, and of what poppler's `pdftotext` finds.
//!
//! The tools come from `scripts/install-test-tools.sh`; a missing one fails the test with that
//! hint.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::recall::recall_of as recall;
use docflow::extract::{DocumentKind, EXTRACTION_TIME_LIMIT, extract};

/// The least share of the reference words docflow must find.
const MIN_RECALL: f64 = 0.90;

/// How long LibreOffice may take to start and convert (its first start builds a profile).
const CONVERSION_LIMIT: Duration = Duration::from_secs(240);

/// A one-page contract of several paragraphs.
const CONTRACT: &str = "SERVICES AGREEMENT

This Services Agreement is made on March 3, 2025 between Contoso Office Supplies GmbH, a company registered in Munich, Germany, and Fabrikam Logistics Limited, a company registered in Leeds, United Kingdom.

1. Services. The supplier shall deliver office furniture, stationery and printer consumables to the customer's warehouses every second Tuesday, and shall notify the customer at least five business days in advance of any change to the delivery schedule.

2. Fees and payment. The customer shall pay each invoice within thirty days of its date. Late payments bear interest at four percent above the base rate of the European Central Bank, calculated daily until the amount is paid in full.

3. Term and termination. This agreement begins on the date above and continues for twenty four months. Either party may terminate it with ninety days written notice, or immediately if the other party materially breaches it and fails to remedy the breach within fourteen days.

4. Governing law. This agreement is governed by the laws of Germany, and the courts of Munich have exclusive jurisdiction over any dispute arising from it.";

/// Runs a tool, failing the test with the install hint when it is missing.
fn run(program: &str, args: &[&str], cwd: &Path) -> std::process::Output {
    let mut child = match Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("{program} is not installed: run `bash scripts/install-test-tools.sh`")
        }
        Err(error) => panic!("{program} could not run: {error}"),
    };
    let deadline = Instant::now() + CONVERSION_LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} took more than {} s", CONVERSION_LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `pdftotext`'s text of a file.
fn pdftotext(file: &Path) -> String {
    let output = run(
        "pdftotext",
        &["-enc", "UTF-8", file.to_str().unwrap(), "-"],
        file.parent().unwrap(),
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Reads `pdf` with docflow and checks it against the source and `pdftotext`: its text and
/// its number of pages.
fn check(pdf: &Path) -> (String, usize) {
    let bytes = std::fs::read(pdf).unwrap();
    let extraction = extract(
        DocumentKind::Pdf,
        &bytes,
        Instant::now() + EXTRACTION_TIME_LIMIT,
    )
    .unwrap_or_else(|error| panic!("{}: {error:?}", pdf.display()));
    let poppler = pdftotext(pdf);
    let (from_source, from_poppler) = (
        recall(&extraction.text, CONTRACT),
        recall(&extraction.text, &poppler),
    );
    assert!(
        from_source >= MIN_RECALL && from_poppler >= MIN_RECALL,
        "{}: recall {from_source:.3} of the source, {from_poppler:.3} of pdftotext's words:\n{}",
        pdf.display(),
        extraction.text
    );
    // One span per page, in order, each within the text, the last one ending it.
    for (index, span) in extraction.pages.iter().enumerate() {
        assert_eq!(span.page as usize, index + 1);
        assert!(span.offset + span.length <= extraction.text.len());
    }
    let last = extraction.pages.last().expect("a page");
    assert_eq!(last.offset + last.length, extraction.text.len());
    (extraction.text, extraction.pages.len())
}

/// The contract's paragraphs wrapped at `width` characters.
fn wrapped(width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in CONTRACT.split("\n\n") {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
        lines.push(String::new());
    }
    lines
}

#[test]
fn a_contract_printed_by_ghostscript_is_read_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut postscript = String::from("%!PS\n/Times-Roman findfont 11 scalefont setfont\n");
    let mut y = 740;
    for line in wrapped(80) {
        if !line.is_empty() {
            let escaped = line
                .replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)");
            postscript.push_str(&format!("72 {y} moveto ({escaped}) show\n"));
        }
        y -= 14;
    }
    postscript.push_str("showpage\n");
    std::fs::write(dir.path().join("contract.ps"), postscript).unwrap();
    run("ps2pdf", &["contract.ps", "contract.pdf"], dir.path());
    let (text, pages) = check(&dir.path().join("contract.pdf"));
    assert_eq!(pages, 1);
    // Every line of the page, in order: the last paragraph comes last.
    assert!(text.starts_with("SERVICES AGREEMENT\n"), "{text}");
    assert!(text.trim_end().ends_with("arising from it."), "{text}");
}

#[test]
fn a_contract_exported_by_libreoffice_is_read_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let html: String = CONTRACT
        .split("\n\n")
        .map(|paragraph| format!("<p>{paragraph}</p>\n"))
        .collect();
    std::fs::write(
        dir.path().join("contract.html"),
        format!("<!DOCTYPE html><html><body>\n{html}</body></html>\n"),
    )
    .unwrap();
    // A private profile: concurrent runs must not share (and lock) one.
    let profile = format!(
        "-env:UserInstallation=file://{}/profile",
        dir.path().display()
    );
    run(
        "libreoffice",
        &[
            "--headless",
            &profile,
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
            dir.path().to_str().unwrap(),
            "contract.html",
        ],
        dir.path(),
    );
    let (text, _) = check(&dir.path().join("contract.pdf"));
    assert!(text.contains("Governing law"), "{text}");
}
