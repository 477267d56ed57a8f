//! Running a page's content streams to find where each character is drawn.
//!
//! Only what places text is followed: the transformation matrix (`cm`, `q`, `Q`), the text
//! state (`Tf`, `Tc`, `Tw`, `Tz`, `TL`, `Ts`), text positioning (`Td`, `TD`, `Tm`, `T*`) and
//! showing (`Tj`, `TJ`, `'`, `"`), form XObjects (`Do`) and annotation appearances. Every
//! glyph becomes a [`TextChar`] at its place in default user space.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::annotations;
use super::content::{Lexer, Operand};
use super::font::Font;
use super::objects::{as_dict, get_dict, get_name, get_numbers, object, resolve, stream_data};
use crate::extract::{ExtractError, check_deadline};

/// A transformation matrix `[a b c d e f]`.
pub(super) type Matrix = [f64; 6];

/// The identity.
pub(super) const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `m1 × m2` (first `m1`, then `m2`).
pub(super) fn multiply(m1: &Matrix, m2: &Matrix) -> Matrix {
    [
        m1[0] * m2[0] + m1[1] * m2[2],
        m1[0] * m2[1] + m1[1] * m2[3],
        m1[2] * m2[0] + m1[3] * m2[2],
        m1[2] * m2[1] + m1[3] * m2[3],
        m1[4] * m2[0] + m1[5] * m2[2] + m2[4],
        m1[4] * m2[1] + m1[5] * m2[3] + m2[5],
    ]
}

/// A point through a matrix.
pub(super) fn apply(m: &Matrix, x: f64, y: f64) -> (f64, f64) {
    (x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5])
}

/// One character drawn on a page, in default user space (y grows upwards).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TextChar {
    /// Its text (usually one character; a ligature gives several; empty when unknown).
    pub(super) text: String,
    /// Where its glyph starts, on the baseline.
    pub(super) x: f64,
    /// Where its glyph starts, on the baseline.
    pub(super) y: f64,
    /// Its advance (the glyph's width, without character or word spacing).
    pub(super) dx: f64,
    /// Its advance.
    pub(super) dy: f64,
    /// The font size as drawn (text and user space scaling included).
    pub(super) size: f64,
    /// The direction of its baseline: 0 rightwards, 1 upwards, 2 leftwards, 3 downwards.
    pub(super) dir: u8,
}

/// Operators run between two looks at the clock.
const OPERATORS_PER_DEADLINE_CHECK: usize = 512;

/// Form XObjects nested at most.
const MAX_FORM_DEPTH: usize = 12;

/// `q` nested at most (deeper saves are ignored, as their `Q` will be).
const MAX_SAVED_STATES: usize = 4096;

/// Characters kept for one page at most.
pub(super) const MAX_CHARS_PER_PAGE: usize = 1_000_000;

/// The graphics and text state that `q` and `Q` save and restore.
#[derive(Clone)]
struct State {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f64,
    char_spacing: f64,
    word_spacing: f64,
    horizontal_scaling: f64,
    leading: f64,
    rise: f64,
}

impl State {
    fn new(ctm: Matrix) -> Self {
        Self {
            ctm,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            horizontal_scaling: 1.0,
            leading: 0.0,
            rise: 0.0,
        }
    }
}

/// Fonts read so far, shared by the pages of a document.
#[derive(Default)]
pub(super) struct FontCache {
    by_id: HashMap<ObjectId, Rc<Font>>,
}

impl FontCache {
    fn get(&mut self, doc: &Document, font: &Object) -> Option<Rc<Font>> {
        if let Object::Reference(id) = font {
            if let Some(found) = self.by_id.get(id) {
                return Some(found.clone());
            }
            let loaded = Rc::new(Font::load(doc, as_dict(object(doc, *id)?)?));
            self.by_id.insert(*id, loaded.clone());
            return Some(loaded);
        }
        Some(Rc::new(Font::load(doc, as_dict(font)?)))
    }
}

/// Runs content streams and collects their characters.
pub(super) struct Interpreter<'a> {
    /// The document whose pages it runs.
    pub(super) doc: &'a Document,
    fonts: &'a mut FontCache,
    /// When to give up.
    pub(super) deadline: Instant,
    operators: usize,
    /// The characters found, in drawing order.
    pub(super) chars: Vec<TextChar>,
    /// Forms being run (a form that draws itself is not followed).
    forms: Vec<ObjectId>,
}

