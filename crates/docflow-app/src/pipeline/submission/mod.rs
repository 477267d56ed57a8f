//! Reading a document submission (`POST /api/documents`): the body in any accepted form and
//! the options from the query string and the body. Pure: what a file's text is, and whether it
//! needs OCR, is [`super::intake`]'s business.
//!
//! Every refusal names the field at fault and maps to one HTTP status (400, 413, 415, 422).
//! Nothing is written before a submission has been read in full, so a refused one leaves
//! nothing behind.
//!
//! - [`document`]: a body by its content type (text in its charset, a file, an image), and the
//!   content type of a file name.

mod document;

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

pub use self::document::{ACCEPTED_TYPES, IMAGE_TYPES, guess_type};
use self::document::{essence, read_document};
use super::events::AnalysisOptions;
use crate::extract::DocumentKind;
use crate::task::{DEFAULT_MAX_WORDS, MAX_LABELS, MAX_MAX_WORDS};

/// Every analysis docflow runs, in the order they are listed and sent.
pub const ALL_ANALYSES: [&str; 5] = [
    "summarize",
    "classify",
    "extract_entities",
    "sentiment",
    "embed",
];

/// Labels offered to `classify` when the submission names none.
pub const DEFAULT_LABELS: [&str; 5] = [
    "contract",
    "invoice",
    "support request",
    "complaint",
    "thank you note",
];

/// A submission refused, with the status it is answered with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SubmitError {
    /// HTTP status.
    pub status: u16,
    /// Machine-readable code.
    pub code: &'static str,
    /// The field at fault (`body`, `maxWords`, `Content-Type`, …).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl SubmitError {
    /// A refusal with its status, code and field.
    pub fn new(status: u16, code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    fn option(field: &str, message: impl Into<String>) -> Self {
        Self::new(400, "InvalidOption", field, message)
    }
}

/// The parts of an HTTP request a submission is read from.
#[derive(Debug, Clone, Default)]
pub struct HttpInput {
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl HttpInput {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The document as received, before text extraction.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// UTF-8 text (decoded from its declared charset).
    Text(String),
    /// A file whose text is extracted ([`crate::extract`]): PDF, Word, HTML, e-mail.
    File {
        /// Its format.
        kind: DocumentKind,
        /// Its bytes.
        bytes: Bytes,
        /// The charset its Content-Type declared (HTML).
        charset: Option<String>,
    },
    /// An image (`image/png`, `image/jpeg`, `image/tiff`): text only through OCR.
    Image {
        /// Its content type.
        content_type: String,
        /// Its bytes.
        bytes: Bytes,
    },
}

/// A submission read in full.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The document.
    pub payload: Payload,
    /// Its content type as submitted (`text/plain`, `application/pdf`, …).
    pub content_type: String,
    /// Its file name, from a multipart part or the JSON body.
    pub filename: Option<String>,
    /// The analysis options.
    pub options: AnalysisOptions,
    /// Where to POST the result.
    pub callback_url: Option<String>,
}

/// Options as given, before defaults.
#[derive(Debug, Default)]
struct RawOptions {
    analyses: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    max_words: Option<String>,
    callback_url: Option<String>,
}

impl RawOptions {
    /// Sets an option from a text field (query string or multipart); unknown names are refused.
    fn set_text(&mut self, name: &str, value: &str) -> Result<(), SubmitError> {
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match name {
            "analyses" => self.analyses.get_or_insert_default().extend(list(value)),
            "labels" => self.labels.get_or_insert_default().extend(list(value)),
            "maxWords" => self.max_words = Some(value.trim().to_string()),
            "callbackUrl" => self.callback_url = Some(value.trim().to_string()),
            other => {
                return Err(SubmitError::option(
                    other,
                    format!(
                        "unknown option {other:?}; options are analyses, labels, maxWords and callbackUrl"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn resolve(self) -> Result<(AnalysisOptions, Option<String>), SubmitError> {
        let analyses = match self.analyses {
            None => ALL_ANALYSES.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                if list.is_empty() {
                    return Err(SubmitError::option(
                        "analyses",
                        "must name at least one analysis",
                    ));
                }
                let mut wanted = BTreeSet::new();
                for kind in &list {
                    if !ALL_ANALYSES.contains(&kind.as_str()) {
                        return Err(SubmitError::option(
                            "analyses",
                            format!(
                                "unknown analysis {kind:?}; choose from {}",
                                ALL_ANALYSES.join(", ")
                            ),
                        ));
                    }
                    wanted.insert(kind.as_str());
                }
                ALL_ANALYSES
                    .iter()
                    .filter(|k| wanted.contains(**k))
                    .map(|s| s.to_string())
                    .collect()
            }
        };
        let labels = match self.labels {
            None => DEFAULT_LABELS.iter().map(|s| s.to_string()).collect(),
            Some(labels) => {
                if labels.is_empty() || labels.len() > MAX_LABELS {
                    return Err(SubmitError::option(
                        "labels",
                        format!("must hold 1 to {MAX_LABELS} labels"),
                    ));
                }
                let mut seen = BTreeSet::new();
                for label in &labels {
                    if label.chars().count() > 100 || label.chars().any(char::is_control) {
                        return Err(SubmitError::option(
                            "labels",
                            format!("label {label:?} must be at most 100 printable characters"),
                        ));
                    }
                    if !seen.insert(label.to_lowercase()) {
                        return Err(SubmitError::option(
                            "labels",
                            format!("label {label:?} is repeated"),
                        ));
                    }
                }
                labels
            }
        };
        let max_words = match self.max_words {
            None => DEFAULT_MAX_WORDS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_MAX_WORDS).contains(n))
                .ok_or_else(|| {
                    SubmitError::option(
                        "maxWords",
                        format!("must be a whole number from 1 to {MAX_MAX_WORDS}, not {v:?}"),
                    )
                })?,
        };
        let callback_url = match self.callback_url {
            None => None,
            Some(url) if url.is_empty() => None,
            Some(url) => Some(check_callback_url(&url)?),
        };
        Ok((
            AnalysisOptions {
                analyses,
                labels,
                max_words,
            },
            callback_url,
        ))
    }
}

fn check_callback_url(url: &str) -> Result<String, SubmitError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SubmitError::option("callbackUrl", format!("is not an absolute URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(SubmitError::option(
            "callbackUrl",
            "must be an http or https URL with a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SubmitError::option(
            "callbackUrl",
            "must not carry credentials; the callback is signed instead",
        ));
    }
    Ok(parsed.to_string())
}

/// The submission's JSON body form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonSubmission {
    text: Option<Value>,
    filename: Option<String>,
    analyses: Option<Value>,
    labels: Option<Value>,
    max_words: Option<Value>,
    callback_url: Option<Value>,
}

