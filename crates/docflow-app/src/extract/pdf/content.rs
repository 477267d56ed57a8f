//! Reading content streams: the operands and operators that draw a page.
//!
//! Written for damaged and hostile input rather than with a strict grammar: a token that makes
//! no sense is skipped and reading goes on, so one bad byte never loses the rest of a page.
//! Inline images (`BI … ID … EI`) are stepped over without reading their data as operators.

/// One operand of an operator.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    /// An integer or real number.
    Number(f64),
    /// A name, without its slash, escapes (`#20`) resolved.
    Name(Vec<u8>),
    /// A literal or hexadecimal string, escapes resolved.
    Str(Vec<u8>),
    /// An array.
    Array(Vec<Operand>),
    /// A dictionary (marked-content properties, inline image parameters).
    Dict(Vec<(Vec<u8>, Operand)>),
    /// `true`, `false`, `null` and anything else that is not an operator.
    Other,
}

impl Operand {
    /// The number, if this is one.
    pub(super) fn number(&self) -> Option<f64> {
        match self {
            Operand::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// One operator with its operands.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Operation {
    /// The operator's name (`Tj`, `cm`, …).
    pub(super) operator: Vec<u8>,
    /// Its operands, in order.
    pub(super) operands: Vec<Operand>,
}

/// Operands kept for one content-stream operator at most: no operator takes more, and a
/// stream of numbers without an operator must not grow without bound.
const MAX_OPERANDS: usize = 64;

/// Operands kept for one CMap operator at most (`endbfchar` carries all its entries).
pub(super) const MAX_CMAP_OPERANDS: usize = 1 << 16;

/// Nesting of arrays and dictionaries followed at most (the rest is skipped).
const MAX_DEPTH: usize = 32;

/// The operations of a content stream, one at a time.
pub(super) struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
    max_operands: usize,
}

impl<'a> Lexer<'a> {
    /// A reader of `data`, from its start.
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self::with_max_operands(data, MAX_OPERANDS)
    }

