//! Word documents (`.docx`): the text of the body (paragraphs and tables), the headers and
//! footers, and the footnotes and endnotes.
//!
//! A `.docx` is a zip of XML parts. The main part (`word/document.xml`, or wherever the
//! package's relationships point) is read as a stream of XML events: paragraphs become lines,
//! table rows become lines of cells joined with ` | `, `w:tab` a tab, `w:br`/`w:cr` a line
//! break. Deleted revisions (`w:del`, `w:moveFrom`) are not text; inserted ones are. The
//! fallback copy of alternate content (`mc:Fallback`, which repeats a text box's text) and
//! placeholder text of empty content controls are skipped. Elements are matched by local name,
//! whatever their prefix.
//!
//! Everything read from the zip counts against [`MAX_UNCOMPRESSED_BYTES`], so a zip bomb is
//! refused (`DocumentTooLarge`) instead of filling the memory.

#[cfg(test)]
pub(crate) mod tests;
mod walker;

use std::io::{Cursor, Read};
use std::time::Instant;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use self::walker::Walker;

use super::{ExtractError, Extraction, ExtractionMethod, ExtractionWarning, check_deadline};

/// The most bytes read, uncompressed, from one document's parts together.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

/// The most header or footer parts read (a real document has a few per section).
const MAX_HEADER_FOOTER_PARTS: usize = 256;

/// How many XML events are handled between two looks at the clock.
const EVENTS_PER_DEADLINE_CHECK: u32 = 4096;

/// The text of a `.docx`: headers first (under `Header:`), then the body, the footnotes
/// (`Footnotes:`), the endnotes (`Endnotes:`) and the footers (`Footer:`). A document without
/// any text gives an empty text: refusing it is the caller's decision.
pub fn extract(bytes: &[u8], deadline: Instant) -> Result<Extraction, ExtractError> {
    check_deadline(deadline)?;
    let mut package = Package::open(bytes)?;
    let main = package.main_part_name();
    let Some(document) = package.read(&main)? else {
        return Err(unreadable(format!(
            "reading the .docx failed: it has no {main} (not a Word document?)"
        )));
    };
    let body = read_story(&main, &document, deadline, Story::Body)
        .map_err(|error| error.into_extract_error())?;
    drop(document);

    let folder = main.rsplit_once('/').map_or("", |(folder, _)| folder);
    let mut warnings = Vec::new();
    let headers = package.read_stories(folder, "header", deadline, &mut warnings)?;
    let footers = package.read_stories(folder, "footer", deadline, &mut warnings)?;
    let mut notes = |name: &str, warnings: &mut Vec<ExtractionWarning>| {
        let part = join_path(folder, name);
        package.read_story(&part, Story::Notes, deadline, warnings)
    };
    let footnotes = notes("footnotes.xml", &mut warnings)?;
    let endnotes = notes("endnotes.xml", &mut warnings)?;

    let mut sections = Vec::new();
    sections.extend(headers.iter().map(|text| labelled("Header:", text)));
    if !body.is_empty() {
        sections.push(body);
    }
    sections.extend(footnotes.map(|text| labelled("Footnotes:", &text)));
    sections.extend(endnotes.map(|text| labelled("Endnotes:", &text)));
    sections.extend(footers.iter().map(|text| labelled("Footer:", text)));
    Ok(Extraction {
        text: sections.join("\n\n"),
        method: ExtractionMethod::Wordprocessing,
        pages: Vec::new(),
        warnings,
    })
}

fn unreadable(message: impl Into<String>) -> ExtractError {
    ExtractError::new("UnreadableDocx", message)
}

/// `Label: text` for a one-line text, the label on its own line otherwise.
fn labelled(label: &str, text: &str) -> String {
    if text.contains('\n') {
        format!("{label}\n{text}")
    } else {
        format!("{label} {text}")
    }
}

fn join_path(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// The zip, and how many uncompressed bytes may still be read from it.
struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    budget: u64,
}

