//! Tesseract, locally: Debian's `tesseract` (package `tesseract-ocr`) reads images, and
//! `pdftoppm` (package `poppler-utils`) renders a PDF's pages into images for it first.
//!
//! Each document gets a private temporary folder, removed afterwards (also when the call is
//! abandoned: the programs are killed on drop). PDFs are rendered a few pages at a time, each
//! page image read and deleted before the next batch, so a long scan never fills the disk.
//! Pages are separated by a blank line in the text; a page where nothing was recognised gets
//! an empty [`PageSpan`](crate::extract::PageSpan) and a `PageWithoutText` warning.
//!
//! A file is checked to be what its content type says before any program sees it: Tesseract
//! reads a file that is not an image as a list of image paths, which must never come from a
//! submitted document.
//!
//! What failures mean: a program that is missing, that cannot load its language data, that
//! is killed, or that outlives the timeout is transient (the operator or a later try fixes
//! it); a program that refuses the file (a corrupt image or PDF) rejects the document with
//! its own words.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{OcrError, OcrFormat, OcrProvider};
use crate::extract::{Extraction, ExtractionMethod, ExtractionWarning, PageText};

/// How to install the programs, for messages.
const INSTALL_HINT: &str = "apt-get install tesseract-ocr poppler-utils";

/// Pages rendered at once from a PDF.
const PAGES_PER_BATCH: u32 = 4;

/// The form feed Tesseract writes between the pages of a multi-page image.
const PAGE_SEPARATOR: char = '\u{c}';

/// The exit code of `pdftoppm` for "other errors", among them a first page past the last.
const PDFTOPPM_OTHER_ERROR: i32 = 99;

/// Options of [`TesseractProvider`].
#[derive(Debug, Clone)]
pub struct TesseractOptions {
    /// The `tesseract` program (default: found on `PATH`).
    pub tesseract: PathBuf,
    /// The `pdftoppm` program (default: found on `PATH`).
    pub pdftoppm: PathBuf,
    /// Tesseract's languages, e.g. `eng` or `deu+eng` (each needs its `tesseract-ocr-…`
    /// package).
    pub languages: String,
    /// Resolution at which PDF pages are rendered.
    pub dpi: u32,
    /// The longest one document may take, all pages included.
    pub timeout: Duration,
}

impl Default for TesseractOptions {
    fn default() -> Self {
        Self {
            tesseract: "tesseract".into(),
            pdftoppm: "pdftoppm".into(),
            languages: "eng".into(),
            dpi: 300,
            timeout: Duration::from_secs(300),
        }
    }
}

/// OCR by Tesseract on this machine.
#[derive(Debug, Clone)]
pub struct TesseractProvider {
    options: TesseractOptions,
}

impl TesseractProvider {
    /// A provider with these options (the programs are looked for at the first call).
    pub fn new(options: TesseractOptions) -> Self {
        Self { options }
    }

    /// Its options.
    pub fn options(&self) -> &TesseractOptions {
        &self.options
    }

