//! The reading of one XML part: paragraphs, runs, tables and what is skipped.

use quick_xml::events::BytesStart;

use super::{Story, attribute};

/// One paragraph being read.
#[derive(Default)]
struct Paragraph {
    text: String,
    /// Whether it is a numbered or bulleted list item.
    numbered: bool,
    /// Its list level (0 for the outermost).
    level: u8,
}

/// One table being read.
#[derive(Default)]
struct Table {
    rows: Vec<String>,
    row: Option<Vec<String>>,
    cell: Option<Vec<String>>,
}

/// A finished piece of the part's text.
enum Block {
    Paragraph(String),
    Table(String),
}

/// The state of a part's reading: open paragraphs and tables, and the subtree skipped.
#[derive(Default)]
pub(super) struct Walker {
    blocks: Vec<Block>,
    /// Open paragraphs: more than one when a text box's paragraphs sit inside a paragraph.
    paragraphs: Vec<Paragraph>,
    tables: Vec<Table>,
    /// Depth inside a skipped element (deleted text, fallback content, separator note, …).
    skip: usize,
    /// Depth inside `w:t` (or `m:t`).
    text: usize,
    /// Depth inside runs: `w:tab` and `w:br` count only there.
    runs: usize,
    /// For each open `w:sdt`: whether it shows placeholder text.
    placeholders: Vec<bool>,
}

impl Walker {
    pub(super) fn in_text(&self) -> bool {
        self.skip == 0 && self.text > 0
    }

    pub(super) fn start(&mut self, element: &BytesStart<'_>, story: Story) {
        if self.skip > 0 {
            self.skip += 1;
            return;
        }
        let name = element.local_name();
        match name.as_ref() {
            // Deleted or moved-away text, the second copy of alternate content, revisions of
            // properties.
            b"del" | b"moveFrom" | b"Fallback" | b"pPrChange" | b"rPrChange" => self.skip = 1,
            b"footnote" | b"endnote" if story == Story::Notes => {
                let separator = attribute(element, b"type").is_some_and(|kind| {
                    matches!(
                        kind.as_slice(),
                        b"separator" | b"continuationSeparator" | b"continuationNotice"
                    )
                });
                if separator {
                    self.skip = 1;
                }
            }
            b"sdt" => self.placeholders.push(false),
            b"sdtContent" if self.placeholders.last() == Some(&true) => self.skip = 1,
            b"p" => self.paragraphs.push(Paragraph::default()),
            b"r" => self.runs += 1,
            b"t" => self.text += 1,
            b"tbl" => self.tables.push(Table::default()),
            b"tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.row = Some(Vec::new());
                }
            }
            b"tc" => {
                if let Some(table) = self.tables.last_mut() {
                    table.cell = Some(Vec::new());
                }
            }
            _ => self.empty(element),
        }
    }

    /// An element without content (or the start of one whose content does not matter).
    pub(super) fn empty(&mut self, element: &BytesStart<'_>) {
        if self.skip > 0 {
            return;
        }
        let in_run = self.runs > 0;
        match element.local_name().as_ref() {
            b"tab" | b"ptab" if in_run => self.push_text("\t"),
            b"br" | b"cr" if in_run => self.push_text("\n"),
            b"noBreakHyphen" if in_run => self.push_text("-"),
            b"showingPlcHdr" => {
                if let Some(placeholder) = self.placeholders.last_mut() {
                    *placeholder = true;
                }
            }
            b"numId" => {
                let numbered = attribute(element, b"val").is_some_and(|value| value != b"0");
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.numbered = numbered;
                }
            }
            b"ilvl" => {
                let level = attribute(element, b"val")
                    .and_then(|value| std::str::from_utf8(&value).ok()?.trim().parse::<u8>().ok())
                    .unwrap_or(0)
                    .min(8);
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.level = level;
                }
            }
            _ => {}
        }
    }

    pub(super) fn end(&mut self, name: &[u8]) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        match name {
            b"sdt" => {
                self.placeholders.pop();
            }
            b"p" => self.end_paragraph(),
            b"r" => self.runs = self.runs.saturating_sub(1),
            b"t" => self.text = self.text.saturating_sub(1),
            b"tc" => {
                if let Some(table) = self.tables.last_mut()
                    && let Some(cell) = table.cell.take()
                {
                    let text = cell.join(" ");
                    table.row.get_or_insert_with(Vec::new).push(text);
                }
            }
            b"tr" => {
                if let Some(table) = self.tables.last_mut()
                    && let Some(row) = table.row.take()
                    && row.iter().any(|cell| !cell.is_empty())
                {
                    table.rows.push(row.join(" | "));
                }
            }
            b"tbl" => {
                if let Some(table) = self.tables.pop()
                    && !table.rows.is_empty()
                {
                    let text = table.rows.join("\n");
                    self.push_block(Block::Table(text));
                }
            }
            _ => {}
        }
    }

    pub(super) fn push_text(&mut self, text: &str) {
        if self.paragraphs.is_empty() {
            self.paragraphs.push(Paragraph::default());
        }
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn end_paragraph(&mut self) {
        let Some(paragraph) = self.paragraphs.pop() else {
            return;
        };
        let text = paragraph.text.trim();
        if text.is_empty() {
            return;
        }
        let text = if paragraph.numbered {
            format!("{}- {text}", "  ".repeat(usize::from(paragraph.level)))
        } else {
            text.to_owned()
        };
        self.push_block(Block::Paragraph(text));
    }

    /// A finished paragraph or table goes into the open cell, else into the part's text.
    fn push_block(&mut self, block: Block) {
        if let Some(cell) = self.tables.last_mut().and_then(|table| table.cell.as_mut()) {
            let text = match block {
                Block::Paragraph(text) | Block::Table(text) => text,
            };
            cell.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        } else {
            self.blocks.push(block);
        }
    }

    pub(super) fn finish(mut self) -> String {
        while !self.paragraphs.is_empty() {
            self.end_paragraph();
        }
        while let Some(table) = self.tables.pop() {
            let mut rows = table.rows;
            if let Some(row) = table.row {
                rows.push(row.join(" | "));
            }
            if !rows.is_empty() {
                self.push_block(Block::Table(rows.join("\n")));
            }
        }
        let mut text = String::new();
        let mut previous_was_table = false;
        for (index, block) in self.blocks.iter().enumerate() {
            let (block_text, is_table) = match block {
                Block::Paragraph(text) => (text, false),
                Block::Table(text) => (text, true),
            };
            if index > 0 {
                text.push_str(if is_table || previous_was_table {
                    "\n\n"
                } else {
                    "\n"
                });
            }
            text.push_str(block_text);
            previous_was_table = is_table;
        }
        text
    }
}