impl<'a> Package<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, ExtractError> {
        if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
            return Err(unreadable(
                "reading the .docx failed: it is an OLE compound file (a legacy .doc, or a \
                 password-protected .docx), not a zip package",
            ));
        }
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
            unreadable(format!(
                "reading the .docx failed: it is not a valid zip package ({error})"
            ))
        })?;
        Ok(Self {
            archive,
            budget: MAX_UNCOMPRESSED_BYTES,
        })
    }

    /// The bytes of a part, `None` when the package has no such part.
    fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let Some(index) = self.archive.index_for_name(name) else {
            return Ok(None);
        };
        let too_large = || {
            ExtractError::new(
                "DocumentTooLarge",
                format!(
                    "reading the .docx failed: its parts hold more than {} MiB of XML once \
                     uncompressed",
                    MAX_UNCOMPRESSED_BYTES / (1024 * 1024)
                ),
            )
        };
        let file = self.archive.by_index(index).map_err(|error| {
            unreadable(format!("reading {name} from the .docx failed: {error}"))
        })?;
        if file.size() > self.budget {
            return Err(too_large());
        }
        let capacity = usize::try_from(file.size().min(1024 * 1024)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        file.take(self.budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| {
                unreadable(format!("reading {name} from the .docx failed: {error}"))
            })?;
        let read = bytes.len() as u64;
        if read > self.budget {
            return Err(too_large());
        }
        self.budget -= read;
        Ok(Some(bytes))
    }

    /// The main part, as the package relationships name it (`word/document.xml` when they
    /// do not).
    fn main_part_name(&mut self) -> String {
        const DEFAULT: &str = "word/document.xml";
        let Ok(Some(rels)) = self.read("_rels/.rels") else {
            return DEFAULT.to_owned();
        };
        let mut reader = Reader::from_reader(rels.as_slice());
        loop {
            match reader.read_event() {
                Ok(Event::Start(element) | Event::Empty(element))
                    if element.local_name().as_ref() == b"Relationship" =>
                {
                    let is_main = attribute(&element, b"Type")
                        .is_some_and(|kind| kind.ends_with(b"/officeDocument"));
                    let target = attribute(&element, b"Target")
                        .and_then(|target| String::from_utf8(target).ok());
                    if let (true, Some(target)) = (is_main, target) {
                        let target = target.trim_start_matches('/');
                        if !target.is_empty() && !target.contains("..") {
                            return target.to_owned();
                        }
                    }
                }
                Ok(Event::Eof) | Err(_) => return DEFAULT.to_owned(),
                Ok(_) => {}
            }
        }
    }

    /// The text of each distinct `{prefix}N.xml` part of `folder`, in the order of N.
    fn read_stories(
        &mut self,
        folder: &str,
        prefix: &str,
        deadline: Instant,
        warnings: &mut Vec<ExtractionWarning>,
    ) -> Result<Vec<String>, ExtractError> {
        let start = join_path(folder, prefix);
        let mut parts: Vec<(u64, String)> = self
            .archive
            .file_names()
            .filter_map(|name| {
                let name = name.ok()?;
                let number = name.strip_prefix(&start)?.strip_suffix(".xml")?;
                if !number.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                Some((number.parse().unwrap_or(0), name.to_string()))
            })
            .collect();
        parts.sort();
        parts.truncate(MAX_HEADER_FOOTER_PARTS);
        let mut texts: Vec<String> = Vec::new();
        for (_, name) in parts {
            if let Some(text) = self.read_story(&name, Story::HeaderFooter, deadline, warnings)?
                && !texts.contains(&text)
            {
                texts.push(text);
            }
        }
        Ok(texts)
    }

    /// The text of a secondary part (header, footer, notes): `None` when it is missing, empty
    /// or unreadable (then with a warning).
    fn read_story(
        &mut self,
        name: &str,
        story: Story,
        deadline: Instant,
        warnings: &mut Vec<ExtractionWarning>,
    ) -> Result<Option<String>, ExtractError> {
        let Some(xml) = self.read(name)? else {
            return Ok(None);
        };
        match read_story(name, &xml, deadline, story) {
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(StoryError::Fatal(error)) => Err(error),
            Err(StoryError::BadXml(message)) => {
                warnings.push(ExtractionWarning::new("PartNotRead", message));
                Ok(None)
            }
        }
    }
}

/// The raw value of an attribute, by local name (the values read here are plain ASCII words
/// and paths, which need no unescaping).
fn attribute(element: &BytesStart<'_>, local_name: &[u8]) -> Option<Vec<u8>> {
    element
        .attributes()
        .flatten()
        .find(|attr| attr.key.local_name().as_ref() == local_name)
        .map(|attr| attr.value.into_owned())
}

/// Which kind of part is read: notes skip their separator notes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Story {
    Body,
    HeaderFooter,
    Notes,
}

enum StoryError {
    /// Timed out: the whole extraction fails.
    Fatal(ExtractError),
    /// The part is not well-formed XML.
    BadXml(String),
}

impl StoryError {
    fn into_extract_error(self) -> ExtractError {
        match self {
            Self::Fatal(error) => error,
            Self::BadXml(message) => unreadable(message),
        }
    }
}

/// The text of one XML part.
fn read_story(
    name: &str,
    xml: &[u8],
    deadline: Instant,
    story: Story,
) -> Result<String, StoryError> {
    let bad = |error: &dyn std::fmt::Display| {
        StoryError::BadXml(format!(
            "reading {name} failed: it is not valid XML ({error})"
        ))
    };
    let mut reader = Reader::from_reader(xml);
    let mut walker = Walker::default();
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(EVENTS_PER_DEADLINE_CHECK) {
            check_deadline(deadline).map_err(StoryError::Fatal)?;
        }
        match reader.read_event().map_err(|error| bad(&error))? {
            Event::Start(element) => walker.start(&element, story),
            Event::Empty(element) => walker.empty(&element),
            Event::End(element) => walker.end(element.local_name().as_ref()),
            Event::Text(text) if walker.in_text() => {
                let text = text.xml10_content().map_err(|error| bad(&error))?;
                walker.push_text(&text);
            }
            Event::CData(text) if walker.in_text() => {
                let text = text.decode().map_err(|error| bad(&error))?;
                walker.push_text(&text);
            }
            Event::GeneralRef(reference) if walker.in_text() => {
                if let Some(character) =
                    reference.resolve_char_ref().map_err(|error| bad(&error))?
                {
                    walker.push_text(character.encode_utf8(&mut [0; 4]));
                } else {
                    let name = reference.decode().map_err(|error| bad(&error))?;
                    if let Some(text) = predefined_entity(&name) {
                        walker.push_text(text);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(walker.finish())
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return None,
    })
}
