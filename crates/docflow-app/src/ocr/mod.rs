//! Optical character recognition: the text of scans and images, as a pipeline step.
//!
//! OCR is a seam like the AI provider: Azure AI Document Intelligence in Azure, Tesseract
//! locally. It runs as the pipeline's `extract_text` step (ProcessDocument), under the same
//! retry-later, budget and dead-letter rules as the AI tasks, so its errors say what should
//! happen next.
//!
//! # Layout
//! - [`document_intelligence`]: Azure AI Document Intelligence over its REST API.
//! - [`tesseract`]: the offline provider, Debian's `tesseract` (and `pdftoppm` for PDFs).

pub mod document_intelligence;
pub mod tesseract;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::extract::Extraction;

/// Why recognition failed, and so what should happen next.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// The service is rate-limited (`429`): try again after the wait.
    #[error("the OCR service is rate-limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long the service asked to wait.
        retry_after: Duration,
    },
    /// The service failed in a way worth retrying (network, `5xx`, a timeout).
    #[error("the OCR service failed: {0}")]
    Transient(String),
    /// The document cannot be recognised, whatever the number of tries (a failed analysis,
    /// an unsupported or corrupt file): poison, with a code and a reason.
    #[error("{message}")]
    Rejected {
        /// Machine-readable: `OcrFailed`, `UnsupportedImage`, …
        code: &'static str,
        /// What the service said.
        message: String,
    },
}

/// The formats OCR reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrFormat {
    /// `application/pdf`: a scan, page by page.
    Pdf,
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// `image/tiff`, possibly with several pages.
    Tiff,
}

impl OcrFormat {
    /// The format of a content type (its essence: parameters and case are ignored), if OCR
    /// reads it.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        Some(match essence.to_ascii_lowercase().as_str() {
            "application/pdf" => Self::Pdf,
            "image/png" => Self::Png,
            "image/jpeg" => Self::Jpeg,
            "image/tiff" => Self::Tiff,
            _ => return None,
        })
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Tiff => "image/tiff",
        }
    }

    /// Whether `bytes` begin as a file of this format does (its signature).
    pub fn matches(self, bytes: &[u8]) -> bool {
        match self {
            // Readers accept a PDF header anywhere in the first kilobyte.
            Self::Pdf => bytes[..bytes.len().min(1024)]
                .windows(5)
                .any(|w| w == b"%PDF-"),
            Self::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            Self::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            Self::Tiff => bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*"),
        }
    }

    /// The format of a submitted file: `UnsupportedImage` when OCR does not read its content
    /// type, or when its bytes are not of that type (checked before any program or service
    /// sees them).
    pub fn of(content_type: &str, bytes: &[u8]) -> Result<Self, OcrError> {
        let format = Self::from_content_type(content_type).ok_or_else(|| OcrError::Rejected {
            code: "UnsupportedImage",
            message: format!(
                "OCR cannot read {content_type:?}; it reads application/pdf, image/png, \
                 image/jpeg and image/tiff"
            ),
        })?;
        if !format.matches(bytes) {
            return Err(OcrError::Rejected {
                code: "UnsupportedImage",
                message: format!(
                    "the file was sent as {} but its bytes are not a {} file",
                    format.content_type(),
                    format.name()
                ),
            });
        }
        Ok(format)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Tiff => "TIFF",
        }
    }
}

/// A provider of OCR.
#[async_trait]
pub trait OcrProvider: Send + Sync {
    /// Its name in logs and in the document's status (`azure-document-intelligence`,
    /// `tesseract`).
    fn name(&self) -> &'static str;

    /// Recognises the text of a PDF or an image (`application/pdf`, `image/png`,
    /// `image/jpeg`, `image/tiff`). The extraction's method is [`Ocr`], with one
    /// [`PageSpan`] per page and a warning for each page where nothing was recognised.
    ///
    /// [`Ocr`]: crate::extract::ExtractionMethod::Ocr
    /// [`PageSpan`]: crate::extract::PageSpan
    async fn recognize(&self, content: Bytes, content_type: &str) -> Result<Extraction, OcrError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_content_type_essence() {
        assert_eq!(
            OcrFormat::from_content_type("Image/PNG; name=scan.png"),
            Some(OcrFormat::Png)
        );
        assert_eq!(
            OcrFormat::from_content_type("application/pdf"),
            Some(OcrFormat::Pdf)
        );
        assert_eq!(OcrFormat::from_content_type("text/plain"), None);
    }

    #[test]
    fn a_file_must_be_what_its_content_type_says() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(OcrFormat::of("image/png", png).unwrap(), OcrFormat::Png);
        assert_eq!(
            OcrFormat::of("application/pdf", b"\n%PDF-1.7\n").unwrap(),
            OcrFormat::Pdf
        );
        assert_eq!(
            OcrFormat::of("image/tiff", b"MM\0*\0\0\0\x08").unwrap(),
            OcrFormat::Tiff
        );
        // A list of file names sent as an image: never handed to a program.
        match OcrFormat::of("image/png", b"page-1.png\npage-2.png\n") {
            Err(OcrError::Rejected { code, message }) => {
                assert_eq!(code, "UnsupportedImage");
                assert!(message.contains("not a PNG file"), "{message}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        match OcrFormat::of("text/plain", b"hello") {
            Err(OcrError::Rejected { code, message }) => {
                assert_eq!(code, "UnsupportedImage");
                assert!(message.contains("text/plain"), "{message}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