    /// A reader of `data` that keeps up to `max_operands` operands per operator (the oldest
    /// are dropped past it).
    pub(super) fn with_max_operands(data: &'a [u8], max_operands: usize) -> Self {
        Self {
            data,
            pos: 0,
            max_operands: max_operands.max(1),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(byte) = self.peek() {
            if is_whitespace(byte) {
                self.pos += 1;
            } else if byte == b'%' {
                while let Some(byte) = self.peek() {
                    if byte == b'\n' || byte == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next object, or `Err(keyword)` for a bare keyword (an operator), or `None` at the
    /// end.
    fn next_token(&mut self, depth: usize) -> Option<Result<Operand, &'a [u8]>> {
        self.skip_whitespace();
        let byte = self.peek()?;
        Some(match byte {
            b'/' => {
                self.pos += 1;
                Ok(Operand::Name(self.name()))
            }
            b'(' => {
                self.pos += 1;
                Ok(Operand::Str(self.literal_string()))
            }
            b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                Ok(self.dictionary(depth))
            }
            b'<' => {
                self.pos += 1;
                Ok(Operand::Str(self.hex_string()))
            }
            b'[' => {
                self.pos += 1;
                Ok(self.array(depth))
            }
            b']' | b'>' | b')' | b'{' | b'}' => {
                // A closing delimiter out of place: step over it.
                self.pos += 1;
                if byte == b'>' && self.peek() == Some(b'>') {
                    self.pos += 1;
                }
                Ok(Operand::Other)
            }
            _ => {
                let start = self.pos;
                while let Some(byte) = self.peek() {
                    if is_whitespace(byte) || is_delimiter(byte) {
                        break;
                    }
                    self.pos += 1;
                }
                let word = &self.data[start..self.pos];
                match parse_number(word) {
                    Some(number) => Ok(Operand::Number(number)),
                    None if matches!(word, b"true" | b"false" | b"null") => Ok(Operand::Other),
                    None => Err(word),
                }
            }
        })
    }

    fn name(&mut self) -> Vec<u8> {
        let mut name = Vec::new();
        while let Some(byte) = self.peek() {
            if is_whitespace(byte) || is_delimiter(byte) {
                break;
            }
            self.pos += 1;
            if byte == b'#'
                && let Some(value) = self
                    .data
                    .get(self.pos..self.pos + 2)
                    .and_then(|hex| Some(hex_value(hex[0])? * 16 + hex_value(hex[1])?))
            {
                name.push(value);
                self.pos += 2;
                continue;
            }
            name.push(byte);
        }
        name
    }

    fn literal_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut nesting = 0usize;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match byte {
                b'(' => {
                    nesting += 1;
                    out.push(byte);
                }
                b')' if nesting == 0 => break,
                b')' => {
                    nesting -= 1;
                    out.push(byte);
                }
                b'\\' => {
                    let Some(escaped) = self.peek() else { break };
                    self.pos += 1;
                    match escaped {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut value = u32::from(escaped - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(digit @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(digit - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((value & 0xff) as u8);
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(byte),
            }
        }
        out
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            if byte == b'>' {
                break;
            }
            let Some(value) = hex_value(byte) else {
                continue;
            };
            match high.take() {
                Some(high) => out.push(high * 16 + value),
                None => high = Some(value),
            }
        }
        if let Some(high) = high {
            out.push(high * 16);
        }
        out
    }

    fn array(&mut self, depth: usize) -> Operand {
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => break,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            if depth >= MAX_DEPTH {
                self.pos += 1;
                continue;
            }
            match self.next_token(depth + 1) {
                Some(Ok(item)) => items.push(item),
                // A keyword inside an array is not PDF: keep reading the array.
                Some(Err(_)) => {}
                None => break,
            }
        }
        Operand::Array(items)
    }

    fn dictionary(&mut self, depth: usize) -> Operand {
        let mut entries = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => break,
                Some(b'>') => {
                    self.pos += 1;
                    if self.peek() == Some(b'>') {
                        self.pos += 1;
                    }
                    break;
                }
                _ => {}
            }
            if depth >= MAX_DEPTH {
                self.pos += 1;
                continue;
            }
            match self.next_token(depth + 1) {
                Some(Ok(Operand::Name(name))) if key.is_none() => key = Some(name),
                Some(Ok(value)) => {
                    if let Some(key) = key.take() {
                        entries.push((key, value));
                    }
                }
                Some(Err(_)) => key = None,
                None => break,
            }
        }
        Operand::Dict(entries)
    }

    /// Steps over an inline image's parameters and data, up to and including `EI`.
    fn skip_inline_image(&mut self) {
        let mut length: Option<usize> = None;
        let mut key: Option<Vec<u8>> = None;
        // The parameters, up to `ID`.
        loop {
            match self.next_token(0) {
                None => return,
                Some(Err(b"ID")) => break,
                Some(Err(_)) => return,
                Some(Ok(Operand::Name(name))) if key.is_none() => key = Some(name),
                Some(Ok(value)) => {
                    if matches!(key.take().as_deref(), Some(b"L" | b"Length")) {
                        length = value.number().filter(|n| *n >= 0.0).map(|n| n as usize);
                    }
                }
            }
        }
        // One whitespace byte separates `ID` from the data.
        if self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        if let Some(length) = length {
            let end = self.pos.saturating_add(length);
            if self.ends_image_at(end) {
                self.pos = end;
                self.skip_whitespace();
                self.pos = (self.pos + 2).min(self.data.len());
                return;
            }
        }
        // Without a (right) length: the first `EI` standing alone.
        while self.pos < self.data.len() {
            if self.ends_image_at(self.pos)
                && self.pos > 0
                && is_whitespace(self.data[self.pos - 1])
            {
                self.skip_whitespace();
                self.pos = (self.pos + 2).min(self.data.len());
                return;
            }
            self.pos += 1;
        }
    }

    /// Whether `EI` (after optional whitespace) starts at `at`, followed by whitespace, a
    /// delimiter or the end.
    fn ends_image_at(&self, at: usize) -> bool {
        let mut at = at;
        while self.data.get(at).is_some_and(|b| is_whitespace(*b)) {
            at += 1;
        }
        self.data.get(at..at + 2) == Some(b"EI")
            && self
                .data
                .get(at + 2)
                .is_none_or(|b| is_whitespace(*b) || is_delimiter(*b))
    }
}

impl Iterator for Lexer<'_> {
    type Item = Operation;

    fn next(&mut self) -> Option<Operation> {
        let mut operands = Vec::new();
        loop {
            match self.next_token(0)? {
                Ok(operand) => {
                    if operands.len() == self.max_operands {
                        operands.remove(0);
                    }
                    operands.push(operand);
                }
                Err(b"BI") => {
                    self.skip_inline_image();
                    operands.clear();
                }
                Err(keyword) => {
                    return Some(Operation {
                        operator: keyword.to_vec(),
                        operands,
                    });
                }
            }
        }
    }
}

/// PDF whitespace.
pub(super) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

/// PDF delimiters.
pub(super) fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// The value of a hexadecimal digit.
pub(super) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A PDF number (`12`, `-3.5`, `.5`, `4.`), leniently: `--2` and `1.2.3` as readers take them.
fn parse_number(word: &[u8]) -> Option<f64> {
    let first = *word.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let mut digits = word;
    let mut negative = false;
    while let Some((&sign, rest)) = digits.split_first() {
        match sign {
            b'-' => negative = !negative,
            b'+' => {}
            _ => break,
        }
        digits = rest;
    }
    let mut value = 0f64;
    let mut scale = 0f64;
    let mut any = false;
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                any = true;
                if scale == 0.0 {
                    value = value * 10.0 + f64::from(byte - b'0');
                } else {
                    value += f64::from(byte - b'0') * scale;
                    scale /= 10.0;
                }
            }
            b'.' if scale == 0.0 => scale = 0.1,
            b'.' => {}
            _ => return None,
        }
    }
    if !any {
        return if digits.iter().all(|b| *b == b'.') && !digits.is_empty() {
            Some(0.0)
        } else {
            None
        };
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: &[u8]) -> Vec<Operation> {
        Lexer::new(data).collect()
    }

    #[test]
    fn reads_operators_with_their_operands() {
        let got = ops(b"BT /F1 12 Tf 72 700 Td (Hello \\(world\\)) Tj [(A) -250 (B)] TJ ET");
        let names: Vec<&[u8]> = got.iter().map(|op| op.operator.as_slice()).collect();
        assert_eq!(names, [&b"BT"[..], b"Tf", b"Td", b"Tj", b"TJ", b"ET"]);
        assert_eq!(
            got[1].operands,
            [Operand::Name(b"F1".to_vec()), Operand::Number(12.0)]
        );
        assert_eq!(got[3].operands, [Operand::Str(b"Hello (world)".to_vec())]);
        assert_eq!(
            got[4].operands,
            [Operand::Array(vec![
                Operand::Str(b"A".to_vec()),
                Operand::Number(-250.0),
                Operand::Str(b"B".to_vec())
            ])]
        );
    }

    #[test]
    fn decodes_string_escapes_and_hex_strings() {
        let got = ops(b"(a\\101\\nb\\\nc) Tj <48 65 6c6C 6> Tj");
        assert_eq!(got[0].operands, [Operand::Str(b"aA\nbc".to_vec())]);
        assert_eq!(got[1].operands, [Operand::Str(b"Hell`".to_vec())]);
    }

    #[test]
    fn steps_over_inline_images() {
        let got = ops(b"q BI /W 2 /H 2 /BPC 8 /CS /G ID \x00Tj\xffEI Q ID\n EI Q (x) Tj");
        let names: Vec<&[u8]> = got.iter().map(|op| op.operator.as_slice()).collect();
        assert_eq!(names, [&b"q"[..], b"Q", b"Tj"]);
    }

    #[test]
    fn survives_garbage() {
        let got = ops(b"] >> ) 1 2 3 Td <<< [[[ (unterminated");
        assert_eq!(got[0].operator, b"Td");
        assert_eq!(got[0].operands.len(), 6);
        assert_eq!(parse_number(b"--2"), Some(2.0));
        assert_eq!(parse_number(b"-.5"), Some(-0.5));
        assert_eq!(parse_number(b"abc"), None);
    }
}
