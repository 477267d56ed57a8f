//! How a document's text was obtained, as its state record keeps it: the `extraction` of the
//! status (method, pages, characters, page spans, warnings) and, for a scan, the file waiting
//! for the `extract_text` step's OCR.

use serde::{Deserialize, Serialize};

use crate::extract::{Extraction, ExtractionMethod, ExtractionWarning, PageSpan};
use crate::task::ContentRef;

/// The kind of the task that turns a scan into text before the analyses (OCR).
pub const EXTRACT_TEXT_KIND: &str = "extract_text";

/// Whether a document's text is there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtractionStatus {
    /// The text is stored; the analyses run on it.
    Done,
    /// The file waits for OCR (the `extract_text` task); the analyses start after it.
    Pending,
    /// OCR failed: the document cannot be analysed.
    Failed,
}

/// How the document's text was obtained: the `extraction` of its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionInfo {
    /// Whether the text is there yet.
    pub status: ExtractionStatus,
    /// Text layer, OCR, plain text, …
    pub method: ExtractionMethod,
    /// The OCR provider that read it (`azure-document-intelligence`, `tesseract`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Pages of a paged document (PDF, scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// Characters of the text analysed.
    pub characters: u64,
    /// Each page's place in the text (byte offsets), so results can point back to a page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub page_spans: Vec<PageSpan>,
    /// Everything that was not fully read (a page without text, an attachment, …).
    #[serde(default)]
    pub warnings: Vec<ExtractionWarning>,
    /// The submitted file, kept when its text comes from OCR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ContentRef>,
}

impl ExtractionInfo {
    /// The record of a finished extraction.
    pub fn done(extraction: &Extraction, provider: Option<&str>) -> Self {
        let paged = !extraction.pages.is_empty();
        Self {
            status: ExtractionStatus::Done,
            method: extraction.method,
            provider: provider.map(str::to_owned),
            pages: paged.then_some(extraction.pages.len() as u32),
            characters: extraction.text.chars().count() as u64,
            page_spans: extraction.pages.clone(),
            warnings: extraction.warnings.clone(),
            source: None,
        }
    }

    /// The record of a file waiting for OCR, with the reason it needs it (its `source` is set
    /// once the file is stored).
    pub fn pending_ocr(provider: &str, warnings: Vec<ExtractionWarning>) -> Self {
        Self {
            status: ExtractionStatus::Pending,
            method: ExtractionMethod::Ocr,
            provider: Some(provider.to_owned()),
            pages: None,
            characters: 0,
            page_spans: Vec::new(),
            warnings,
            source: None,
        }
    }
}
