//! CMaps: how a font's byte codes split into character codes, which CID each code selects,
//! and which Unicode text it stands for (`/ToUnicode`).
//!
//! Both kinds are read with the content-stream lexer: a CMap is PostScript whose operators
//! (`endbfchar`, `endcidrange`, …) carry their entries as operands.

use std::collections::HashMap;

use super::content::{Lexer, MAX_CMAP_OPERANDS, Operand};

/// Entries expanded into the lookup table at most; ranges beyond it are searched instead.
const MAX_EXPANDED: usize = 1 << 20;

/// A range of codes as bytes of one length: `lo[i] <= code[i] <= hi[i]` for every byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Codespace {
    lo: Vec<u8>,
    hi: Vec<u8>,
}

/// How a CMap splits a string into codes: its code space ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Codespaces(Vec<Codespace>);

impl Codespaces {
    /// Two-byte codes (`Identity-H`, the UCS-2 CMaps).
    pub(super) fn two_bytes() -> Self {
        Self(vec![Codespace {
            lo: vec![0, 0],
            hi: vec![0xff, 0xff],
        }])
    }

    /// Whether no range is declared.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first code of `bytes`: `(code, length in bytes)`. A code that matches no range is
    /// taken with the shortest length declared (one byte when none is), as readers do. The
    /// length is 0 only for empty `bytes`.
    pub(super) fn next_code(&self, bytes: &[u8]) -> (u32, usize) {
        for length in 1..=4usize {
            let Some(candidate) = bytes.get(..length) else {
                break;
            };
            let matches = self.0.iter().any(|space| {
                space.lo.len() == length
                    && candidate
                        .iter()
                        .zip(space.lo.iter().zip(&space.hi))
                        .all(|(byte, (lo, hi))| lo <= byte && byte <= hi)
            });
            if matches {
                return (code_of(candidate), length);
            }
        }
        let shortest = self.0.iter().map(|space| space.lo.len()).min().unwrap_or(1);
        let length = shortest.min(bytes.len()).max(1).min(bytes.len());
        (code_of(&bytes[..length]), length)
    }
}

/// A big-endian code from its bytes.
pub(super) fn code_of(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0u32, |code, byte| (code << 8) | u32::from(*byte))
}

/// A `/ToUnicode` CMap: character codes to text.
#[derive(Debug, Clone, Default)]
pub(super) struct ToUnicode {
    /// The code space ranges it declares (used when the font itself gives none).
    pub(super) codespaces: Codespaces,
    /// `(length, code)` to text.
    chars: HashMap<(u8, u32), String>,
    /// Ranges too large to expand: `(length, first, last, UTF-16 of the first)`.
    ranges: Vec<(u8, u32, u32, Vec<u16>)>,
}

impl ToUnicode {
    /// Reads a CMap stream's (decoded) bytes.
    pub(super) fn parse(data: &[u8]) -> Self {
        let mut map = Self::default();
        for op in Lexer::with_max_operands(data, MAX_CMAP_OPERANDS) {
            match op.operator.as_slice() {
                b"endcodespacerange" => map.codespaces.0.extend(codespaces(&op.operands)),
                b"endbfchar" => {
                    for pair in op.operands.chunks_exact(2) {
                        let (Operand::Str(src), Some(text)) = (&pair[0], destination(&pair[1]))
                        else {
                            continue;
                        };
                        map.insert(src, text);
                    }
                }
                b"endbfrange" => {
                    for triple in op.operands.chunks_exact(3) {
                        map.bfrange(triple);
                    }
                }
                _ => {}
            }
        }
        map
    }

    fn insert(&mut self, src: &[u8], text: String) {
        if src.is_empty() || src.len() > 4 {
            return;
        }
        self.chars.insert((src.len() as u8, code_of(src)), text);
    }

