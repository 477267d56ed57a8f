//! E-mails (`message/rfc822`): the headers, the body and the text of the attachments.
//!
//! The MIME structure, the transfer encodings (base64, quoted-printable), RFC 2047 encoded
//! words, RFC 2231 file names and the charsets are decoded by `mail-parser`. The text is:
//!
//! ```text
//! Subject: …
//! From: …
//! To: …
//! Cc: …            (when there is one)
//! Date: …          (RFC 3339)
//!
//! the text/plain body (or the text of the text/html one when there is no plain text)
//!
//! Attachments:
//! - contract.docx (application/vnd.openxmlformats-officedocument.wordprocessingml.document, 18311 bytes)
//!
//! --- Attachment: contract.docx ---
//! the attachment's text
//! ```
//!
//! Every attachment of a format docflow reads (by its content type, or by its file name's
//! extension when it is sent as `application/octet-stream`) is extracted, and so are plain
//! text attachments and attached e-mails (recursively, [`MAX_NESTING`] levels at most). An
//! attachment that cannot be read adds an `AttachmentNotRead` warning; only running out of time
//! fails the whole e-mail.

#[cfg(test)]
mod tests;

use std::time::Instant;

use mail_parser::{
    Addr, Address, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
};

use super::{
    DocumentKind, ExtractError, Extraction, ExtractionMethod, ExtractionWarning, MAX_NESTING,
    check_deadline, extract_nested,
};

/// The text of an e-mail and its attachments, `depth` levels inside other files.
pub fn extract(bytes: &[u8], deadline: Instant, depth: u8) -> Result<Extraction, ExtractError> {
    check_deadline(deadline)?;
    let bytes = bytes.trim_ascii_start();
    check_shape(bytes)?;
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| unreadable("reading the e-mail failed: no header fields were found"))?;
    let headers = root_headers(&message);
    if !headers.iter().any(|header| !header.name.is_other()) {
        return Err(unreadable(
            "reading the e-mail failed: none of its header fields is an e-mail header \
             (Subject, From, To, Date, Content-Type, …)",
        ));
    }
    let mut rendered = Rendered::default();
    render(&message, deadline, depth, &mut rendered)?;
    Ok(Extraction {
        text: rendered.text.trim_end().to_owned(),
        method: ExtractionMethod::Email,
        pages: Vec::new(),
        warnings: rendered.warnings,
    })
}

fn unreadable(message: impl Into<String>) -> ExtractError {
    ExtractError::new("UnreadableEmail", message)
}

/// A MIME message starts with a header field and has a blank line before its body.
fn check_shape(bytes: &[u8]) -> Result<(), ExtractError> {
    let mut rest = bytes;
    if rest.starts_with(b"From ") {
        // The separator line of an mbox file.
        let line_end = rest.iter().position(|&byte| byte == b'\n');
        rest = line_end.map_or(&[][..], |end| &rest[end + 1..]);
    }
    let first_line = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let is_field = first_line
        .iter()
        .position(|&byte| byte == b':')
        .map(|colon| first_line[..colon].trim_ascii_end())
        .is_some_and(|name| !name.is_empty() && name.iter().all(|byte| (33..=126).contains(byte)));
    if !is_field {
        return Err(unreadable(
            "reading the e-mail failed: it does not start with a header field (Name: value)",
        ));
    }
    let has_body = rest.windows(2).enumerate().any(|(index, pair)| {
        pair == b"\n\n" || (pair == b"\n\r" && rest.get(index + 2) == Some(&b'\n'))
    });
    if !has_body {
        return Err(unreadable(
            "reading the e-mail failed: it has no body (no blank line after its header fields)",
        ));
    }
    Ok(())
}

fn root_headers<'a, 'x>(message: &'a Message<'x>) -> &'a [Header<'x>] {
    message.parts.first().map_or(&[], |part| part.headers())
}

/// The text and warnings gathered so far.
#[derive(Default)]
struct Rendered {
    text: String,
    warnings: Vec<ExtractionWarning>,
}

impl Rendered {
    /// Ends the text with a blank line, unless it is empty.
    fn blank_line(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let kept = self.text.trim_end_matches('\n').len();
        self.text.truncate(kept);
        self.text.push_str("\n\n");
    }
}

