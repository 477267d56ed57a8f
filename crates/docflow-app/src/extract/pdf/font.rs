//! Fonts: which text each code of a string stands for, and how far it advances.
//!
//! Text comes, in order of trust, from the font's `/ToUnicode` CMap, then from glyph names
//! (`/Differences`, the font program's built-in encoding) through the Adobe Glyph List, then
//! from the base encoding (`StandardEncoding`, `WinAnsiEncoding`, `MacRomanEncoding`,
//! `Symbol`). Widths come from `/Widths` (`/W` for composite fonts), or, for the standard 14
//! fonts that may omit them, from the fonts' published metrics.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Object};

use super::cmap::{CidMap, ToUnicode, code_of, utf16_text};
use super::content::{Lexer, Operand};
use super::glyph_names::GLYPH_NAMES;
use super::objects::{
    as_dict, get, get_array, get_dict, get_name, get_number, get_numbers, get_stream_data, number,
    resolve,
};
use super::standard_fonts::StandardFont;
use super::tables;

/// One code of a string, decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Glyph {
    /// The text it stands for (empty when unknown).
    pub(super) text: String,
    /// Its advance in text space units, before the font size (the glyph width / 1000 for
    /// most fonts); vertical fonts advance by it downwards.
    pub(super) advance: f64,
    /// Whether it is the single-byte code 32, to which word spacing (`Tw`) applies.
    pub(super) word_space: bool,
}

/// A font ready to decode strings.
#[derive(Debug)]
pub(super) struct Font {
    kind: Kind,
    /// Glyph space to text space (0.001, or the `/FontMatrix` of a Type 3 font).
    scale: f64,
    /// Whether it writes top to bottom (`Identity-V` and other vertical CMaps).
    pub(super) vertical: bool,
}

#[derive(Debug)]
enum Kind {
    /// One byte per code: the text and width of each of the 256 codes.
    Simple { text: Vec<String>, widths: Vec<f64> },
    /// Type 0: codes of one to four bytes, CIDs, widths by CID.
    Composite(Box<Composite>),
}

/// What a Type 0 font decodes with.
#[derive(Debug)]
struct Composite {
    encoding: Encoding,
    to_unicode: Option<ToUnicode>,
    widths: CidWidths,
}

/// How a composite font's codes become CIDs (and maybe text).
#[derive(Debug)]
enum Encoding {
    /// An embedded or `Identity` CMap.
    Cids(CidMap),
    /// A predefined Unicode CMap (`UniJIS-UCS2-H`, `UniGB-UTF16-H`, …): the codes are UTF-16.
    Unicode,
}

/// The widths of a CID font (`/W`, `/DW`).
#[derive(Debug, Default)]
struct CidWidths {
    single: HashMap<u32, f64>,
    ranges: Vec<(u32, u32, f64)>,
    default: f64,
}

impl CidWidths {
    fn get(&self, cid: u32) -> f64 {
        if let Some(width) = self.single.get(&cid) {
            return *width;
        }
        self.ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&cid))
            .map_or(self.default, |(_, _, width)| *width)
    }
}

/// The most entries a `/W` array may expand to (a hostile one could name billions).
const MAX_CID_WIDTHS: usize = 1 << 20;

