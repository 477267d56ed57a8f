//! Decoding a page's bytes: the transport charset, a byte order mark, a `<meta>` declaration,
//! else UTF-8 with a Windows-1252 fallback.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

use super::unreadable;
use crate::extract::ExtractError;

/// How far `<meta charset>` is looked for (the standard asks for at least 1024 bytes; pages
/// with long comments or scripts before their `<meta>` are common, so a little more).
const PRESCAN_BYTES: usize = 4096;

/// The page's text. A byte order mark wins, as in browsers; then the `charset` given with the
/// page (an unknown one is an error); then a `<meta>` declaration (an unknown one is ignored);
/// then UTF-8 when the bytes are valid UTF-8, Windows-1252 otherwise.
pub(super) fn decode<'a>(
    bytes: &'a [u8],
    charset: Option<&str>,
) -> Result<Cow<'a, str>, ExtractError> {
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        let rest = bytes.get(bom_length..).unwrap_or_default();
        return Ok(encoding.decode_without_bom_handling(rest).0);
    }
    if let Some(label) = charset.map(str::trim).filter(|label| !label.is_empty()) {
        let label = label.trim_matches(|c| c == '"' || c == '\'');
        let encoding = Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            unreadable(format!(
                "decoding the page failed: its charset \"{label}\" is not one docflow knows"
            ))
        })?;
        return Ok(encoding.decode_without_bom_handling(bytes).0);
    }
    if let Some(encoding) = prescan(bytes) {
        return Ok(encoding.decode_without_bom_handling(bytes).0);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => Ok(WINDOWS_1252.decode_without_bom_handling(bytes).0),
    }
}

/// The encoding a `<meta>` near the start declares, as the standard's prescan finds it.
fn prescan(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(PRESCAN_BYTES)];
    let mut position = 0;
    while position < head.len() {
        let rest = &head[position..];
        if rest.starts_with(b"<!--") {
            position += 4 + find(&rest[4..], b"-->").map_or(rest.len(), |end| end + 3);
        } else if starts_with_ignore_case(rest, b"<meta")
            && rest
                .get(5)
                .is_some_and(|&byte| is_space(byte) || byte == b'/')
        {
            position += 5;
            let mut charset = None;
            let mut http_equiv_content_type = false;
            let mut content_charset = None;
            while let Some((name, value, next)) = attribute(head, position) {
                position = next;
                match name.as_slice() {
                    b"charset" if charset.is_none() => charset = Some(value),
                    b"http-equiv" => {
                        http_equiv_content_type = value.eq_ignore_ascii_case(b"content-type");
                    }
                    b"content" if content_charset.is_none() => {
                        content_charset = charset_from_content(&value);
                    }
                    _ => {}
                }
            }
            let label = charset.or(if http_equiv_content_type {
                content_charset
            } else {
                None
            });
            if let Some(encoding) = label.and_then(|label| Encoding::for_label(&label)) {
                // A page cannot really declare UTF-16 in ASCII-compatible bytes.
                return Some(if encoding.name().starts_with("UTF-16") {
                    UTF_8
                } else if encoding.name() == "x-user-defined" {
                    WINDOWS_1252
                } else {
                    encoding
                });
            }
        } else if rest.first() == Some(&b'<')
            && rest
                .get(1)
                .is_some_and(|&byte| byte.is_ascii_alphabetic() || byte == b'/')
        {
            // Another tag: skip its attributes (a value may hold a `>`).
            position += 1;
            while position < head.len() && !is_space(head[position]) && head[position] != b'>' {
                position += 1;
            }
            while let Some((_, _, next)) = attribute(head, position) {
                position = next;
            }
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            position += find(rest, b">").map_or(rest.len(), |end| end + 1);
        } else {
            position += 1;
        }
    }
    None
}

/// The attribute at `position` inside a tag: its lowercase name, its value and where the
/// next one starts; `None` at the tag's end.
fn attribute(bytes: &[u8], mut position: usize) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    while position < bytes.len() && (is_space(bytes[position]) || bytes[position] == b'/') {
        position += 1;
    }
    if position >= bytes.len() || bytes[position] == b'>' {
        return None;
    }
    let mut name = Vec::new();
    while position < bytes.len() {
        let byte = bytes[position];
        if (byte == b'=' && !name.is_empty()) || is_space(byte) || byte == b'/' || byte == b'>' {
            break;
        }
        name.push(byte.to_ascii_lowercase());
        position += 1;
    }
    while position < bytes.len() && is_space(bytes[position]) {
        position += 1;
    }
    if bytes.get(position) != Some(&b'=') {
        return Some((name, Vec::new(), position));
    }
    position += 1;
    while position < bytes.len() && is_space(bytes[position]) {
        position += 1;
    }
    let mut value = Vec::new();
    match bytes.get(position) {
        Some(&quote @ (b'"' | b'\'')) => {
            position += 1;
            while position < bytes.len() && bytes[position] != quote {
                value.push(bytes[position]);
                position += 1;
            }
            position += 1;
        }
        _ => {
            while position < bytes.len() && !is_space(bytes[position]) && bytes[position] != b'>' {
                value.push(bytes[position]);
                position += 1;
            }
        }
    }
    Some((name, value, position.min(bytes.len())))
}

/// The `charset=` of a `content="text/html; charset=…"` value.
fn charset_from_content(content: &[u8]) -> Option<Vec<u8>> {
    let lower = content.to_ascii_lowercase();
    let start = find(&lower, b"charset")? + "charset".len();
    let rest = &content[start..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let value: Vec<u8> = match rest.first() {
        Some(&quote @ (b'"' | b'\'')) => rest[1..]
            .iter()
            .take_while(|&&byte| byte != quote)
            .copied()
            .collect(),
        _ => rest
            .iter()
            .take_while(|&&byte| !is_space(byte) && byte != b';')
            .copied()
            .collect(),
    };
    (!value.is_empty()).then_some(value)
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