fn render(
    message: &Message<'_>,
    deadline: Instant,
    depth: u8,
    out: &mut Rendered,
) -> Result<(), ExtractError> {
    check_deadline(deadline)?;
    let headers = root_headers(message);
    for (label, name) in [
        ("Subject", HeaderName::Subject),
        ("From", HeaderName::From),
        ("To", HeaderName::To),
        ("Cc", HeaderName::Cc),
        ("Date", HeaderName::Date),
    ] {
        let values: Vec<String> = headers
            .iter()
            .filter(|header| header.name == name)
            .filter_map(|header| header_text(&header.value))
            .filter(|value| !value.is_empty())
            .collect();
        let value = if matches!(name, HeaderName::Subject | HeaderName::Date) {
            values.into_iter().next()
        } else {
            Some(values.join(", ")).filter(|value| !value.is_empty())
        };
        if let Some(value) = value {
            out.text.push_str(&format!("{label}: {value}\n"));
        }
    }

    let body = body_text(message, out);
    if !body.is_empty() {
        out.blank_line();
        out.text.push_str(&body);
        out.text.push('\n');
    }

    let attachments: Vec<Attachment<'_, '_>> = message
        .attachments
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
        .enumerate()
        .map(|(index, part)| Attachment::new(part, index + 1))
        .collect();
    if attachments.is_empty() {
        return Ok(());
    }
    out.blank_line();
    out.text.push_str("Attachments:\n");
    for attachment in &attachments {
        out.text.push_str(&format!(
            "- {} ({}, {} bytes)\n",
            attachment.name, attachment.content_type, attachment.size
        ));
    }
    for attachment in &attachments {
        check_deadline(deadline)?;
        match attachment.read(deadline, depth) {
            Ok(None) => {}
            Ok(Some(read)) => {
                let text = read.text.trim();
                if !text.is_empty() {
                    out.blank_line();
                    out.text.push_str(&format!(
                        "--- Attachment: {} ---\n{text}\n",
                        attachment.name
                    ));
                }
                for warning in read.warnings {
                    let place = match warning.page {
                        Some(page) => format!("{}, page {page}", attachment.name),
                        None => attachment.name.clone(),
                    };
                    out.warnings.push(ExtractionWarning::new(
                        &warning.code,
                        format!("{place}: {}", warning.message),
                    ));
                }
            }
            Err(error) if error.code == "ExtractionTimedOut" => return Err(error),
            Err(error) => out.warnings.push(ExtractionWarning::new(
                "AttachmentNotRead",
                format!("{}: {}", attachment.name, error.message),
            )),
        }
    }
    Ok(())
}

/// The plain text body; the HTML one's text when there is no plain text.
fn body_text(message: &Message<'_>, out: &mut Rendered) -> String {
    let mut texts = Vec::new();
    for ids in [&message.text_body, &message.html_body] {
        for part in ids.iter().filter_map(|&id| message.parts.get(id as usize)) {
            match &part.body {
                PartType::Text(text) => texts.push(text.replace("\r\n", "\n").trim().to_owned()),
                PartType::Html(html) => {
                    match super::html::extract(html.as_bytes(), Some("utf-8")) {
                        Ok(extraction) => texts.push(extraction.text),
                        Err(error) => out.warnings.push(ExtractionWarning::new(
                            "BodyNotRead",
                            format!("the HTML body: {}", error.message),
                        )),
                    }
                }
                _ => {}
            }
        }
        texts.retain(|text| !text.is_empty());
        if !texts.is_empty() {
            break;
        }
    }
    texts.join("\n\n")
}

/// A header's value as one line of text.
fn header_text(value: &HeaderValue<'_>) -> Option<String> {
    let text = match value {
        HeaderValue::Text(text) => text.to_string(),
        HeaderValue::TextList(texts) => texts.join(", "),
        HeaderValue::Address(address) => format_address(address),
        HeaderValue::DateTime(date) if date.is_valid() => date.to_rfc3339(),
        _ => return None,
    };
    Some(one_line(&text))
}