impl Font {
    /// Reads a font dictionary. Never fails: what is missing or broken is taken as absent, as
    /// readers do, so that text is still found.
    pub(super) fn load(doc: &Document, dict: &Dictionary) -> Self {
        let subtype = get_name(doc, dict, b"Subtype").unwrap_or_default();
        if subtype == b"Type0" {
            return Self::composite(doc, dict);
        }
        let scale = if subtype == b"Type3" {
            get_numbers::<6>(doc, dict, b"FontMatrix")
                .map(|m| m[0])
                .filter(|s| s.is_finite() && *s != 0.0)
                .unwrap_or(0.001)
        } else {
            0.001
        };
        let to_unicode = get_stream_data(doc, dict, b"ToUnicode")
            .map(|data| ToUnicode::parse(&data))
            .filter(|map| !map.is_empty());
        let base_font = base_font_name(doc, dict);
        let standard = StandardFont::from_name(&base_font);
        let descriptor = get_dict(doc, dict, b"FontDescriptor");

        // The base encoding: named, or the font's own.
        let encoding = get(doc, dict, b"Encoding");
        let encoding_dict = encoding.and_then(as_dict);
        let named = match encoding {
            Some(Object::Name(name)) => Some(name.as_slice()),
            _ => encoding_dict.and_then(|d| get_name(doc, d, b"BaseEncoding")),
        };
        let mut names: Vec<Option<String>> = vec![None; 256];
        let base: &[u16; 256] = match named {
            Some(b"WinAnsiEncoding") => &tables::WIN_ANSI_ENCODING,
            Some(b"MacRomanEncoding") => &tables::MAC_ROMAN_ENCODING,
            Some(b"StandardEncoding") => &tables::STANDARD_ENCODING,
            _ => match standard {
                Some(StandardFont::Symbol) => &tables::SYMBOL_ENCODING,
                Some(StandardFont::ZapfDingbats) => &NO_ENCODING,
                _ => {
                    if let Some(builtin) = descriptor.and_then(|d| type1_encoding(doc, d)) {
                        names = builtin;
                    }
                    if subtype == b"TrueType" {
                        &tables::WIN_ANSI_ENCODING
                    } else {
                        &tables::STANDARD_ENCODING
                    }
                }
            },
        };
        if let Some(differences) = encoding_dict.and_then(|d| get_array(doc, d, b"Differences")) {
            let mut code = 0usize;
            for item in differences {
                match resolve(doc, item) {
                    Some(Object::Integer(n)) => code = (*n).clamp(0, 256) as usize,
                    Some(Object::Name(name)) => {
                        if code < 256 {
                            names[code] = Some(String::from_utf8_lossy(name).into_owned());
                        }
                        code += 1;
                    }
                    _ => {}
                }
            }
        }
        let numeric_names = to_unicode.is_none() && names_are_numeric(&names);

        let mut text = Vec::with_capacity(256);
        for code in 0..256usize {
            let mapped = to_unicode.as_ref().and_then(|map| map.get(code as u32, 1));
            let from_name = || {
                let name = names[code].as_deref()?;
                glyph_name_text(name).or_else(|| {
                    numeric_names
                        .then(|| numeric_name_code(name))
                        .flatten()
                        .and_then(|c| char::from_u32(u32::from(base[c as usize])))
                        .map(String::from)
                })
            };
            let from_base = || char::from_u32(u32::from(base[code])).filter(|c| *c != '\0');
            text.push(
                mapped
                    .or_else(from_name)
                    .or_else(|| from_base().map(String::from))
                    .unwrap_or_default(),
            );
        }

        // Widths: `/Widths`, else the standard font's metrics.
        let missing = descriptor
            .and_then(|d| get_number(doc, d, b"MissingWidth"))
            .unwrap_or(0.0);
        let mut widths = vec![missing; 256];
        match get_array(doc, dict, b"Widths") {
            Some(list) if !list.is_empty() => {
                let first = get_number(doc, dict, b"FirstChar").unwrap_or(0.0).max(0.0) as usize;
                for (offset, width) in list.iter().enumerate() {
                    if let Some(slot) = widths.get_mut(first + offset) {
                        *slot = number(doc, width).unwrap_or(missing);
                    }
                }
            }
            _ => {
                let metrics = standard.unwrap_or_else(|| StandardFont::substitute(&base_font));
                for (code, slot) in widths.iter_mut().enumerate() {
                    *slot = metrics.width(code as u8, text[code].chars().next());
                }
            }
        }
        Self {
            kind: Kind::Simple { text, widths },
            scale,
            vertical: false,
        }
    }

    fn composite(doc: &Document, dict: &Dictionary) -> Self {
        let descendant = get_array(doc, dict, b"DescendantFonts")
            .and_then(|fonts| fonts.first())
            .and_then(|font| resolve(doc, font))
            .and_then(as_dict);
        let (encoding, vertical) = match get(doc, dict, b"Encoding") {
            Some(Object::Name(name)) => {
                let vertical = name.ends_with(b"-V");
                if name.starts_with(b"Uni")
                    && (name.windows(4).any(|w| w == b"UCS2")
                        || name.windows(5).any(|w| w == b"UTF16"))
                {
                    (Encoding::Unicode, vertical)
                } else {
                    (Encoding::Cids(CidMap::identity(vertical)), vertical)
                }
            }
            Some(Object::Stream(stream)) => {
                let map = super::objects::stream_data(stream)
                    .map(|data| CidMap::parse(&data))
                    .unwrap_or_else(|| CidMap::identity(false));
                let vertical = map.vertical;
                (Encoding::Cids(map), vertical)
            }
            _ => (Encoding::Cids(CidMap::identity(false)), false),
        };
        let to_unicode = get_stream_data(doc, dict, b"ToUnicode")
            .map(|data| ToUnicode::parse(&data))
            .filter(|map| !map.is_empty());
        let mut widths = CidWidths {
            default: 1000.0,
            ..CidWidths::default()
        };
        if let Some(descendant) = descendant {
            if vertical {
                // `/DW2 [vy w1y]`: the vertical advance; `/W2` is rare enough to leave out.
                widths.default = get_array(doc, descendant, b"DW2")
                    .and_then(|dw2| dw2.get(1))
                    .and_then(|w| number(doc, w))
                    .map_or(1000.0, f64::abs);
            } else {
                if let Some(dw) = get_number(doc, descendant, b"DW") {
                    widths.default = dw;
                }
                if let Some(list) = get_array(doc, descendant, b"W") {
                    read_cid_widths(doc, list, &mut widths);
                }
            }
        }
        Self {
            kind: Kind::Composite(Box::new(Composite {
                encoding,
                to_unicode,
                widths,
            })),
            scale: 0.001,
            vertical,
        }
    }