    fn bfrange(&mut self, triple: &[Operand]) {
        let (Operand::Str(lo), Operand::Str(hi)) = (&triple[0], &triple[1]) else {
            return;
        };
        if lo.is_empty() || lo.len() > 4 || hi.len() != lo.len() {
            return;
        }
        let length = lo.len() as u8;
        let (first, last) = (code_of(lo), code_of(hi));
        if last < first {
            return;
        }
        match &triple[2] {
            Operand::Array(items) => {
                for (offset, item) in items.iter().enumerate() {
                    let code = first.saturating_add(offset as u32);
                    if code > last || self.chars.len() >= MAX_EXPANDED {
                        break;
                    }
                    if let Some(text) = destination(item) {
                        self.chars.insert((length, code), text);
                    }
                }
            }
            Operand::Str(start) => {
                let units = utf16_units(start);
                if units.is_empty() {
                    return;
                }
                let count = (last - first) as usize + 1;
                if count <= 256 && self.chars.len() + count <= MAX_EXPANDED {
                    for offset in 0..count as u32 {
                        self.chars.insert(
                            (length, first + offset),
                            utf16_text(&offset_units(&units, offset)),
                        );
                    }
                } else {
                    self.ranges.push((length, first, last, units));
                }
            }
            _ => {}
        }
    }

    /// The text of a code of `length` bytes, if the CMap maps it (a code of another length
    /// with the same value is taken when no exact entry exists).
    pub(super) fn get(&self, code: u32, length: usize) -> Option<String> {
        let length = length as u8;
        if let Some(text) = self.chars.get(&(length, code)) {
            return Some(text.clone());
        }
        for (len, first, last, units) in self.ranges.iter().rev() {
            if *len == length && (*first..=*last).contains(&code) {
                return Some(utf16_text(&offset_units(units, code - first)));
            }
        }
        [1u8, 2, 3, 4]
            .iter()
            .filter(|other| **other != length)
            .find_map(|other| self.chars.get(&(*other, code)).cloned())
    }

    /// Whether it maps nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.chars.is_empty() && self.ranges.is_empty()
    }
}

/// An encoding CMap of a composite font: codes to CIDs.
#[derive(Debug, Clone, Default)]
pub(super) struct CidMap {
    /// How strings split into codes.
    pub(super) codespaces: Codespaces,
    /// `(length, code)` to CID.
    chars: HashMap<(u8, u32), u32>,
    /// `(length, first code, last code, first CID)`.
    ranges: Vec<(u8, u32, u32, u32)>,
    /// Whether codes map to themselves (an `Identity` CMap, or one that uses it).
    identity: bool,
    /// Whether the writing mode is vertical (`/WMode 1`).
    pub(super) vertical: bool,
}

impl CidMap {
    /// `Identity-H` (or `-V`): two-byte codes that are their own CIDs.
    pub(super) fn identity(vertical: bool) -> Self {
        Self {
            codespaces: Codespaces::two_bytes(),
            identity: true,
            vertical,
            ..Self::default()
        }
    }

    /// Reads an embedded CMap stream's (decoded) bytes.
    pub(super) fn parse(data: &[u8]) -> Self {
        let mut map = Self::default();
        for op in Lexer::with_max_operands(data, MAX_CMAP_OPERANDS) {
            match op.operator.as_slice() {
                b"endcodespacerange" => map.codespaces.0.extend(codespaces(&op.operands)),
                b"endcidchar" => {
                    for pair in op.operands.chunks_exact(2) {
                        if let (Operand::Str(src), Some(cid)) = (&pair[0], pair[1].number())
                            && (1..=4).contains(&src.len())
                            && cid >= 0.0
                        {
                            map.chars
                                .insert((src.len() as u8, code_of(src)), cid as u32);
                        }
                    }
                }
                b"endcidrange" => {
                    for triple in op.operands.chunks_exact(3) {
                        let (Operand::Str(lo), Operand::Str(hi), Some(cid)) =
                            (&triple[0], &triple[1], triple[2].number())
                        else {
                            continue;
                        };
                        if (1..=4).contains(&lo.len()) && lo.len() == hi.len() && cid >= 0.0 {
                            map.ranges
                                .push((lo.len() as u8, code_of(lo), code_of(hi), cid as u32));
                        }
                    }
                }
                b"usecmap" => {
                    if let Some(Operand::Name(name)) = op.operands.last()
                        && name.starts_with(b"Identity")
                    {
                        map.identity = true;
                        if map.codespaces.is_empty() {
                            map.codespaces = Codespaces::two_bytes();
                        }
                    }
                }
                b"def" => {
                    if let [.., Operand::Name(key), Operand::Number(value)] = op.operands.as_slice()
                        && key == b"WMode"
                    {
                        map.vertical = *value == 1.0;
                    }
                }
                _ => {}
            }
        }
        if map.codespaces.is_empty() {
            map.codespaces = Codespaces::two_bytes();
        }
        map
    }