impl<'a> Interpreter<'a> {
    /// An interpreter for pages of `doc`.
    pub(super) fn new(doc: &'a Document, fonts: &'a mut FontCache, deadline: Instant) -> Self {
        Self {
            doc,
            fonts,
            deadline,
            operators: 0,
            chars: Vec::new(),
            forms: Vec::new(),
        }
    }

    /// Runs `content` with `resources`, starting from `ctm`.
    pub(super) fn run(
        &mut self,
        content: &[u8],
        resources: Option<&'a Dictionary>,
        ctm: Matrix,
    ) -> Result<(), ExtractError> {
        let mut state = State::new(ctm);
        let mut saved: Vec<State> = Vec::new();
        let mut text_matrix = IDENTITY;
        let mut line_matrix = IDENTITY;
        for op in Lexer::new(content) {
            self.operators += 1;
            if self.operators.is_multiple_of(OPERATORS_PER_DEADLINE_CHECK) {
                check_deadline(self.deadline)?;
            }
            let numbers: Vec<f64> = op.operands.iter().filter_map(Operand::number).collect();
            match op.operator.as_slice() {
                b"q" if saved.len() < MAX_SAVED_STATES => saved.push(state.clone()),
                b"Q" => {
                    if let Some(previous) = saved.pop() {
                        state = previous;
                    }
                }
                b"cm" => {
                    if let Some(m) = matrix(&numbers) {
                        state.ctm = multiply(&m, &state.ctm);
                    }
                }
                b"BT" => {
                    text_matrix = IDENTITY;
                    line_matrix = IDENTITY;
                }
                b"Tf" => {
                    if let (Some(Operand::Name(name)), Some(size)) = (
                        op.operands.first(),
                        op.operands.get(1).and_then(Operand::number),
                    ) {
                        state.font = self.font(resources, name);
                        state.size = size;
                    }
                }
                b"Tc" => set(&mut state.char_spacing, &numbers),
                b"Tw" => set(&mut state.word_spacing, &numbers),
                b"Tz" => {
                    if let Some(percent) = numbers.last() {
                        state.horizontal_scaling = percent / 100.0;
                    }
                }
                b"TL" => set(&mut state.leading, &numbers),
                b"Ts" => set(&mut state.rise, &numbers),
                b"Td" | b"TD" => {
                    if let [.., tx, ty] = numbers.as_slice() {
                        if op.operator == b"TD" {
                            state.leading = -ty;
                        }
                        line_matrix = multiply(&[1.0, 0.0, 0.0, 1.0, *tx, *ty], &line_matrix);
                        text_matrix = line_matrix;
                    }
                }
                b"Tm" => {
                    if let Some(m) = matrix(&numbers) {
                        line_matrix = m;
                        text_matrix = m;
                    }
                }
                b"T*" => {
                    next_line(&state, &mut line_matrix, &mut text_matrix);
                }
                b"Tj" => {
                    if let Some(Operand::Str(bytes)) = op.operands.last() {
                        self.show(&state, &mut text_matrix, bytes);
                    }
                }
                b"'" => {
                    next_line(&state, &mut line_matrix, &mut text_matrix);
                    if let Some(Operand::Str(bytes)) = op.operands.last() {
                        self.show(&state, &mut text_matrix, bytes);
                    }
                }
                b"\"" => {
                    if let [word_spacing, char_spacing, ..] = numbers.as_slice() {
                        state.word_spacing = *word_spacing;
                        state.char_spacing = *char_spacing;
                    }
                    next_line(&state, &mut line_matrix, &mut text_matrix);
                    if let Some(Operand::Str(bytes)) = op.operands.last() {
                        self.show(&state, &mut text_matrix, bytes);
                    }
                }
                b"TJ" => {
                    if let Some(Operand::Array(items)) = op.operands.last() {
                        for item in items {
                            match item {
                                Operand::Str(bytes) => {
                                    self.show(&state, &mut text_matrix, bytes);
                                }
                                Operand::Number(adjust) => {
                                    adjust_position(&state, &mut text_matrix, *adjust);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                b"Do" => {
                    if let Some(Operand::Name(name)) = op.operands.last() {
                        self.form(resources, name, &state.ctm)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn font(&mut self, resources: Option<&Dictionary>, name: &[u8]) -> Option<Rc<Font>> {
        let fonts = get_dict(self.doc, resources?, b"Font")?;
        let font = fonts.get(name).ok()?;
        self.fonts.get(self.doc, font)
    }

    /// Runs the form XObject `name` of `resources`.
    fn form(
        &mut self,
        resources: Option<&'a Dictionary>,
        name: &[u8],
        ctm: &Matrix,
    ) -> Result<(), ExtractError> {
        let Some(xobjects) = resources.and_then(|r| get_dict(self.doc, r, b"XObject")) else {
            return Ok(());
        };
        let Ok(Object::Reference(id)) = xobjects.get(name) else {
            return Ok(());
        };
        self.form_object(*id, ctm, resources, None)
    }

    /// Runs the form XObject `id`: placed by `ctm` (and, for an annotation's appearance, fitted
    /// into `rect`).
    pub(super) fn form_object(
        &mut self,
        id: ObjectId,
        ctm: &Matrix,
        parent_resources: Option<&'a Dictionary>,
        rect: Option<[f64; 4]>,
    ) -> Result<(), ExtractError> {
        let doc = self.doc;
        if self.forms.len() >= MAX_FORM_DEPTH || self.forms.contains(&id) {
            return Ok(());
        }
        let Some(Object::Stream(stream)) = object(doc, id) else {
            return Ok(());
        };
        if get_name(doc, &stream.dict, b"Subtype").is_some_and(|s| s != b"Form") {
            return Ok(());
        }
        let form_matrix = get_numbers::<6>(doc, &stream.dict, b"Matrix").unwrap_or(IDENTITY);
        let mut placed = multiply(&form_matrix, ctm);
        if let Some(rect) = rect {
            // Annotation appearances: the transformed bounding box is mapped onto the
            // annotation's rectangle (ISO 32000-1, 12.5.5).
            if let Some(bbox) = get_numbers::<4>(doc, &stream.dict, b"BBox") {
                let corners = [
                    apply(&form_matrix, bbox[0], bbox[1]),
                    apply(&form_matrix, bbox[2], bbox[1]),
                    apply(&form_matrix, bbox[0], bbox[3]),
                    apply(&form_matrix, bbox[2], bbox[3]),
                ];
                let min_x = corners.iter().map(|c| c.0).fold(f64::INFINITY, f64::min);
                let max_x = corners
                    .iter()
                    .map(|c| c.0)
                    .fold(f64::NEG_INFINITY, f64::max);
                let min_y = corners.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
                let max_y = corners
                    .iter()
                    .map(|c| c.1)
                    .fold(f64::NEG_INFINITY, f64::max);
                let (rx0, rx1) = (rect[0].min(rect[2]), rect[0].max(rect[2]));
                let (ry0, ry1) = (rect[1].min(rect[3]), rect[1].max(rect[3]));
                let sx = if max_x > min_x {
                    (rx1 - rx0) / (max_x - min_x)
                } else {
                    1.0
                };
                let sy = if max_y > min_y {
                    (ry1 - ry0) / (max_y - min_y)
                } else {
                    1.0
                };
                let fit = [sx, 0.0, 0.0, sy, rx0 - min_x * sx, ry0 - min_y * sy];
                placed = multiply(&multiply(&form_matrix, &fit), ctm);
            }
        }
        let Some(content) = stream_data(stream) else {
            return Ok(());
        };
        let resources = get_dict(doc, &stream.dict, b"Resources").or(parent_resources);
        self.forms.push(id);
        let result = self.run(&content, resources, placed);
        self.forms.pop();
        result
    }

    /// Shows a string: one [`TextChar`] per glyph, and the text matrix moved past it.
    fn show(&mut self, state: &State, text_matrix: &mut Matrix, bytes: &[u8]) {
        let Some(font) = &state.font else {
            return;
        };
        let size = state.size;
        let scaling = state.horizontal_scaling;
        let device = multiply(text_matrix, &state.ctm);
        // The font size as drawn: the length of the text space's vertical unit.
        let drawn_size = {
            let (x, y) = (device[2] * size, device[3] * size);
            (x * x + y * y).sqrt()
        };
        let dir = direction(&device);
        for glyph in font.decode(bytes) {
            let spacing = state.char_spacing
                + if glyph.word_space {
                    state.word_spacing
                } else {
                    0.0
                };
            let render = multiply(
                &[size * scaling, 0.0, 0.0, size, 0.0, state.rise],
                &multiply(text_matrix, &state.ctm),
            );
            let (x, y) = (render[4], render[5]);
            let (tx, ty, dx, dy) = if font.vertical {
                let advance = glyph.advance * size;
                let (dx, dy) = delta(&multiply(text_matrix, &state.ctm), 0.0, -advance);
                (0.0, -advance - spacing, dx, dy)
            } else {
                let advance = glyph.advance * size * scaling;
                let (dx, dy) = delta(&multiply(text_matrix, &state.ctm), advance, 0.0);
                (advance + spacing * scaling, 0.0, dx, dy)
            };
            if self.chars.len() < MAX_CHARS_PER_PAGE && x.is_finite() && y.is_finite() {
                self.chars.push(TextChar {
                    text: glyph.text,
                    x,
                    y,
                    dx,
                    dy,
                    size: drawn_size,
                    dir: if font.vertical { 3 } else { dir },
                });
            }
            *text_matrix = multiply(&[1.0, 0.0, 0.0, 1.0, tx, ty], text_matrix);
        }
    }
}

/// `T*`: the start of the next line, `TL` below.
fn next_line(state: &State, line_matrix: &mut Matrix, text_matrix: &mut Matrix) {
    *line_matrix = multiply(&[1.0, 0.0, 0.0, 1.0, 0.0, -state.leading], line_matrix);
    *text_matrix = *line_matrix;
}

/// A number of a `TJ` array: a move against the writing direction, in 1/1000 of the size.
fn adjust_position(state: &State, text_matrix: &mut Matrix, adjust: f64) {
    let vertical = state.font.as_ref().is_some_and(|font| font.vertical);
    let amount = -adjust / 1000.0 * state.size;
    let step = if vertical {
        [1.0, 0.0, 0.0, 1.0, 0.0, amount]
    } else {
        [1.0, 0.0, 0.0, 1.0, amount * state.horizontal_scaling, 0.0]
    };
    *text_matrix = multiply(&step, text_matrix);
}

/// A vector (not a point) through a matrix.
fn delta(m: &Matrix, x: f64, y: f64) -> (f64, f64) {
    (x * m[0] + y * m[2], x * m[1] + y * m[3])
}

/// The axis nearest to the text's baseline direction.
fn direction(m: &Matrix) -> u8 {
    let (x, y) = (m[0], m[1]);
    if x.abs() >= y.abs() {
        if x >= 0.0 { 0 } else { 2 }
    } else if y > 0.0 {
        1
    } else {
        3
    }
}

fn set(slot: &mut f64, numbers: &[f64]) {
    if let Some(value) = numbers.last() {
        *slot = *value;
    }
}

/// The last six numbers as a matrix, when they are finite.
fn matrix(numbers: &[f64]) -> Option<Matrix> {
    let start = numbers.len().checked_sub(6)?;
    let m: Matrix = numbers[start..].try_into().ok()?;
    m.iter().all(|n| n.is_finite()).then_some(m)
}

/// Runs one page: its content streams, then its visible annotations (see [`annotations`]).
pub(super) fn page_chars(
    doc: &Document,
    page: &Dictionary,
    resources: Option<&Dictionary>,
    fonts: &mut FontCache,
    need_appearances: bool,
    raw: &[u8],
    deadline: Instant,
) -> Result<Vec<TextChar>, ExtractError> {
    let mut interpreter = Interpreter::new(doc, fonts, deadline);
    let mut content = Vec::new();
    let streams: Vec<&Object> = match page.get(b"Contents") {
        Ok(Object::Array(items)) => items.iter().collect(),
        Ok(contents) => match resolve(doc, contents) {
            Some(Object::Array(items)) => items.iter().collect(),
            Some(_) | None => vec![contents],
        },
        Err(_) => Vec::new(),
    };
    for stream in streams {
        let data = match (resolve(doc, stream), stream) {
            (Some(Object::Stream(stream)), _) => stream_data(stream),
            // A stream the parser could not read (no `endstream`): read from the raw bytes.
            (_, Object::Reference(id)) => super::objects::salvage_stream(raw, *id),
            _ => None,
        };
        if let Some(data) = data {
            content.extend_from_slice(&data);
            content.push(b'\n');
        }
    }
    interpreter.run(&content, resources, IDENTITY)?;
    annotations::run(&mut interpreter, page, resources, need_appearances)?;
    Ok(interpreter.chars)
}
