//! The readable text of a page, from html5ever's tokenizer and a light tree builder.
//!
//! html5ever's own tree builder follows the standard to the letter, and some of its steps
//! scan the whole stack of open elements: on a page of 100,000 nested `<div>`s that is
//! quadratic. Text extraction needs less: which elements are open (to know what is hidden,
//! preformatted, a list item or a table cell) and where blocks start and end. So the tokens
//! (the standard tokenizer, with its entity decoding and raw-text states) drive a stack
//! kept by the standard's main rules — implied end tags of `p`, `li`, `dd`/`dt`, table parts
//! and headings, scopes, the "any other end tag" rule, foreign content — with every step in
//! constant time (open elements are indexed by name). Where a page is malformed enough for
//! the two to differ (misnested formatting elements, foster parenting), the text is the same
//! or in a slightly different order.

use std::cell::RefCell;
use std::collections::HashMap;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::{LocalName, TokenizerResult};

use super::elements::{
    breaks_out_of_foreign_content, closes_p, hidden_by_attributes, is_boundary, is_dropped,
    is_head_content, is_heading, is_integration_point, is_special, is_void,
};
use super::output::{Output, collapse_whitespace, is_space};

/// How much text is handed to the tokenizer at once.
const CHUNK_BYTES: usize = 1 << 20;

/// The readable text of a decoded page: the title as the first line, then the body.
pub(super) fn readable_text(page: &str) -> String {
    let tokenizer = Tokenizer::new(
        Sink(RefCell::new(Builder::default())),
        TokenizerOpts::default(),
    );
    let queue = BufferQueue::default();
    let mut rest = page;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        queue.push_back(StrTendril::from_slice(chunk));
        rest = tail;
    }
    while !matches!(tokenizer.feed(&queue), TokenizerResult::Done) {}
    tokenizer.end();
    tokenizer.sink.0.into_inner().finish()
}

struct Sink(RefCell<Builder>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().token(token)
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.0.borrow().in_foreign_content()
    }
}

/// One open element.
struct Open {
    name: LocalName,
    /// Its text is not shown (dropped element, hidden element, or inside one).
    hidden: bool,
    /// Whitespace is kept (`<pre>` or inside one).
    pre: bool,
    /// Inside a table cell (the element itself may be the cell).
    cell: bool,
    /// The parent is inside a table cell: the element's own breaks become spaces.
    parent_cell: bool,
    /// Inside a list item.
    list_item: bool,
    /// The nearest list or list item around it (itself included) is an item: a list here is a
    /// level deeper.
    in_item: bool,
    /// How deep it is in nested lists (`ul`, `ol`, `menu`, `dir`), itself included: a list
    /// counts when it is the outermost or inside a list item.
    lists: u16,
    /// An SVG or MathML element.
    foreign: bool,
    /// Where the run of foreign elements it belongs to starts.
    foreign_base: usize,
    /// The `<title>`, whose text is captured.
    title: bool,
}

/// The stack of open elements and the text written so far.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    /// The positions in the stack of the open elements of each name, lowest first.
    positions: HashMap<LocalName, Vec<usize>>,
    /// Positions of open scope boundaries (`table`, `td`, `th`, `caption`, `object`, …).
    boundaries: Vec<usize>,
    /// Positions of open "special" elements (block-level and other structural ones).
    specials: Vec<usize>,
    /// Positions of open tables, with the number of cells of the current row.
    tables: Vec<(usize, usize)>,
    out: Output,
    title: String,
    title_done: bool,
    /// The body has started: a later `<head>` is ignored.
    body_started: bool,
    /// A newline right after `<pre>` or `<listing>` is dropped.
    skip_newline: bool,
}

impl Builder {
    fn token(&mut self, token: Token) -> TokenSinkResult<()> {
        let skip_newline = std::mem::take(&mut self.skip_newline);
        match token {
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => return self.start_tag(tag),
                TagKind::EndTag => self.end_tag(tag),
            },
            Token::CharacterTokens(text) => {
                let text = if skip_newline {
                    text.strip_prefix('\n').unwrap_or(&text)
                } else {
                    &text
                };
                self.characters(text);
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }

    fn in_foreign_content(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|top| top.foreign && !is_integration_point(&top.name))
    }

    fn nearest(&self, name: &str) -> Option<usize> {
        self.positions
            .get(&LocalName::from(name))
            .and_then(|positions| positions.last().copied())
    }

