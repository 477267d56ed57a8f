//! Turning a submitted file into the text that is analysed, and saying how it was read.
//!
//! Every format ends in one [`Extraction`]: the text, the method (text layer, OCR, plain
//! text, …), the pages as byte offsets into the text (so that chunk results can point back to
//! a page) and a warning for everything that was not fully read. A file whose text could not
//! be read in full is never passed on silently: it is refused, sent to OCR, or accepted with
//! its warnings visible in the document's status.
//!
//! # Layout
//! - [`pdf`]: PDF text layers.
//! - [`docx`]: Word documents (`.docx`).
//! - [`html`]: web pages: the readable text.
//! - [`email`]: e-mails (`message/rfc822`), with their attachments.
//!
//! Pure and synchronous: callers run it off the reactor.

pub mod docx;
pub mod email;
pub mod html;
pub mod pdf;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The longest one document's extraction may take before it is refused
/// (`ExtractionTimedOut`): far above what a real document needs (a 500-page PDF reads in
/// about a second), so only a hostile or broken file reaches it.
pub const EXTRACTION_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How deep attachments are followed (an e-mail attached to an e-mail, …).
pub const MAX_NESTING: u8 = 3;

/// The formats whose text docflow extracts. Text itself (plain, Markdown, JSON) is decoded by
/// the submission and needs no extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// `application/pdf`.
    Pdf,
    /// `application/vnd.openxmlformats-officedocument.wordprocessingml.document`.
    Docx,
    /// `text/html`.
    Html,
    /// `message/rfc822`.
    Email,
}

/// The content type of Word documents.
pub const DOCX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

impl DocumentKind {
    /// The kind of a content type's essence (lowercase, without parameters).
    pub fn from_content_type(essence: &str) -> Option<Self> {
        Some(match essence {
            "application/pdf" => Self::Pdf,
            DOCX_CONTENT_TYPE => Self::Docx,
            "text/html" | "application/xhtml+xml" => Self::Html,
            "message/rfc822" => Self::Email,
            _ => return None,
        })
    }

    /// The kind of a file name's extension (`.pdf`, `.docx`, `.html`, `.htm`, `.eml`).
    pub fn from_extension(extension: &str) -> Option<Self> {
        Some(match extension.to_ascii_lowercase().as_str() {
            "pdf" => Self::Pdf,
            "docx" => Self::Docx,
            "html" | "htm" | "xhtml" => Self::Html,
            "eml" => Self::Email,
            _ => return None,
        })
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => DOCX_CONTENT_TYPE,
            Self::Html => "text/html",
            Self::Email => "message/rfc822",
        }
    }
}

/// Extracts the text of a file of a known kind, giving up at `deadline`. CPU-bound: run it
/// off the reactor. A PDF with no text at all is `PdfHasNoText` (a scan: OCR's work).
pub fn extract(
    kind: DocumentKind,
    bytes: &[u8],
    deadline: Instant,
) -> Result<Extraction, ExtractError> {
    extract_nested(kind, bytes, deadline, 0)
}

/// [`extract`] of a file found inside another one, `depth` levels down.
pub(crate) fn extract_nested(
    kind: DocumentKind,
    bytes: &[u8],
    deadline: Instant,
    depth: u8,
) -> Result<Extraction, ExtractError> {
    if depth > MAX_NESTING {
        return Err(ExtractError::new(
            "NestedTooDeep",
            format!("attachments are followed {MAX_NESTING} levels deep, no further"),
        ));
    }
    match kind {
        DocumentKind::Pdf => {
            let extraction = pdf::extract(bytes, deadline)?;
            if extraction.text.trim().is_empty() {
                return Err(ExtractError::new(
                    "PdfHasNoText",
                    "the PDF has no text layer (a scan or images only); it needs OCR",
                ));
            }
            Ok(extraction)
        }
        DocumentKind::Docx => docx::extract(bytes, deadline),
        DocumentKind::Html => html::extract(bytes, None),
        DocumentKind::Email => email::extract(bytes, deadline, depth),
    }
}