fn format_address(address: &Address<'_>) -> String {
    match address {
        Address::List(list) => list
            .iter()
            .filter_map(format_addr)
            .collect::<Vec<_>>()
            .join(", "),
        Address::Group(groups) => groups
            .iter()
            .map(|group| {
                let members = group
                    .addresses
                    .iter()
                    .filter_map(format_addr)
                    .collect::<Vec<_>>()
                    .join(", ");
                match group.name.as_deref().map(str::trim) {
                    Some(name) if !name.is_empty() => format!("{name}: {members}"),
                    _ => members,
                }
            })
            .filter(|group| !group.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn format_addr(addr: &Addr<'_>) -> Option<String> {
    let name = addr
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let address = addr
        .address
        .as_deref()
        .map(str::trim)
        .filter(|address| !address.is_empty());
    match (name, address) {
        (Some(name), Some(address)) if name != address => Some(format!("{name} <{address}>")),
        (_, Some(address)) => Some(address.to_owned()),
        (Some(name), None) => Some(name.to_owned()),
        (None, None) => None,
    }
}

/// Whitespace (folded lines included) collapsed, control characters dropped.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One attachment: how it is listed, and its part.
struct Attachment<'m, 'x> {
    name: String,
    content_type: String,
    size: usize,
    part: &'m MessagePart<'x>,
}

/// What was read from an attachment.
struct Read {
    text: String,
    warnings: Vec<ExtractionWarning>,
}

impl<'m, 'x> Attachment<'m, 'x> {
    fn new(part: &'m MessagePart<'x>, number: usize) -> Self {
        let content_type = part
            .content_type()
            .map(|content_type| match content_type.subtype() {
                Some(subtype) => format!("{}/{subtype}", content_type.ctype()),
                None => content_type.ctype().to_owned(),
            })
            .map(|essence| one_line(&essence).to_ascii_lowercase())
            .filter(|essence| !essence.is_empty())
            .unwrap_or_else(|| {
                match part.body {
                    PartType::Message(_) => "message/rfc822",
                    PartType::Text(_) => "text/plain",
                    PartType::Html(_) => "text/html",
                    _ => "application/octet-stream",
                }
                .to_owned()
            });
        let nested_subject = match &part.body {
            PartType::Message(message) => root_headers(message)
                .iter()
                .find(|header| header.name == HeaderName::Subject)
                .and_then(|header| header_text(&header.value))
                .filter(|subject| !subject.is_empty())
                .map(|subject| format!("{subject}.eml")),
            _ => None,
        };
        let name = part
            .attachment_name()
            .map(one_line)
            .filter(|name| !name.is_empty())
            .or(nested_subject)
            .unwrap_or_else(|| format!("attachment {number}"));
        let size = match &part.body {
            // A nested message's part holds the parsed message: its size is that of its
            // bytes in the e-mail.
            PartType::Message(_) => {
                (part.raw_end_offset().saturating_sub(part.raw_body_offset())) as usize
            }
            _ => part.contents().len(),
        };
        Self {
            name,
            content_type,
            size,
            part,
        }
    }

    /// The attachment's text, `None` for a format docflow does not read.
    fn read(&self, deadline: Instant, depth: u8) -> Result<Option<Read>, ExtractError> {
        let extraction = match &self.part.body {
            PartType::Message(message) => {
                if depth >= MAX_NESTING {
                    return Err(ExtractError::new(
                        "NestedTooDeep",
                        format!("attachments are followed {MAX_NESTING} levels deep, no further"),
                    ));
                }
                let mut nested = Rendered::default();
                render(message, deadline, depth + 1, &mut nested)?;
                return Ok(Some(Read {
                    text: nested.text,
                    warnings: nested.warnings,
                }));
            }
            PartType::Html(html) => super::html::extract(html.as_bytes(), Some("utf-8"))?,
            PartType::Text(text) => {
                return Ok(is_readable_text(&self.content_type).then(|| Read {
                    text: text.replace("\r\n", "\n"),
                    warnings: Vec::new(),
                }));
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => match self.kind() {
                None => return Ok(None),
                Some(DocumentKind::Html) => {
                    let charset = self
                        .part
                        .content_type()
                        .and_then(|content_type| content_type.attribute("charset"));
                    super::html::extract(bytes, charset)?
                }
                Some(kind) => extract_nested(kind, bytes, deadline, depth + 1)?,
            },
            PartType::Multipart(_) => return Ok(None),
        };
        Ok(Some(Read {
            text: extraction.text,
            warnings: extraction.warnings,
        }))
    }

    /// The format of a binary attachment: by content type, or by extension for
    /// `application/octet-stream`.
    fn kind(&self) -> Option<DocumentKind> {
        DocumentKind::from_content_type(&self.content_type).or_else(|| {
            if self.content_type != "application/octet-stream" {
                return None;
            }
            let (_, extension) = self.name.rsplit_once('.')?;
            DocumentKind::from_extension(extension)
        })
    }
}

/// Text attachments whose text is worth reading as it is.
fn is_readable_text(content_type: &str) -> bool {
    matches!(
        content_type,
        "text/plain" | "text/markdown" | "text/x-markdown" | "text/csv"
    )
}
