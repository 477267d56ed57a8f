//! The text being written: collapsed whitespace, line breaks, list markers and cell
//! separators owed until the next character.

/// The text written so far, and what is owed before the next character.
#[derive(Default)]
pub(super) struct Output {
    pub(super) text: String,
    /// Line breaks owed (2: a blank line).
    pub(super) breaks: u8,
    /// A space is owed (collapsed whitespace).
    pub(super) space: bool,
    /// Cell separators owed.
    pub(super) separators: u8,
    /// A list item's marker is owed, with its list depth.
    pub(super) prefix: Option<u16>,
}

impl Output {
    /// A block boundary: `lines` line breaks, or a space inside a table cell.
    pub(super) fn block(&mut self, lines: u8, in_cell: bool) {
        if in_cell {
            self.space = true;
            return;
        }
        if !self.text.is_empty() {
            self.breaks = self.breaks.max(lines);
        }
        self.space = false;
        self.separators = 0;
    }

    /// `<br>`: one more line break (at most a blank line).
    pub(super) fn line_break(&mut self, in_cell: bool) {
        if in_cell {
            self.space = true;
        } else if !self.text.is_empty() {
            self.breaks = (self.breaks + 1).min(2);
            self.space = false;
        }
    }

    pub(super) fn text(&mut self, text: &str) {
        for character in text.chars() {
            if is_space(character) || character == '\u{a0}' {
                self.space = true;
            } else {
                self.flush();
                self.text.push(character);
            }
        }
    }

    pub(super) fn preformatted(&mut self, text: &str) {
        for character in text.chars() {
            self.flush();
            self.text.push(if character == '\u{a0}' {
                ' '
            } else {
                character
            });
        }
    }

    /// Writes what is owed before a character.
    fn flush(&mut self) {
        if self.breaks > 0 {
            if !self.text.is_empty() {
                let trailing = self
                    .text
                    .bytes()
                    .rev()
                    .take(2)
                    .take_while(|&b| b == b'\n')
                    .count();
                for _ in trailing..usize::from(self.breaks) {
                    self.text.push('\n');
                }
            }
            self.breaks = 0;
            self.space = false;
        }
        let at_line_start = self.text.is_empty() || self.text.ends_with('\n');
        if at_line_start {
            self.space = false;
            if let Some(lists) = self.prefix.take() {
                for _ in 1..lists.min(16) {
                    self.text.push_str("  ");
                }
                self.text.push_str("- ");
            }
        }
        for _ in 0..self.separators {
            let line_start = self.text.is_empty() || self.text.ends_with('\n');
            self.text.push_str(if line_start { "| " } else { " | " });
            self.space = false;
        }
        self.separators = 0;
        if self.space {
            self.text.push(' ');
            self.space = false;
        }
    }
}

pub(super) fn collapse_whitespace(text: &str) -> String {
    text.split(|c: char| is_space(c) || c == '\u{a0}')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn is_space(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\n' | '\r' | '\x0c')
}
