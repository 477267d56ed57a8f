//! What a submitted document becomes before it is accepted: its text with how it was read, or
//! a file for OCR. The policy that nothing is analysed silently on part of its text lives here:
//! a PDF without a text layer, or whose pages mostly yield none, goes to OCR when OCR is
//! configured; without OCR it is refused (`422`) when nothing was read, and accepted with a
//! warning per empty page when some pages were. CPU-bound: callers run [`take_in`] off the
//! reactor.

use std::time::Instant;

use bytes::Bytes;

use super::submission::{Payload, SubmitError};
use crate::extract::{
    self, DocumentKind, ExtractError, Extraction, ExtractionMethod, ExtractionWarning,
};

/// A document ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Its text, and how it was read.
    Text(Extraction),
    /// A scan: the file is stored as it is and its text comes from the `extract_text` step.
    Ocr {
        /// The file.
        bytes: Bytes,
        /// Its content type (`application/pdf`, `image/png`, …).
        content_type: String,
        /// Why it needs OCR (pages without text), kept in the status.
        warnings: Vec<ExtractionWarning>,
    },
}

/// Reads a submitted payload. `ocr` says whether an OCR provider is configured; `deadline`
/// bounds the extraction.
pub fn take_in(payload: &Payload, ocr: bool, deadline: Instant) -> Result<Intake, SubmitError> {
    match payload {
        Payload::Text(text) => Ok(Intake::Text(Extraction::plain(
            text.clone(),
            ExtractionMethod::PlainText,
        ))),
        Payload::Image {
            content_type,
            bytes,
        } if ocr => Ok(Intake::Ocr {
            bytes: bytes.clone(),
            content_type: content_type.clone(),
            warnings: Vec::new(),
        }),
        Payload::Image { content_type, .. } => Err(refused(
            "ImageNeedsOcr",
            format!(
                "{content_type} has no text layer: an image needs OCR, and none is configured (set DOCFLOW_OCR_PROVIDER), or submit its text"
            ),
        )),
        Payload::File {
            kind: DocumentKind::Html,
            bytes,
            charset,
        } => nonempty(extract::html::extract(bytes, charset.as_deref()).map_err(unreadable)?),
        Payload::File { kind, bytes, .. } => match extract::extract(*kind, bytes, deadline) {
            Ok(extraction) if *kind == DocumentKind::Pdf => pdf(extraction, bytes, ocr),
            Ok(extraction) => nonempty(extraction),
            Err(e) if e.code == "PdfHasNoText" && ocr => Ok(Intake::Ocr {
                bytes: bytes.clone(),
                content_type: kind.content_type().into(),
                warnings: vec![ExtractionWarning::new("NoTextLayer", e.message)],
            }),
            Err(e) if e.code == "PdfHasNoText" => Err(refused(
                "PdfHasNoText",
                "the PDF has no text layer (a scan or images only): it needs OCR, and none is configured (set DOCFLOW_OCR_PROVIDER), or submit its text",
            )),
            Err(e) => Err(unreadable(e)),
        },
    }
}

/// A PDF whose pages mostly yield no text goes to OCR when it can; otherwise it is accepted
/// on the pages that were read, each empty page named in a warning.
fn pdf(extraction: Extraction, bytes: &Bytes, ocr: bool) -> Result<Intake, SubmitError> {
    let empty = extraction.pages.iter().filter(|p| p.length == 0).count();
    if ocr && empty * 2 > extraction.pages.len() {
        let mut warnings = extraction.warnings;
        warnings.push(ExtractionWarning::new(
            "MostlyWithoutText",
            format!(
                "{empty} of {} pages have no text layer: the document is read by OCR",
                extraction.pages.len()
            ),
        ));
        return Ok(Intake::Ocr {
            bytes: bytes.clone(),
            content_type: DocumentKind::Pdf.content_type().into(),
            warnings,
        });
    }
    nonempty(extraction)
}

fn nonempty(extraction: Extraction) -> Result<Intake, SubmitError> {
    if extraction.text.trim().is_empty() {
        return Err(refused(
            "DocumentHasNoText",
            "the document holds no text to analyse",
        ));
    }
    Ok(Intake::Text(extraction))
}

fn refused(code: &'static str, message: impl Into<String>) -> SubmitError {
    SubmitError::new(422, code, "body", message)
}

fn unreadable(e: ExtractError) -> SubmitError {
    refused(e.code, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::PageSpan;

    fn deadline() -> Instant {
        Instant::now() + extract::EXTRACTION_TIME_LIMIT
    }

    fn pages(lengths: &[usize]) -> Extraction {
        let mut offset = 0;
        let pages = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| {
                let page = PageSpan {
                    page: i as u32 + 1,
                    offset,
                    length,
                };
                offset += length;
                page
            })
            .collect();
        Extraction {
            text: "x".repeat(offset),
            method: ExtractionMethod::TextLayer,
            pages,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn text_is_plain_text() {
        let intake = take_in(&Payload::Text("Hello.".into()), false, deadline()).unwrap();
        assert_eq!(
            intake,
            Intake::Text(Extraction::plain(
                "Hello.".into(),
                ExtractionMethod::PlainText
            ))
        );
    }

    #[test]
    fn images_need_ocr() {
        let image = Payload::Image {
            content_type: "image/png".into(),
            bytes: Bytes::from_static(b"\x89PNG"),
        };
        assert!(matches!(
            take_in(&image, true, deadline()),
            Ok(Intake::Ocr { ref content_type, .. }) if content_type == "image/png"
        ));
        let e = take_in(&image, false, deadline()).unwrap_err();
        assert_eq!((e.status, e.code), (422, "ImageNeedsOcr"));
    }

    #[test]
    fn a_pdf_mostly_without_text_goes_to_ocr_when_it_can() {
        let bytes = Bytes::from_static(b"%PDF");
        let mostly_empty = pages(&[10, 0, 0]);
        assert!(matches!(
            pdf(mostly_empty.clone(), &bytes, true),
            Ok(Intake::Ocr { ref warnings, .. }) if warnings.iter().any(|w| w.code == "MostlyWithoutText")
        ));
        // Without OCR it is accepted on what was read; its warnings stay with it.
        assert!(matches!(
            pdf(mostly_empty, &bytes, false),
            Ok(Intake::Text(_))
        ));
        // One empty page of three (a figure) is no reason for OCR.
        assert!(matches!(
            pdf(pages(&[10, 0, 10]), &bytes, true),
            Ok(Intake::Text(_))
        ));
    }

    #[test]
    fn unreadable_files_are_422_with_the_extractor_code() {
        let garbage = Payload::File {
            kind: DocumentKind::Pdf,
            bytes: Bytes::from_static(b"not a pdf at all"),
            charset: None,
        };
        let e = take_in(&garbage, false, deadline()).unwrap_err();
        assert_eq!((e.status, e.code), (422, "UnreadablePdf"));
    }
}