/// Reads a submission. `max_bytes` bounds the body (413 beyond it).
pub async fn read_submission(
    input: &HttpInput,
    max_bytes: usize,
) -> Result<Submission, SubmitError> {
    if input.body.len() > max_bytes {
        return Err(too_large(input.body.len(), max_bytes));
    }
    let mut options = RawOptions::default();
    for (name, value) in &input.query {
        if name.eq_ignore_ascii_case("code") {
            continue; // a function key, when the app uses them
        }
        options.set_text(name, value)?;
    }
    let content_type = input.header("content-type").unwrap_or("").to_string();
    let essence = essence(&content_type);
    let (payload, content_type, filename) = match essence.as_str() {
        "multipart/form-data" => read_multipart(input, &content_type, &mut options).await?,
        "application/json" => read_json(&input.body, &mut options)?,
        _ => {
            let payload = read_document(&content_type, &input.body, "body")?;
            (payload, essence, None)
        }
    };
    let (options, callback_url) = options.resolve()?;
    Ok(Submission {
        payload,
        content_type,
        filename,
        options,
        callback_url,
    })
}

fn too_large(size: usize, max: usize) -> SubmitError {
    SubmitError::new(
        413,
        "PayloadTooLarge",
        "body",
        format!(
            "the document is {size} bytes; the limit is {max} bytes (DOCFLOW_MAX_SUBMISSION_BYTES)"
        ),
    )
}

fn read_json(
    body: &Bytes,
    options: &mut RawOptions,
) -> Result<(Payload, String, Option<String>), SubmitError> {
    let json: JsonSubmission = serde_json::from_slice(body).map_err(|e| {
        SubmitError::new(
            400,
            "InvalidJson",
            "body",
            format!("invalid JSON body: {e}"),
        )
    })?;
    let text = match json.text {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | None => {
            return Err(SubmitError::new(
                400,
                "EmptyDocument",
                "text",
                "text is required and must not be empty",
            ));
        }
        Some(_) => {
            return Err(SubmitError::option("text", "must be a string"));
        }
    };
    let list = |v: Value, field: &str| -> Result<Vec<String>, SubmitError> {
        match v {
            Value::String(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    _ => Err(SubmitError::option(field, "must hold non-empty strings")),
                })
                .collect(),
            _ => Err(SubmitError::option(
                field,
                "must be an array of strings or a comma-separated string",
            )),
        }
    };
    if let Some(v) = json.analyses {
        options.analyses = Some(list(v, "analyses")?);
    }
    if let Some(v) = json.labels {
        options.labels = Some(list(v, "labels")?);
    }
    match json.max_words {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => options.max_words = Some(n.to_string()),
        Some(Value::String(s)) => options.max_words = Some(s),
        Some(_) => return Err(SubmitError::option("maxWords", "must be a number")),
    }
    match json.callback_url {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => options.callback_url = Some(s),
        Some(_) => return Err(SubmitError::option("callbackUrl", "must be a string")),
    }
    Ok((
        Payload::Text(text),
        "application/json".into(),
        json.filename,
    ))
}

async fn read_multipart(
    input: &HttpInput,
    content_type: &str,
    options: &mut RawOptions,
) -> Result<(Payload, String, Option<String>), SubmitError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        SubmitError::new(
            400,
            "InvalidMultipart",
            "Content-Type",
            format!("multipart/form-data needs a boundary: {e}"),
        )
    })?;
    let body = input.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let bad = |e: multer::Error| {
        SubmitError::new(
            400,
            "InvalidMultipart",
            "body",
            format!("the multipart body cannot be read: {e}"),
        )
    };
    let mut document = None;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_owned);
        let part_type = field
            .content_type()
            .map(|m| m.to_string())
            .unwrap_or_default();
        let data = field.bytes().await.map_err(bad)?;
        if name == "file" || filename.is_some() {
            if document.is_some() {
                return Err(SubmitError::new(
                    400,
                    "InvalidMultipart",
                    "file",
                    "send one document per submission",
                ));
            }
            let part_type = if part_type.is_empty() || part_type == "application/octet-stream" {
                guess_type(filename.as_deref()).unwrap_or(part_type)
            } else {
                part_type
            };
            let payload = read_document(&part_type, &data, "file")?;
            document = Some((payload, essence(&part_type), filename));
        } else {
            let text = std::str::from_utf8(&data)
                .map_err(|_| SubmitError::option(&name, "must be UTF-8 text"))?;
            options.set_text(&name, text)?;
        }
    }
    document.ok_or_else(|| {
        SubmitError::new(
            400,
            "EmptyDocument",
            "file",
            "the multipart body has no file part (name it \"file\")",
        )
    })
}

#[cfg(test)]
mod tests;