    /// Whether the open element at `position` is in scope: no boundary (nor any of `extra`)
    /// above it.
    fn in_scope(&self, position: usize, extra: &[&str]) -> bool {
        let blocked = |above: Option<usize>| above.is_some_and(|above| above > position);
        !blocked(self.boundaries.last().copied())
            && !extra.iter().any(|name| blocked(self.nearest(name)))
    }

    fn head(&self) -> Option<usize> {
        self.nearest("head")
    }

    fn start_tag(&mut self, tag: Tag) -> TokenSinkResult<()> {
        if self.in_foreign_content() {
            if !breaks_out_of_foreign_content(&tag) {
                if !tag.self_closing {
                    self.push(tag.name, true, false);
                }
                return TokenSinkResult::Continue;
            }
            while self.in_foreign_content() {
                self.pop();
            }
        }
        let name: &str = &tag.name;
        match name {
            "html" => return TokenSinkResult::Continue,
            "body" | "frameset" => {
                if let Some(head) = self.head() {
                    self.pop_to(head);
                }
                self.body_started = true;
                return TokenSinkResult::Continue;
            }
            "head" => {
                if !self.body_started && self.head().is_none() {
                    self.push(tag.name, false, true);
                }
                return TokenSinkResult::Continue;
            }
            _ => {}
        }
        if !is_head_content(name) {
            if let Some(head) = self.head() {
                self.pop_to(head);
            }
            self.body_started = true;
        }
        self.close_implied(name);
        if is_void(name) {
            let hidden = self.hidden();
            match name {
                "br" if !hidden => self.out.line_break(self.in_cell()),
                "hr" if !hidden => self.out.block(2, self.in_cell()),
                _ => {}
            }
            return TokenSinkResult::Continue;
        }
        let hidden = is_dropped(name) || hidden_by_attributes(&tag);
        let result = match name {
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => TokenSinkResult::Plaintext,
            "pre" | "listing" => {
                self.skip_newline = true;
                TokenSinkResult::Continue
            }
            _ => TokenSinkResult::Continue,
        };
        let foreign = matches!(name, "svg" | "math");
        self.push(tag.name, foreign, hidden);
        result
    }