    /// Runs a program within the deadline; its standard output.
    async fn run(
        &self,
        program: &Path,
        args: Vec<OsString>,
        deadline: Instant,
    ) -> Result<Vec<u8>, RunFailure> {
        let name = program_name(program);
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                RunFailure::Ocr(OcrError::Transient(
                    if e.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "{name} was not found ({program:?}): install it (`{INSTALL_HINT}`) or \
                             configure its path"
                        )
                    } else {
                        format!("cannot start {name} ({program:?}): {e}")
                    },
                ))
            })?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let output = match tokio::time::timeout(remaining, child.wait_with_output()).await {
            Err(_) => {
                return Err(RunFailure::Ocr(OcrError::Transient(format!(
                    "OCR with {name} did not finish within {:?}",
                    self.options.timeout
                ))));
            }
            Ok(Err(e)) => {
                return Err(RunFailure::Ocr(OcrError::Transient(format!(
                    "waiting for {name} failed: {e}"
                ))));
            }
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stderr = tail(&String::from_utf8_lossy(&output.stderr));
        match output.status.code() {
            Some(code) => Err(RunFailure::Exit { code, stderr }),
            None => Err(RunFailure::Ocr(OcrError::Transient(format!(
                "{name} was killed ({}): {stderr}",
                output.status
            )))),
        }
    }

    /// The text of one image file, page by page (a TIFF may hold several).
    async fn read_image(&self, image: &Path, deadline: Instant) -> Result<Vec<String>, OcrError> {
        let args = vec![
            image.as_os_str().to_owned(),
            "stdout".into(),
            "-l".into(),
            self.options.languages.clone().into(),
        ];
        match self.run(&self.options.tesseract, args, deadline).await {
            Ok(stdout) => Ok(String::from_utf8_lossy(&stdout)
                .split(PAGE_SEPARATOR)
                .map(str::to_owned)
                .collect()),
            Err(RunFailure::Ocr(e)) => Err(e),
            Err(RunFailure::Exit { stderr, .. }) if is_language_problem(&stderr) => {
                Err(OcrError::Transient(format!(
                    "tesseract cannot load the language data for {:?}: install the matching \
                     tesseract-ocr-… packages or change the languages ({stderr})",
                    self.options.languages
                )))
            }
            Err(RunFailure::Exit { code, stderr }) => Err(OcrError::Rejected {
                code: "OcrFailed",
                message: format!("tesseract could not read the image (exit {code}): {stderr}"),
            }),
        }
    }

    /// Renders pages `first..=first + PAGES_PER_BATCH - 1` of the PDF into `dir`; their
    /// numbers and image files, in order. `None` once `first` is past the last page.
    async fn render_batch(
        &self,
        pdf: &Path,
        dir: &Path,
        first: u32,
        deadline: Instant,
    ) -> Result<Option<Vec<(u32, PathBuf)>>, OcrError> {
        let last = first + PAGES_PER_BATCH - 1;
        let args: Vec<OsString> = vec![
            "-r".into(),
            self.options.dpi.to_string().into(),
            "-gray".into(),
            "-png".into(),
            "-f".into(),
            first.to_string().into(),
            "-l".into(),
            last.to_string().into(),
            pdf.as_os_str().to_owned(),
            dir.join("page").into_os_string(),
        ];
        let outcome = self.run(&self.options.pdftoppm, args, deadline).await;
        let pages = rendered_pages(dir).map_err(|e| {
            OcrError::Transient(format!("listing the pages pdftoppm rendered failed: {e}"))
        })?;
        match outcome {
            Ok(_) => Ok(Some(pages)),
            Err(RunFailure::Ocr(e)) => Err(e),
            // Asked to start past the last page: the previous batch ended the document.
            Err(RunFailure::Exit { code, stderr })
                if code == PDFTOPPM_OTHER_ERROR && first > 1 && pages.is_empty() =>
            {
                tracing::debug!(%stderr, first, "pdftoppm: no page from here on");
                Ok(None)
            }
            Err(RunFailure::Exit { code, stderr }) => Err(OcrError::Rejected {
                code: "OcrFailed",
                message: format!("pdftoppm could not render the PDF (exit {code}): {stderr}"),
            }),
        }
    }

    /// The text of every page of a PDF, with the page numbers.
    async fn read_pdf(
        &self,
        pdf: &Path,
        dir: &Path,
        deadline: Instant,
    ) -> Result<Vec<(u32, String)>, OcrError> {
        let mut pages = Vec::new();
        let mut first = 1;
        while let Some(batch) = self.render_batch(pdf, dir, first, deadline).await? {
            let complete = batch.len() as u32 == PAGES_PER_BATCH;
            for (number, image) in batch {
                let text = self.read_image(&image, deadline).await?.join("\n");
                pages.push((number, text));
                std::fs::remove_file(&image).map_err(|e| {
                    OcrError::Transient(format!("removing a rendered page failed: {e}"))
                })?;
            }
            if !complete {
                break;
            }
            first += PAGES_PER_BATCH;
        }
        if pages.is_empty() {
            return Err(OcrError::Rejected {
                code: "OcrFailed",
                message: "pdftoppm rendered no page of the PDF".into(),
            });
        }
        Ok(pages)
    }
}

#[async_trait]
impl OcrProvider for TesseractProvider {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    async fn recognize(&self, content: Bytes, content_type: &str) -> Result<Extraction, OcrError> {
        let format = OcrFormat::of(content_type, &content)?;
        let deadline = Instant::now() + self.options.timeout;
        let dir = tempfile::Builder::new()
            .prefix("docflow-ocr-")
            .tempdir()
            .map_err(|e| OcrError::Transient(format!("creating a temporary folder failed: {e}")))?;
        let input = dir.path().join(match format {
            OcrFormat::Pdf => "document.pdf",
            OcrFormat::Png => "image.png",
            OcrFormat::Jpeg => "image.jpg",
            OcrFormat::Tiff => "image.tif",
        });
        tokio::fs::write(&input, &content).await.map_err(|e| {
            OcrError::Transient(format!(
                "writing the document to a temporary file failed: {e}"
            ))
        })?;
        drop(content);
        let pages = match format {
            OcrFormat::Pdf => self.read_pdf(&input, dir.path(), deadline).await?,
            _ => (1..)
                .zip(self.read_image(&input, deadline).await?)
                .collect(),
        };
        Ok(assemble(pages))
    }
}

