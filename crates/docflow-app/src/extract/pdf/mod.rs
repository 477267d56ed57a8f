//! PDF text layers, read in pure Rust as well as poppler's `pdftotext` reads them.
//!
//! The file is parsed by `lopdf` (cross-reference tables and streams, object streams,
//! decryption with the empty user password: RC4 40/128, AES-128, AES-256; a damaged
//! cross-reference table is rebuilt by scanning for objects). Everything that makes text is
//! docflow's own: the content-stream reader (`content`), fonts, encodings and CMaps
//! (`font`, `cmap`), the interpreter that places every glyph (`interpret`) and the
//! layout that turns glyphs into lines in reading order (`layout`). Then, over the whole
//! document (`pages`): running headers and footers are kept once, words hyphenated at a line
//! end are joined, and pages are separated by a blank line, each with its `PageSpan`.
//!
//! A hostile file can neither run past the deadline (it is checked per page, per batch of
//! operators and per batch of characters) nor crash the process: a panic inside the parser is
//! caught and reported as `UnreadablePdf`.

mod annotations;
mod cmap;
mod content;
mod font;
mod glyph_names;
mod interpret;
mod layout;
mod objects;
mod pages;
mod standard_fonts;
mod tables;
#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use lopdf::{Dictionary, Document, Object};

use super::{ExtractError, Extraction, ExtractionMethod, ExtractionWarning, check_deadline};
use interpret::FontCache;
use objects::{as_dict, get};

/// How far up the page tree inherited attributes (`/Resources`, `/MediaBox`) are looked for.
const MAX_TREE_DEPTH: usize = 64;

/// The text layer of a PDF, page by page: one `PageSpan` per page (length 0 and a
/// `PageWithoutText` warning for a page without text). A PDF without any text is returned
/// with every page empty; [`crate::extract::extract`] refuses it as `PdfHasNoText`.
///
/// Errors: `UnreadablePdf` (not a PDF, or damaged beyond repair), `PdfEncrypted` (it needs a
/// user password), `ExtractionTimedOut` (past `deadline`).
pub fn extract(bytes: &[u8], deadline: Instant) -> Result<Extraction, ExtractError> {
    extract_with(bytes, deadline, &Options::default())
}

/// Choices in how a PDF's text is put together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep running headers and footers on every page instead of only where they first
    /// appear. Off for analysis (repeated boilerplate only costs tokens); on to compare with
    /// tools that keep them, such as `pdftotext`.
    pub keep_running_lines: bool,
}

/// [`extract`] with [`Options`]. When running headers or footers were kept once, a
/// `RunningLinesRemoved` warning names them.
pub fn extract_with(
    bytes: &[u8],
    deadline: Instant,
    options: &Options,
) -> Result<Extraction, ExtractError> {
    check_deadline(deadline)?;
    match catch_unwind(AssertUnwindSafe(|| read(bytes, deadline, options))) {
        Ok(result) => result,
        Err(_) => Err(unreadable(
            "the PDF parser failed on this file (it is damaged or malformed)",
        )),
    }
}

fn unreadable(why: impl std::fmt::Display) -> ExtractError {
    ExtractError::new("UnreadablePdf", format!("the PDF cannot be read: {why}"))
}

fn encrypted() -> ExtractError {
    ExtractError::new(
        "PdfEncrypted",
        "the PDF is encrypted with a user password (it opens only with that password); \
         submit a copy saved without the password",
    )
}

