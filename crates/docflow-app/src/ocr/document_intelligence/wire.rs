//! The JSON of Document Intelligence (REST API 2024-11-30), read into typed values, and the
//! result turned into docflow's [`Extraction`].
//!
//! Shapes follow the service's published OpenAPI description
//! (`specification/ai/data-plane/DocumentIntelligence/stable/2024-11-30/DocumentIntelligence.json`
//! in Azure/azure-rest-api-specs): `AnalyzeDocumentRequest`, `AnalyzeOperation`,
//! `AnalyzeResult`, `DocumentPage`, `DocumentSpan`, `DocumentIntelligenceErrorResponse`.
//! Only the fields docflow reads are declared; the rest (words, polygons, styles, …) is skipped
//! by the parser.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::extract::{Extraction, ExtractionMethod, ExtractionWarning, PageSpan};

/// The body of `POST …/documentModels/{modelId}:analyze` (`AnalyzeDocumentRequest`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnalyzeDocumentRequest<'a> {
    /// The document, base64-encoded (`format: byte`).
    pub(super) base64_source: &'a str,
}

/// `AnalyzeOperation`: what a poll of the `Operation-Location` answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnalyzeOperation {
    pub(super) status: OperationStatus,
    #[serde(default)]
    pub(super) error: Option<ServiceError>,
    #[serde(default)]
    pub(super) analyze_result: Option<AnalyzeResult>,
}

/// `DocumentIntelligenceOperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum OperationStatus {
    NotStarted,
    Running,
    Failed,
    Succeeded,
    Canceled,
    Skipped,
    /// A status this version of docflow does not know.
    #[serde(other)]
    Unknown,
}

/// `AnalyzeResult`, the part docflow uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnalyzeResult {
    /// How offsets and lengths are counted (`utf16CodeUnit` as asked, normally).
    #[serde(default)]
    pub(super) string_index_type: Option<String>,
    /// Everything read, in reading order.
    pub(super) content: String,
    pub(super) pages: Vec<DocumentPage>,
    #[serde(default)]
    pub(super) warnings: Vec<ServiceWarning>,
}

/// `DocumentPage`, the part docflow uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DocumentPage {
    pub(super) page_number: u32,
    /// Where the page lies in `content`.
    #[serde(default)]
    pub(super) spans: Vec<DocumentSpan>,
}

/// `DocumentSpan`: a stretch of `content`, in the units of `stringIndexType`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) struct DocumentSpan {
    pub(super) offset: usize,
    pub(super) length: usize,
}

/// `DocumentIntelligenceWarning`.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceWarning {
    pub(super) code: String,
    pub(super) message: String,
}

/// `DocumentIntelligenceErrorResponse`: the body of every `4xx` and `5xx`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorResponse {
    pub(super) error: ServiceError,
}

/// `DocumentIntelligenceError`.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceError {
    pub(super) code: String,
    pub(super) message: String,
    #[serde(default)]
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) details: Vec<ServiceError>,
    #[serde(default)]
    pub(super) innererror: Option<InnerError>,
}

/// `DocumentIntelligenceInnerError`.
#[derive(Debug, Deserialize)]
pub(super) struct InnerError {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) innererror: Option<Box<InnerError>>,
}

impl ServiceError {
    /// The most specific code: the innermost `innererror` code, else the top-level one.
    pub(super) fn specific_code(&self) -> &str {
        let mut code = self.code.as_str();
        let mut inner = self.innererror.as_ref();
        while let Some(i) = inner {
            if let Some(c) = i.code.as_deref() {
                code = c;
            }
            inner = i.innererror.as_deref();
        }
        code
    }

    /// `code: message`, then each inner error and detail, for a person.
    pub(super) fn describe(&self) -> String {
        let mut text = format!("{}: {}", self.code, self.message);
        let mut inner = self.innererror.as_ref();
        while let Some(i) = inner {
            match (&i.code, &i.message) {
                (Some(c), Some(m)) => text.push_str(&format!(" ({c}: {m})")),
                (Some(c), None) => text.push_str(&format!(" ({c})")),
                (None, Some(m)) => text.push_str(&format!(" ({m})")),
                (None, None) => {}
            }
            inner = i.innererror.as_deref();
        }
        for detail in &self.details {
            text.push_str("; ");
            if let Some(target) = &detail.target {
                text.push_str(&format!("[{target}] "));
            }
            text.push_str(&detail.describe());
        }
        text
    }

    /// Every code in the error: the top-level one, inner errors and details.
    pub(super) fn codes(&self) -> Vec<&str> {
        let mut codes = vec![self.code.as_str()];
        let mut inner = self.innererror.as_ref();
        while let Some(i) = inner {
            codes.extend(i.code.as_deref());
            inner = i.innererror.as_deref();
        }
        for detail in &self.details {
            codes.extend(detail.codes());
        }
        codes
    }
}