/// Why a program did not give its output.
enum RunFailure {
    /// It ran and exited with this code, saying this.
    Exit { code: i32, stderr: String },
    /// It could not run, ran out of time or was killed: already an outcome.
    Ocr(OcrError),
}

/// The page images pdftoppm left in `dir` (`page-7.png`, `page-007.png`, …), by number.
fn rendered_pages(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("page-"))
            .and_then(|n| n.strip_suffix(".png"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(number) = number {
            pages.push((number, path));
        }
    }
    pages.sort();
    Ok(pages)
}

/// The pages' texts joined by blank lines, with their spans and a warning per empty page.
fn assemble(pages: Vec<(u32, String)>) -> Extraction {
    let mut joined = PageText::default();
    let mut warnings = Vec::new();
    for (page, raw) in pages {
        if !joined.push(page, &clean(&raw)) {
            warnings.push(ExtractionWarning::page(
                "PageWithoutText",
                page,
                format!(
                    "tesseract recognised no text on page {page} (a blank page, or a picture without writing)"
                ),
            ));
        }
    }
    Extraction {
        text: joined.text,
        method: ExtractionMethod::Ocr,
        pages: joined.spans,
        warnings,
    }
}

/// One page of Tesseract's output: no trailing spaces on lines, no blank lines around.
fn clean(raw: &str) -> String {
    raw.replace(PAGE_SEPARATOR, "")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_matches('\n')
        .to_owned()
}

/// Whether Tesseract's complaint is about its language data (a configuration problem).
fn is_language_problem(stderr: &str) -> bool {
    stderr.contains("Failed loading language") || stderr.contains("couldn't load any languages")
}

/// The last few hundred characters of a program's complaint, on one line.
fn tail(stderr: &str) -> String {
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = flat.chars().collect();
    let start = chars.len().saturating_sub(500);
    let tail: String = chars[start..].iter().collect();
    if tail.is_empty() {
        "no message".into()
    } else {
        tail
    }
}

/// A program's name for messages: its file name.
fn program_name(program: &Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::PageSpan;

    #[test]
    fn pages_are_joined_by_blank_lines_and_empty_pages_are_flagged() {
        let e = assemble(vec![
            (1, "Invoice 4711  \nContoso\n\n".into()),
            (2, " \n\u{c}".into()),
            (3, "\nSecond page\n".into()),
        ]);
        assert_eq!(e.text, "Invoice 4711\nContoso\n\nSecond page");
        assert_eq!(e.method, ExtractionMethod::Ocr);
        assert_eq!(
            e.pages,
            [
                PageSpan {
                    page: 1,
                    offset: 0,
                    length: 20
                },
                PageSpan {
                    page: 2,
                    offset: 20,
                    length: 0
                },
                PageSpan {
                    page: 3,
                    offset: 22,
                    length: 11
                },
            ]
        );
        assert_eq!(&e.text[22..33], "Second page");
        assert_eq!(e.warnings.len(), 1);
        assert_eq!(e.warnings[0].code, "PageWithoutText");
        assert_eq!(e.warnings[0].page, Some(2));
    }

    #[test]
    fn page_images_are_ordered_by_number_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "page-10.png",
            "page-9.png",
            "page-1.png",
            "document.pdf",
            "page-x.png",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let numbers: Vec<u32> = rendered_pages(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, [1, 9, 10]);
    }

    #[test]
    fn complaints_are_cut_to_their_end_on_one_line() {
        assert_eq!(
            tail("Error in pixRead:\n  image file not found\n"),
            "Error in pixRead: image file not found"
        );
        assert_eq!(tail(""), "no message");
        assert_eq!(tail(&"x".repeat(2000)).len(), 500);
        assert!(is_language_problem(
            "Error opening data file deu.traineddata\nFailed loading language 'deu'\nTesseract couldn't load any languages!"
        ));
        assert!(!is_language_problem("Error in pixReadMem: Unknown format"));
    }
}