/// Checks the time limit inside long loops.
pub(crate) fn check_deadline(deadline: Instant) -> Result<(), ExtractError> {
    if Instant::now() >= deadline {
        return Err(ExtractError::new(
            "ExtractionTimedOut",
            format!(
                "reading the document took longer than {} s; the file is too complex or damaged",
                EXTRACTION_TIME_LIMIT.as_secs()
            ),
        ));
    }
    Ok(())
}

/// How a document's text was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtractionMethod {
    /// Submitted as text (plain, Markdown, JSON): nothing to extract.
    PlainText,
    /// A PDF's text layer.
    TextLayer,
    /// Optical character recognition of a scan or an image.
    Ocr,
    /// A Word document's paragraphs, tables, headers, footers and footnotes.
    Wordprocessing,
    /// A web page's readable text.
    Html,
    /// An e-mail's headers, body and attachments.
    Email,
}

impl ExtractionMethod {
    /// Its name, as in the status's `extraction.method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlainText => "plainText",
            Self::TextLayer => "textLayer",
            Self::Ocr => "ocr",
            Self::Wordprocessing => "wordprocessing",
            Self::Html => "html",
            Self::Email => "email",
        }
    }
}

/// Where one page's text lies in the extracted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageSpan {
    /// The page number, from 1.
    pub page: u32,
    /// Byte offset of the page's first character in the text.
    pub offset: usize,
    /// Bytes of the page's text (0 for a page that yielded none).
    pub length: usize,
}

/// Pages joined into one text, a blank line between pages, each page's span recorded (an
/// empty page gets a span of length 0 where it would have been).
#[derive(Debug, Default)]
pub struct PageText {
    /// The text so far.
    pub text: String,
    /// One span per page pushed.
    pub spans: Vec<PageSpan>,
}

impl PageText {
    /// Appends page `page`'s text; says whether it had any.
    pub fn push(&mut self, page: u32, page_text: &str) -> bool {
        if page_text.is_empty() {
            self.spans.push(PageSpan {
                page,
                offset: self.text.len(),
                length: 0,
            });
            return false;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        self.spans.push(PageSpan {
            page,
            offset: self.text.len(),
            length: page_text.len(),
        });
        self.text.push_str(page_text);
        true
    }
}

/// Something that was not fully read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionWarning {
    /// Machine-readable: `PageWithoutText`, `AttachmentNotRead`, …
    pub code: String,
    /// The page concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// What happened, for a person.
    pub message: String,
}

impl ExtractionWarning {
    /// A warning about the whole document or a part that is not a page.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            page: None,
            message: message.into(),
        }
    }

    /// A warning about one page.
    pub fn page(code: &str, page: u32, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            page: Some(page),
            message: message.into(),
        }
    }
}

/// A document's text and how it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// The text that is analysed.
    pub text: String,
    /// How it was obtained.
    pub method: ExtractionMethod,
    /// Its pages, for paged formats (PDF, OCR); empty otherwise.
    pub pages: Vec<PageSpan>,
    /// Everything that was not fully read.
    pub warnings: Vec<ExtractionWarning>,
}

impl Extraction {
    /// Text read without pages or warnings.
    pub fn plain(text: String, method: ExtractionMethod) -> Self {
        Self {
            text,
            method,
            pages: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Why a file's text cannot be extracted. Each maps to a `422` with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExtractError {
    /// Machine-readable: `UnreadablePdf`, `PdfHasNoText`, `UnreadableDocx`, …
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl ExtractError {
    /// An error with its code.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_are_the_status_names() {
        for method in [
            ExtractionMethod::PlainText,
            ExtractionMethod::TextLayer,
            ExtractionMethod::Ocr,
            ExtractionMethod::Wordprocessing,
            ExtractionMethod::Html,
            ExtractionMethod::Email,
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
    }

    #[test]
    fn pages_are_joined_with_their_spans() {
        let mut joined = PageText::default();
        assert!(joined.push(1, "one"));
        assert!(!joined.push(2, ""));
        assert!(joined.push(3, "three"));
        assert_eq!(joined.text, "one\n\nthree");
        let spans: Vec<_> = joined
            .spans
            .iter()
            .map(|s| (s.page, s.offset, s.length))
            .collect();
        assert_eq!(spans, vec![(1, 0, 3), (2, 3, 0), (3, 5, 5)]);
    }
}