/// Parses a JSON body; the error names the JSON path that did not fit.
pub(super) fn parse<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    let mut json = serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        format!("at {path}: {}", e.into_inner())
    })
}

/// The service's error of a non-2xx answer, described; the start of the body when it is not
/// the documented error JSON.
pub(super) fn error_of(body: &str) -> (Option<ServiceError>, String) {
    match parse::<ErrorResponse>(body) {
        Ok(response) => {
            let text = response.error.describe();
            (Some(response.error), text)
        }
        Err(_) if body.trim().is_empty() => (None, "no error body".into()),
        Err(_) => (None, body.chars().take(300).collect()),
    }
}

/// How span offsets are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexUnit {
    /// `utf16CodeUnit`.
    Utf16,
    /// `unicodeCodePoint` (and, approximately, `textElements`).
    CodePoint,
}

/// The extraction of a successful analysis: `content` as the text, one [`PageSpan`] per page
/// (byte offsets into the text, converted from the service's units) and a `PageWithoutText`
/// warning for each page where nothing was read.
pub(super) fn extraction(result: AnalyzeResult) -> Extraction {
    let unit = match result.string_index_type.as_deref() {
        None | Some("utf16CodeUnit") => IndexUnit::Utf16,
        Some(other) => {
            if other != "unicodeCodePoint" {
                tracing::warn!(
                    string_index_type = other,
                    "Document Intelligence counted offsets in an unexpected unit; page offsets are approximate"
                );
            }
            IndexUnit::CodePoint
        }
    };
    let mut pages = result.pages;
    pages.sort_by_key(|p| p.page_number);
    // Each page's stretch of content in the service's units: from its first span to the end
    // of its last one.
    let ranges: Vec<Option<(usize, usize)>> = pages
        .iter()
        .map(|page| {
            let spans = page.spans.iter().filter(|s| s.length > 0);
            let start = spans.clone().map(|s| s.offset).min()?;
            let end = spans.map(|s| s.offset.saturating_add(s.length)).max()?;
            Some((start, end))
        })
        .collect();
    let wanted = ranges.iter().flatten().flat_map(|&(s, e)| [s, e]).collect();
    let bytes = byte_offsets(&result.content, unit, wanted);
    let mut spans = Vec::with_capacity(pages.len());
    let mut warnings = Vec::new();
    let mut cursor = 0;
    for (page, range) in pages.iter().zip(&ranges) {
        let read = range.map(|(s, e)| (bytes[&s], bytes[&e]));
        match read {
            Some((start, end)) if !result.content[start..end].trim().is_empty() => {
                spans.push(PageSpan {
                    page: page.page_number,
                    offset: start,
                    length: end - start,
                });
                cursor = end;
            }
            _ => {
                let offset = read.map_or(cursor, |(start, _)| start);
                spans.push(PageSpan {
                    page: page.page_number,
                    offset,
                    length: 0,
                });
                warnings.push(ExtractionWarning::page(
                    "PageWithoutText",
                    page.page_number,
                    format!(
                        "Document Intelligence recognised no text on page {} (a blank page, or a picture without writing)",
                        page.page_number
                    ),
                ));
            }
        }
    }
    for warning in result.warnings {
        warnings.push(ExtractionWarning::new(
            "OcrWarning",
            format!(
                "Document Intelligence: {}: {}",
                warning.code, warning.message
            ),
        ));
    }
    Extraction {
        text: result.content,
        method: ExtractionMethod::Ocr,
        pages: spans,
        warnings,
    }
}