    /// The end tags the standard implies before a start tag.
    fn close_implied(&mut self, name: &str) {
        if closes_p(name)
            && let Some(p) = self.nearest("p")
            && self.in_scope(p, &["button"])
        {
            self.pop_to(p);
        }
        match name {
            "li" => {
                if let Some(li) = self.nearest("li")
                    && self.in_scope(li, &["ul", "ol"])
                {
                    self.pop_to(li);
                }
            }
            "dd" | "dt" => {
                let item = self.nearest("dd").max(self.nearest("dt"));
                if let Some(item) = item
                    && self.in_scope(item, &["dl"])
                {
                    self.pop_to(item);
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                if self.stack.last().is_some_and(|top| is_heading(&top.name)) =>
            {
                self.pop();
            }
            "tr" => self.close_table_parts(&["td", "th", "tr"]),
            "td" | "th" => self.close_table_parts(&["td", "th"]),
            "tbody" | "thead" | "tfoot" | "caption" | "colgroup" => self.close_table_parts(&[
                "td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup",
            ]),
            "table" => {
                // A table directly in a table (not in a cell) closes the first one.
                if let Some(&(table, _)) = self.tables.last() {
                    let cell = self.nearest("td").max(self.nearest("th"));
                    if cell.is_none_or(|cell| cell < table) {
                        self.pop_to(table);
                    }
                }
            }
            "option" | "optgroup" => {
                if self.stack.last().is_some_and(|top| &*top.name == "option") {
                    self.pop();
                }
                if name == "optgroup"
                    && self
                        .stack
                        .last()
                        .is_some_and(|top| &*top.name == "optgroup")
                {
                    self.pop();
                }
            }
            "a" | "button" | "nobr" => {
                if let Some(open) = self.nearest(name)
                    && self.in_scope(open, &[])
                    && self.specials.last().is_none_or(|&special| special < open)
                {
                    self.pop_to(open);
                }
            }
            _ => {}
        }
    }

    /// Closes the innermost of `names` open inside the innermost table (and what is above).
    fn close_table_parts(&mut self, names: &[&str]) {
        let Some(&(table, _)) = self.tables.last() else {
            return;
        };
        let lowest = names
            .iter()
            .filter_map(|name| {
                let positions = self.positions.get(&LocalName::from(*name))?;
                let first_above = positions.partition_point(|&position| position <= table);
                positions.get(first_above).copied()
            })
            .min();
        if let Some(lowest) = lowest {
            self.pop_to(lowest);
        }
    }

    fn end_tag(&mut self, tag: Tag) {
        let name: &str = &tag.name;
        if self.in_foreign_content() {
            let base = self.stack.last().map_or(0, |top| top.foreign_base);
            if let Some(open) = self.nearest(name)
                && open >= base
            {
                self.pop_to(open);
                return;
            }
        }
        match name {
            "br" => {
                if !self.hidden() {
                    self.out.line_break(self.in_cell());
                }
            }
            "p" => match self.nearest("p") {
                Some(p) if self.in_scope(p, &["button"]) => self.pop_to(p),
                _ => {
                    if !self.hidden() {
                        self.out.block(2, self.in_cell());
                    }
                }
            },
            "html" | "body" => {}
            "li" => self.close_in_scope(name, &["ul", "ol"]),
            "dd" | "dt" => self.close_in_scope(name, &[]),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let heading = ["h1", "h2", "h3", "h4", "h5", "h6"]
                    .iter()
                    .filter_map(|heading| self.nearest(heading))
                    .max();
                if let Some(heading) = heading
                    && self.in_scope(heading, &[])
                {
                    self.pop_to(heading);
                }
            }
            "table" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption" => {
                // Table scope: only an inner table or a template stops it.
                if let Some(open) = self.nearest(name)
                    && self.tables.last().is_none_or(|&(table, _)| table <= open)
                    && self
                        .nearest("template")
                        .is_none_or(|template| template <= open)
                {
                    self.pop_to(open);
                }
            }
            _ if is_special(name) => self.close_in_scope(name, &[]),
            _ => {
                // The standard's "any other end tag": close it unless a special element is
                // open above it.
                if let Some(open) = self.nearest(name)
                    && self.specials.last().is_none_or(|&special| special <= open)
                {
                    self.pop_to(open);
                }
            }
        }
    }

    fn close_in_scope(&mut self, name: &str, extra: &[&str]) {
        if let Some(open) = self.nearest(name)
            && self.in_scope(open, extra)
        {
            self.pop_to(open);
        }
    }

    fn hidden(&self) -> bool {
        self.stack.last().is_some_and(|top| top.hidden)
    }

    fn in_cell(&self) -> bool {
        self.stack.last().is_some_and(|top| top.cell)
    }

    fn characters(&mut self, text: &str) {
        if let Some(head) = self.head()
            && self.stack.len() == head + 1
            && !text.chars().all(is_space)
        {
            // Text in the head ends it, as in browsers.
            self.pop_to(head);
            self.body_started = true;
        }
        let Some(top) = self.stack.last() else {
            if !text.chars().all(is_space) {
                self.body_started = true;
            }
            self.out.text(text);
            return;
        };
        match (top.title, top.hidden, top.pre) {
            (true, _, _) => {
                if !self.title_done {
                    self.title.push_str(text);
                }
            }
            (false, true, _) => {}
            (false, false, true) => self.out.preformatted(text),
            (false, false, false) => self.out.text(text),
        }
    }

    fn push(&mut self, name: LocalName, foreign: bool, hidden: bool) {
        let position = self.stack.len();
        let parent = self.stack.last();
        let html = !foreign;
        let tag: &str = &name;
        let is_cell = html && matches!(tag, "td" | "th");
        let is_list = html && matches!(tag, "ul" | "ol" | "menu" | "dir");
        let is_title = html && tag == "title";
        // Scopes end at integration points too.
        let boundary = (html && is_boundary(tag)) || (foreign && is_integration_point(tag));
        let special = html && is_special(tag);
        let table = html && tag == "table";
        let open = Open {
            hidden: hidden || parent.is_some_and(|parent| parent.hidden) || is_title,
            pre: parent.is_some_and(|parent| parent.pre)
                || (html && matches!(tag, "pre" | "listing" | "plaintext" | "xmp")),
            cell: is_cell || parent.is_some_and(|parent| parent.cell),
            parent_cell: parent.is_some_and(|parent| parent.cell),
            list_item: (html && tag == "li") || parent.is_some_and(|parent| parent.list_item),
            in_item: (html && tag == "li")
                || (!is_list && parent.is_some_and(|parent| parent.in_item)),
            // A list nests only inside a list item (or as the outermost list): a list placed
            // straight in another list, as tag soup does, is not a level deeper, even when an
            // item holds the outer one.
            lists: parent
                .map_or(0, |parent| parent.lists)
                .saturating_add(u16::from(
                    is_list && parent.is_none_or(|parent| parent.lists == 0 || parent.in_item),
                )),
            foreign,
            foreign_base: match parent {
                Some(parent) if parent.foreign && foreign => parent.foreign_base,
                _ => position,
            },
            title: is_title,
            name,
        };
        self.positions
            .entry(open.name.clone())
            .or_default()
            .push(position);
        if boundary {
            self.boundaries.push(position);
        }
        if special {
            self.specials.push(position);
        }
        if table {
            self.tables.push((position, 0));
        }
        if html && !open.hidden {
            self.block_start(&open);
        }
        self.stack.push(open);
    }

