//! A submitted document's body as its content type says: text decoded from its charset, a
//! file to extract (PDF, Word, HTML, e-mail) or an image for OCR; and the content type of a file
//! name, for parts sent without one.

use bytes::Bytes;

use super::{Payload, SubmitError};
use crate::extract::DocumentKind;

/// The content types a submission may have, for the `415` that lists them.
pub const ACCEPTED_TYPES: &str = "text/plain, text/markdown, text/html, application/pdf, \
application/vnd.openxmlformats-officedocument.wordprocessingml.document (.docx), \
message/rfc822 (.eml), image/png, image/jpeg, image/tiff (scans, with OCR), application/json \
or multipart/form-data";

/// Image types read through OCR.
pub const IMAGE_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/tiff"];

pub(super) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(super) fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// A document body of a plain content type: text in a known charset, or a file to extract.
pub(super) fn read_document(
    content_type: &str,
    body: &Bytes,
    field: &str,
) -> Result<Payload, SubmitError> {
    let kind = essence(content_type);
    let payload = match kind.as_str() {
        "text/plain" | "text/markdown" | "text/x-markdown" => {
            Payload::Text(decode_text(body, charset(content_type).as_deref(), field)?)
        }
        "" => {
            return Err(SubmitError::new(
                415,
                "UnsupportedMediaType",
                "Content-Type",
                format!("a Content-Type is required: {ACCEPTED_TYPES}"),
            ));
        }
        "image/jpg" | "image/tif" => Payload::Image {
            content_type: kind.replace("jpg", "jpeg").replace("tif", "tiff"),
            bytes: body.clone(),
        },
        other if IMAGE_TYPES.contains(&other) => Payload::Image {
            content_type: other.to_string(),
            bytes: body.clone(),
        },
        other => match DocumentKind::from_content_type(other) {
            Some(kind) => Payload::File {
                kind,
                bytes: body.clone(),
                charset: charset(content_type),
            },
            None => {
                return Err(SubmitError::new(
                    415,
                    "UnsupportedMediaType",
                    "Content-Type",
                    format!("{other} is not accepted; send {ACCEPTED_TYPES}"),
                ));
            }
        },
    };
    match &payload {
        Payload::Text(text) if text.trim().is_empty() => Err(SubmitError::new(
            400,
            "EmptyDocument",
            field,
            "the document is empty",
        )),
        Payload::File { bytes, .. } | Payload::Image { bytes, .. } if bytes.is_empty() => Err(
            SubmitError::new(400, "EmptyDocument", field, "the document is empty"),
        ),
        _ => Ok(payload),
    }
}

/// Decodes text: UTF-8 (the default; a BOM is dropped), or ISO-8859-1 / Windows-1252 when the
/// charset says so. Invalid UTF-8 is refused rather than guessed at.
fn decode_text(body: &[u8], charset: Option<&str>, field: &str) -> Result<String, SubmitError> {
    match charset {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
            let text = std::str::from_utf8(body).map_err(|e| {
                SubmitError::new(
                    400,
                    "InvalidEncoding",
                    field,
                    format!(
                        "the document is not valid UTF-8 (byte {}); send UTF-8, or declare Latin-1 text with charset=iso-8859-1 or charset=windows-1252",
                        e.valid_up_to()
                    ),
                )
            })?;
            if text.contains('\0') {
                return Err(SubmitError::new(
                    400,
                    "InvalidEncoding",
                    field,
                    "the document contains NUL characters; it looks binary, not text",
                ));
            }
            Ok(text.to_string())
        }
        Some("iso-8859-1" | "latin1" | "latin-1" | "l1" | "iso8859-1") => {
            Ok(body.iter().map(|&b| char::from(b)).collect())
        }
        Some("windows-1252" | "cp1252") => Ok(body.iter().map(|&b| windows_1252(b)).collect()),
        Some(other) => Err(SubmitError::new(
            415,
            "UnsupportedCharset",
            "Content-Type",
            format!("charset {other} is not supported; use utf-8, iso-8859-1 or windows-1252"),
        )),
    }
}

/// The Windows-1252 character of a byte (0x80–0x9F differ from ISO-8859-1).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    if (0x80..0xA0).contains(&b) {
        HIGH[usize::from(b - 0x80)]
    } else {
        char::from(b)
    }
}

/// A content type from a file name's extension, for parts sent without one.
pub fn guess_type(filename: Option<&str>) -> Option<String> {
    let ext = filename?.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(
        match ext.as_str() {
            "txt" | "text" => "text/plain",
            "md" | "markdown" => "text/markdown",
            "json" => "application/json",
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "tif" | "tiff" => "image/tiff",
            other => return DocumentKind::from_extension(other).map(|k| k.content_type().into()),
        }
        .to_string(),
    )
}