fn read(bytes: &[u8], deadline: Instant, options: &Options) -> Result<Extraction, ExtractError> {
    if !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Err(unreadable("it does not start with a %PDF- header"));
    }
    let doc = match Document::load_mem(bytes) {
        Ok(doc) => doc,
        Err(error) if bytes.windows(8).any(|w| w == b"/Encrypt") => {
            return Err(ExtractError::new(
                "PdfEncrypted",
                format!("the PDF is encrypted in a way docflow cannot open ({error})"),
            ));
        }
        Err(error) => return Err(unreadable(error)),
    };
    check_deadline(deadline)?;
    // A document that opened with the empty password has no `/Encrypt` left. One whose
    // trailer lacks the `/ID` that the key derivation uses is read as readers do, with an
    // empty one.
    let doc = if doc.trailer.has(b"Encrypt") && !doc.trailer.has(b"ID") {
        with_empty_file_id(bytes)
            .and_then(|patched| Document::load_mem(&patched).ok())
            .unwrap_or(doc)
    } else {
        doc
    };
    if doc.trailer.has(b"Encrypt") {
        return Err(encrypted());
    }
    let page_ids = doc.get_pages();
    if page_ids.is_empty() {
        return Err(unreadable("it has no pages"));
    }
    let need_appearances = doc
        .catalog()
        .ok()
        .and_then(|catalog| objects::get_dict(&doc, catalog, b"AcroForm"))
        .and_then(|form| get(&doc, form, b"NeedAppearances"))
        .is_some_and(|value| matches!(value, Object::Boolean(true)));
    let mut fonts = FontCache::default();
    let mut pages = Vec::with_capacity(page_ids.len());
    for page_id in page_ids.values() {
        check_deadline(deadline)?;
        let Some(page) = objects::object(&doc, *page_id).and_then(as_dict) else {
            pages.push(Vec::new());
            continue;
        };
        let resources = inherited(&doc, page, b"Resources").and_then(as_dict);
        let page_box = page_box(&doc, page);
        let chars = interpret::page_chars(
            &doc,
            page,
            resources,
            &mut fonts,
            need_appearances,
            bytes,
            deadline,
        )?;
        pages.push(layout::lines(&chars, page_box, deadline)?);
    }
    let (text, spans, running) = pages::assemble(pages, options.keep_running_lines);
    let mut warnings: Vec<ExtractionWarning> = spans
        .iter()
        .filter(|span| span.length == 0)
        .map(|span| {
            ExtractionWarning::page(
                "PageWithoutText",
                span.page,
                format!(
                    "page {} has no text layer (a scan or only images): its content is not in the text",
                    span.page
                ),
            )
        })
        .collect();
    if !running.is_empty() {
        let lines: Vec<String> = running
            .iter()
            .map(|line| format!("\"{}\" (removed from {} pages)", line.text, line.removed))
            .collect();
        warnings.push(ExtractionWarning::new(
            "RunningLinesRemoved",
            format!(
                "running headers and footers are kept only where they first appear: {}",
                lines.join("; ")
            ),
        ));
    }
    Ok(Extraction {
        text,
        method: ExtractionMethod::TextLayer,
        pages: spans,
        warnings,
    })
}

/// The file with `/ID [<> <>]` added to its (last) trailer dictionary.
fn with_empty_file_id(bytes: &[u8]) -> Option<Vec<u8>> {
    let trailer = bytes.windows(7).rposition(|w| w == b"trailer")?;
    let open = trailer + bytes[trailer..].windows(2).position(|w| w == b"<<")? + 2;
    let mut patched = Vec::with_capacity(bytes.len() + 16);
    patched.extend_from_slice(&bytes[..open]);
    patched.extend_from_slice(b" /ID [<> <>] ");
    patched.extend_from_slice(&bytes[open..]);
    Some(patched)
}

/// An attribute a page inherits from the page tree (`/Resources`, `/MediaBox`, `/CropBox`).
fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..MAX_TREE_DEPTH {
        if let Some(value) = get(doc, node, key) {
            return Some(value);
        }
        node = get(doc, node, b"Parent").and_then(as_dict)?;
    }
    None
}

/// The visible area of a page: its crop box within its media box, `[x0, y0, x1, y1]`.
fn page_box(doc: &Document, page: &Dictionary) -> Option<[f64; 4]> {
    let rectangle = |key: &[u8]| -> Option<[f64; 4]> {
        let [a, b, c, d] = objects::numbers::<4>(doc, inherited(doc, page, key)?)?;
        let r = [a.min(c), b.min(d), a.max(c), b.max(d)];
        (r[2] - r[0] > 1.0 && r[3] - r[1] > 1.0).then_some(r)
    };
    let media = rectangle(b"MediaBox");
    match (media, rectangle(b"CropBox")) {
        (Some(m), Some(c)) => {
            let r = [
                m[0].max(c[0]),
                m[1].max(c[1]),
                m[2].min(c[2]),
                m[3].min(c[3]),
            ];
            Some(if r[2] > r[0] && r[3] > r[1] { r } else { m })
        }
        (media, crop) => media.or(crop),
    }
}