    /// The glyphs of a string shown in this font.
    pub(super) fn decode(&self, bytes: &[u8]) -> Vec<Glyph> {
        match &self.kind {
            Kind::Simple { text, widths } => bytes
                .iter()
                .map(|&code| Glyph {
                    text: text[code as usize].clone(),
                    advance: widths[code as usize] * self.scale,
                    word_space: code == 32,
                })
                .collect(),
            Kind::Composite(composite) => {
                let Composite {
                    encoding,
                    to_unicode,
                    widths,
                } = composite.as_ref();
                let mut glyphs = Vec::new();
                let mut rest = bytes;
                while !rest.is_empty() {
                    let (code, length, cid, direct) = match encoding {
                        Encoding::Cids(map) => {
                            let (code, length) = map.codespaces.next_code(rest);
                            (code, length, Some(map.cid(code, length)), None)
                        }
                        Encoding::Unicode => {
                            let high = rest.len() >= 4
                                && (0xd800..0xdc00)
                                    .contains(&u16::from_be_bytes([rest[0], rest[1]]));
                            let length = if high { 4 } else { 2.min(rest.len()) };
                            let units: Vec<u16> = rest[..length]
                                .chunks(2)
                                .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]))
                                .collect();
                            (
                                code_of(&rest[..length]),
                                length,
                                None,
                                Some(utf16_text(&units)),
                            )
                        }
                    };
                    let length = length.max(1);
                    let text = to_unicode
                        .as_ref()
                        .and_then(|map| map.get(code, length))
                        .or(direct)
                        .unwrap_or_default();
                    let width = cid.map_or(widths.default, |cid| widths.get(cid));
                    glyphs.push(Glyph {
                        text,
                        advance: width * self.scale,
                        word_space: length == 1 && code == 32,
                    });
                    rest = &rest[length.min(rest.len())..];
                }
                glyphs
            }
        }
    }
}

/// No base encoding (`ZapfDingbats`: its glyphs are symbols, not text).
static NO_ENCODING: [u16; 256] = [0; 256];

/// `/W`: `c [w1 w2 …]` and `c_first c_last w`.
fn read_cid_widths(doc: &Document, list: &[Object], widths: &mut CidWidths) {
    let mut i = 0;
    while i < list.len() && widths.single.len() < MAX_CID_WIDTHS {
        let Some(first) = number(doc, &list[i]) else {
            i += 1;
            continue;
        };
        let first = first.max(0.0) as u32;
        match list.get(i + 1).and_then(|next| resolve(doc, next)) {
            Some(Object::Array(each)) => {
                for (offset, width) in each.iter().enumerate() {
                    if let Some(width) = number(doc, width) {
                        widths
                            .single
                            .insert(first.saturating_add(offset as u32), width);
                    }
                }
                i += 2;
            }
            Some(_) => {
                let last = list.get(i + 1).and_then(|o| number(doc, o));
                let width = list.get(i + 2).and_then(|o| number(doc, o));
                if let (Some(last), Some(width)) = (last, width) {
                    widths.ranges.push((first, last.max(0.0) as u32, width));
                }
                i += 3;
            }
            None => break,
        }
    }
}

/// `/BaseFont` without a subset prefix (`ABCDEF+Helvetica` → `Helvetica`).
fn base_font_name(doc: &Document, dict: &Dictionary) -> String {
    let name = get_name(doc, dict, b"BaseFont").unwrap_or_default();
    let name = String::from_utf8_lossy(name);
    match name.split_once('+') {
        Some((prefix, rest)) if prefix.len() == 6 => rest.to_owned(),
        _ => name.into_owned(),
    }
}