    fn pop(&mut self) {
        let Some(open) = self.stack.pop() else {
            return;
        };
        let position = self.stack.len();
        if let Some(positions) = self.positions.get_mut(&open.name) {
            positions.pop();
        }
        for marks in [&mut self.boundaries, &mut self.specials] {
            if marks.last() == Some(&position) {
                marks.pop();
            }
        }
        if self
            .tables
            .last()
            .is_some_and(|&(table, _)| table == position)
        {
            self.tables.pop();
        }
        if open.title {
            self.title_done = true;
        }
        if !open.foreign && !open.hidden {
            self.block_end(&open);
        }
    }

    /// Closes the element at `position` and everything above it.
    fn pop_to(&mut self, position: usize) {
        while self.stack.len() > position {
            self.pop();
        }
    }

    fn block_start(&mut self, open: &Open) {
        let in_cell = open.parent_cell;
        match &*open.name {
            "li" => {
                self.out.block(1, in_cell);
                if !in_cell {
                    self.out.prefix = Some(open.lists);
                }
            }
            "tr" => {
                self.out.block(1, in_cell);
                if let Some((_, cells)) = self.tables.last_mut() {
                    *cells = 0;
                }
            }
            "td" | "th" => {
                if let Some((_, cells)) = self.tables.last_mut() {
                    if *cells > 0 {
                        self.out.separators += 1;
                    }
                    *cells += 1;
                }
            }
            name => {
                if let Some(lines) = block_lines(name, open) {
                    self.out.block(lines, in_cell);
                }
            }
        }
    }

    fn block_end(&mut self, open: &Open) {
        let in_cell = open.parent_cell;
        match &*open.name {
            "li" => {
                self.out.block(1, in_cell);
                self.out.prefix = None;
            }
            "tr" => self.out.block(1, in_cell),
            "td" | "th" => {}
            name => {
                if let Some(lines) = block_lines(name, open) {
                    self.out.block(lines, in_cell);
                }
            }
        }
    }

    fn finish(mut self) -> String {
        self.pop_to(0);
        let title = collapse_whitespace(&self.title);
        let body = self.out.text.trim_end();
        let body = body.trim_start_matches('\n');
        if title.is_empty() {
            body.to_owned()
        } else if body.is_empty() {
            title
        } else if body.lines().next() == Some(title.as_str()) {
            body.to_owned()
        } else {
            format!("{title}\n\n{body}")
        }
    }
}

/// The line breaks around a block element (2: a blank line), `None` for inline elements.
fn block_lines(name: &str, open: &Open) -> Option<u8> {
    let lines = match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "pre" | "listing"
        | "xmp" | "plaintext" | "table" | "figure" | "address" | "fieldset" | "details" => 2,
        "ul" | "ol" | "dl" | "menu" | "dir" => {
            if open.list_item {
                1
            } else {
                2
            }
        }
        "div" | "section" | "article" | "main" | "header" | "footer" | "aside" | "nav" | "body"
        | "center" | "caption" | "dd" | "dt" | "dialog" | "figcaption" | "form" | "hgroup"
        | "legend" | "search" | "summary" | "option" | "optgroup" | "tbody" | "thead" | "tfoot"
        | "noscript" | "frameset" | "noframes" => 1,
        _ => return None,
    };
    Some(if open.list_item { lines.min(1) } else { lines })
}