/// The byte offset in `text` of each offset in `wanted` (counted in `unit`), in one pass.
/// An offset inside a character (half of a surrogate pair) moves to the next character;
/// one past the end becomes the end.
fn byte_offsets(text: &str, unit: IndexUnit, mut wanted: Vec<usize>) -> BTreeMap<usize, usize> {
    wanted.sort_unstable();
    wanted.dedup();
    let mut map = BTreeMap::new();
    let mut wanted = wanted.into_iter().peekable();
    let mut units = 0usize;
    for (byte, ch) in text.char_indices() {
        while let Some(&w) = wanted.peek() {
            if w > units {
                break;
            }
            map.insert(w, byte);
            wanted.next();
        }
        if wanted.peek().is_none() {
            return map;
        }
        units += match unit {
            IndexUnit::Utf16 => ch.len_utf16(),
            IndexUnit::CodePoint => 1,
        };
    }
    map.extend(wanted.map(|w| (w, text.len())));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(content: &str, pages: Vec<(u32, Vec<(usize, usize)>)>) -> AnalyzeResult {
        AnalyzeResult {
            string_index_type: Some("utf16CodeUnit".into()),
            content: content.into(),
            pages: pages
                .into_iter()
                .map(|(page_number, spans)| DocumentPage {
                    page_number,
                    spans: spans
                        .into_iter()
                        .map(|(offset, length)| DocumentSpan { offset, length })
                        .collect(),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn page_text(e: &Extraction, page: u32) -> &str {
        let span = e.pages.iter().find(|p| p.page == page).unwrap();
        &e.text[span.offset..span.offset + span.length]
    }

    #[test]
    fn utf16_offsets_become_byte_offsets() {
        // "€" is 1 UTF-16 unit and 3 bytes; "🚚" is 2 units (a surrogate pair) and 4 bytes.
        let content = "Preis 5 €\n🚚 Lieferung\nEnde";
        let p2_start = "Preis 5 €\n".encode_utf16().count();
        let p2_len = "🚚 Lieferung".encode_utf16().count();
        let p3_start = "Preis 5 €\n🚚 Lieferung\n".encode_utf16().count();
        let e = extraction(result(
            content,
            vec![
                (2, vec![(p2_start, p2_len)]),
                (1, vec![(0, 9)]),
                (3, vec![(p3_start, 4)]),
            ],
        ));
        assert_eq!(e.method, ExtractionMethod::Ocr);
        assert_eq!(e.text, content);
        assert_eq!(
            e.pages.iter().map(|p| p.page).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(page_text(&e, 1), "Preis 5 €");
        assert_eq!(page_text(&e, 2), "🚚 Lieferung");
        assert_eq!(page_text(&e, 3), "Ende");
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn code_point_offsets_are_honoured_when_the_service_says_so() {
        let mut r = result("ä🚚\nb", vec![(1, vec![(0, 2)]), (2, vec![(3, 1)])]);
        r.string_index_type = Some("unicodeCodePoint".into());
        let e = extraction(r);
        assert_eq!(page_text(&e, 1), "ä🚚");
        assert_eq!(page_text(&e, 2), "b");
    }

    #[test]
    fn a_page_with_several_spans_covers_them_all_and_a_blank_page_is_flagged() {
        let content = "one\ntwo\nthree";
        let e = extraction(result(
            content,
            vec![
                (1, vec![(0, 3), (4, 3)]),
                (2, vec![]),
                (3, vec![(8, 0)]),
                (4, vec![(8, 5)]),
            ],
        ));
        assert_eq!(page_text(&e, 1), "one\ntwo");
        assert_eq!(
            e.pages[1],
            PageSpan {
                page: 2,
                offset: 7,
                length: 0
            }
        );
        assert_eq!(e.pages[2].length, 0);
        assert_eq!(page_text(&e, 4), "three");
        let flagged: Vec<_> = e
            .warnings
            .iter()
            .map(|w| (w.code.as_str(), w.page))
            .collect();
        assert_eq!(
            flagged,
            [("PageWithoutText", Some(2)), ("PageWithoutText", Some(3))]
        );
    }

    #[test]
    fn spans_past_the_end_stop_at_the_end() {
        let e = extraction(result("abc", vec![(1, vec![(1, 50)])]));
        assert_eq!(page_text(&e, 1), "bc");
    }

    #[test]
    fn parse_errors_name_the_json_path() {
        let body = r#"{"status": "succeeded", "analyzeResult": {"content": "x",
                       "pages": [{"pageNumber": "one", "spans": []}]}}"#;
        let err = parse::<AnalyzeOperation>(body).unwrap_err();
        assert!(err.contains("analyzeResult.pages[0].pageNumber"), "{err}");
    }

    #[test]
    fn unknown_statuses_are_kept_apart() {
        let op: AnalyzeOperation = parse(r#"{"status": "paused"}"#).unwrap();
        assert_eq!(op.status, OperationStatus::Unknown);
        let op: AnalyzeOperation = parse(r#"{"status": "notStarted"}"#).unwrap();
        assert_eq!(op.status, OperationStatus::NotStarted);
    }

    #[test]
    fn errors_are_described_with_inner_errors_and_details() {
        let body = r#"{"error": {"code": "InternalServerError", "message": "An unexpected error occurred.",
            "details": [{"code": "InvalidContentDimensions", "message": "The input image dimensions are out of range.", "target": "2"}]}}"#;
        let (error, text) = error_of(body);
        let error = error.unwrap();
        assert_eq!(
            text,
            "InternalServerError: An unexpected error occurred.; [2] InvalidContentDimensions: The input image dimensions are out of range."
        );
        assert_eq!(
            error.codes(),
            ["InternalServerError", "InvalidContentDimensions"]
        );
        let (error, text) = error_of(
            r#"{"error": {"code": "InvalidRequest", "message": "Invalid request.",
                "innererror": {"code": "InvalidContent", "message": "The file is corrupted."}}}"#,
        );
        assert_eq!(error.unwrap().specific_code(), "InvalidContent");
        assert_eq!(
            text,
            "InvalidRequest: Invalid request. (InvalidContent: The file is corrupted.)"
        );
        assert_eq!(
            error_of("<html>bad gateway</html>").1,
            "<html>bad gateway</html>"
        );
    }
}