/// The built-in encoding of an embedded Type 1 font program (`dup 65 /A put` in its clear
/// text part), as glyph names by code.
fn type1_encoding(doc: &Document, descriptor: &Dictionary) -> Option<Vec<Option<String>>> {
    let program = get_stream_data(doc, descriptor, b"FontFile")?;
    let clear = match program.windows(5).position(|w| w == b"eexec") {
        Some(end) => &program[..end],
        None => &program[..program.len().min(64 << 10)],
    };
    let start = clear.windows(9).position(|w| w == b"/Encoding")?;
    let clear = &clear[start..];
    if clear[9..]
        .trim_ascii_start()
        .starts_with(b"StandardEncoding")
    {
        return None;
    }
    let mut names = vec![None; 256];
    let mut any = false;
    for op in Lexer::new(clear) {
        match op.operator.as_slice() {
            b"put" => {
                if let [.., Operand::Number(code), Operand::Name(name)] = op.operands.as_slice()
                    && (0.0..256.0).contains(code)
                {
                    names[*code as usize] = Some(String::from_utf8_lossy(name).into_owned());
                    any = true;
                }
            }
            b"readonly" | b"def" if any => break,
            _ => {}
        }
    }
    any.then_some(names)
}

/// The text of a glyph name: the Adobe Glyph List, `uniXXXX`, `uXXXX[XX]`, ligatures written
/// `f_f_i`, variants written `a.sc`.
pub(super) fn glyph_name_text(name: &str) -> Option<String> {
    let base = match name.find('.') {
        Some(0) | None => name,
        Some(dot) => &name[..dot],
    };
    if base.is_empty() || base == ".notdef" {
        return None;
    }
    if base.contains('_') {
        return base
            .split('_')
            .map(glyph_name_text)
            .collect::<Option<Vec<String>>>()
            .map(|parts| parts.concat());
    }
    if let Ok(index) = GLYPH_NAMES.binary_search_by(|(n, _)| (*n).cmp(base)) {
        return char::from_u32(u32::from(GLYPH_NAMES[index].1)).map(String::from);
    }
    if let Some(hex) = base.strip_prefix("uni")
        && hex.len() >= 4
        && hex.len() % 4 == 0
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let units: Vec<u16> = hex
            .as_bytes()
            .chunks(4)
            .filter_map(|chunk| u16::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok())
            .collect();
        return Some(utf16_text(&units));
    }
    if let Some(hex) = base.strip_prefix('u')
        && (4..=6).contains(&hex.len())
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .map(String::from);
    }
    None
}

/// Whether a font's glyph names are all of the kind `C65`, `g32`, `cid66` that some
/// producers give glyphs: then their number is read as the code of the character.
fn names_are_numeric(names: &[Option<String>]) -> bool {
    let mut any = false;
    for name in names.iter().flatten() {
        if glyph_name_text(name).is_some() {
            continue;
        }
        if numeric_name_code(name).is_none() {
            return false;
        }
        any = true;
    }
    any
}

/// The number in a name like `C65`, `g32`, `Gx41` (one or two letters, then decimal digits, or
/// hexadecimal digits after an `x`), when it is a byte.
fn numeric_name_code(name: &str) -> Option<u8> {
    let letters = name.bytes().take_while(u8::is_ascii_alphabetic).count();
    if !(1..=2).contains(&letters) {
        return None;
    }
    let digits = &name[letters..];
    let value = if name.as_bytes()[letters - 1] == b'x' && letters == 2 {
        u32::from_str_radix(digits, 16).ok()?
    } else {
        if !(2..=3).contains(&digits.len()) {
            return None;
        }
        digits.parse::<u32>().ok()?
    };
    u8::try_from(value).ok().filter(|code| *code >= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_names_become_text() {
        assert_eq!(glyph_name_text("A").as_deref(), Some("A"));
        assert_eq!(glyph_name_text("quoteright").as_deref(), Some("\u{2019}"));
        assert_eq!(glyph_name_text("f_f_i").as_deref(), Some("ffi"));
        assert_eq!(glyph_name_text("fi").as_deref(), Some("\u{fb01}"));
        assert_eq!(glyph_name_text("a.sc").as_deref(), Some("a"));
        assert_eq!(glyph_name_text("uni00410042").as_deref(), Some("AB"));
        assert_eq!(glyph_name_text("u1D400").as_deref(), Some("\u{1D400}"));
        assert_eq!(glyph_name_text("afii10017").as_deref(), Some("\u{0410}"));
        assert_eq!(glyph_name_text(".notdef"), None);
        assert_eq!(glyph_name_text("g123x"), None);
    }

    #[test]
    fn numeric_glyph_names() {
        assert_eq!(numeric_name_code("C65"), Some(65));
        assert_eq!(numeric_name_code("g104"), Some(104));
        assert_eq!(numeric_name_code("Gx41"), Some(0x41));
        assert_eq!(numeric_name_code("g3"), None);
        assert_eq!(numeric_name_code("cid1234"), None);
    }
}