    /// The CID of a code (0, the missing glyph, when the CMap has none).
    pub(super) fn cid(&self, code: u32, length: usize) -> u32 {
        let length = length as u8;
        if let Some(cid) = self.chars.get(&(length, code)) {
            return *cid;
        }
        for (len, first, last, cid) in self.ranges.iter().rev() {
            if *len == length && (*first..=*last).contains(&code) {
                return cid + (code - first);
            }
        }
        if self.identity { code } else { 0 }
    }
}

/// The ranges of an `endcodespacerange` operator.
fn codespaces(operands: &[Operand]) -> Vec<Codespace> {
    operands
        .chunks_exact(2)
        .filter_map(|pair| match (&pair[0], &pair[1]) {
            (Operand::Str(lo), Operand::Str(hi))
                if (1..=4).contains(&lo.len()) && lo.len() == hi.len() =>
            {
                Some(Codespace {
                    lo: lo.clone(),
                    hi: hi.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The text a `bfchar` or `bfrange` destination stands for: UTF-16BE bytes (or a glyph
/// name).
fn destination(operand: &Operand) -> Option<String> {
    match operand {
        Operand::Str(bytes) => Some(utf16_text(&utf16_units(bytes))),
        Operand::Name(name) => super::font::glyph_name_text(&String::from_utf8_lossy(name)),
        _ => None,
    }
}

/// UTF-16 code units of big-endian bytes (a single odd byte is taken as a code unit).
fn utf16_units(bytes: &[u8]) -> Vec<u16> {
    if bytes.len() == 1 {
        return vec![u16::from(bytes[0])];
    }
    bytes
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => u16::from_be_bytes([*high, *low]),
            [single] => u16::from(*single),
            _ => 0,
        })
        .collect()
}

/// `units` with `offset` added to the last code unit (the rule of `bfrange`).
fn offset_units(units: &[u16], offset: u32) -> Vec<u16> {
    let mut units = units.to_vec();
    if let Some(last) = units.last_mut() {
        *last = (u32::from(*last) + offset) as u16;
    }
    units
}

/// Text of UTF-16 code units, lone surrogates replaced.
pub(super) fn utf16_text(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bfchar_and_bfrange() {
        let map = ToUnicode::parse(
            b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
              1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
              2 beginbfchar <0003> <0020> <0011> <00660069> endbfchar\n\
              2 beginbfrange <0024> <0026> <0041> <0030> <0031> [<0078> <D835DC00>] endbfrange\n\
              endcmap CMapName currentdict /CMap defineresource pop end end",
        );
        assert_eq!(map.get(3, 2).as_deref(), Some(" "));
        assert_eq!(map.get(0x11, 2).as_deref(), Some("fi"));
        assert_eq!(map.get(0x25, 2).as_deref(), Some("B"));
        assert_eq!(map.get(0x26, 2).as_deref(), Some("C"));
        assert_eq!(map.get(0x31, 2).as_deref(), Some("\u{1D400}"));
        assert_eq!(map.get(0x99, 2), None);
        assert_eq!(map.codespaces.next_code(&[0, 0x24, 7]), (0x24, 2));
    }

    #[test]
    fn large_ranges_are_searched() {
        let map = ToUnicode::parse(b"1 beginbfrange <0000> <FFFF> <0000> endbfrange");
        assert_eq!(map.get(0x4e2d, 2).as_deref(), Some("\u{4e2d}"));
    }

    #[test]
    fn reads_cid_ranges_and_mixed_code_lengths() {
        let map = CidMap::parse(
            b"2 begincodespacerange <00> <80> <8140> <9ffc> endcodespacerange\n\
              1 begincidrange <8140> <817e> 633 endcidrange 1 begincidchar <20> 1 endcidchar\n\
              /WMode 1 def",
        );
        assert_eq!(map.codespaces.next_code(&[0x20, 0x81]), (0x20, 1));
        assert_eq!(map.codespaces.next_code(&[0x81, 0x41]), (0x8141, 2));
        assert_eq!(map.cid(0x8141, 2), 634);
        assert_eq!(map.cid(0x20, 1), 1);
        assert!(map.vertical);
    }
}
