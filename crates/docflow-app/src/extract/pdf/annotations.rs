//! Text on a page outside its content streams: annotation appearances and form field values.
//!
//! Viewers draw each visible annotation's normal appearance over the page; poppler's text
//! extraction reads them too, so a filled-in form's values are part of the text. A form field
//! without an appearance, or in a form that asks viewers to rebuild appearances
//! (`/NeedAppearances true`), is read from its value instead: a text field's `/V`, a combo
//! box's choice, a list box's options.

use lopdf::{Dictionary, Document, Object, ObjectId, decode_text_string};

use super::interpret::{IDENTITY, Interpreter, MAX_CHARS_PER_PAGE, TextChar};
use super::objects::{as_dict, get, get_dict, get_name, get_number, get_numbers, object, resolve};
use crate::extract::{ExtractError, check_deadline};

/// How far up the field tree inherited field attributes are looked for.
const MAX_FIELD_DEPTH: usize = 32;

/// The combo box flag of a choice field (`/Ff`, bit 18).
const COMBO: i64 = 1 << 17;

/// Font size of field text when `/DA` gives none (or 0, "fit").
const DEFAULT_FIELD_FONT_SIZE: f64 = 10.0;

/// Runs the page's visible annotations.
pub(super) fn run<'a>(
    interpreter: &mut Interpreter<'a>,
    page: &'a Dictionary,
    resources: Option<&'a Dictionary>,
    need_appearances: bool,
) -> Result<(), ExtractError> {
    let doc = interpreter.doc;
    let Some(Object::Array(annotations)) = get(doc, page, b"Annots") else {
        return Ok(());
    };
    for annotation in annotations {
        check_deadline(interpreter.deadline)?;
        let Some(annotation) = resolve(doc, annotation).and_then(as_dict) else {
            continue;
        };
        let flags = get_number(doc, annotation, b"F").unwrap_or(0.0) as i64;
        // Hidden (2) or not shown on screen (NoView, 32).
        if flags & (2 | 32) != 0 || get_name(doc, annotation, b"Subtype") == Some(b"Popup") {
            continue;
        }
        let Some(rect) = get_numbers::<4>(doc, annotation, b"Rect") else {
            continue;
        };
        let appearance = normal_appearance(doc, annotation);
        let is_field = get_name(doc, annotation, b"Subtype") == Some(b"Widget")
            && matches!(inherited_field_type(doc, annotation), Some(b"Tx" | b"Ch"));
        if is_field && (need_appearances || appearance.is_none()) {
            field_value_chars(doc, annotation, rect, &mut interpreter.chars);
        } else if let Some(id) = appearance {
            interpreter.form_object(id, &IDENTITY, resources, Some(rect))?;
        }
    }
    Ok(())
}

/// The annotation's normal appearance stream: `/AP /N` itself, or the state `/AS` selects.
fn normal_appearance(doc: &Document, annotation: &Dictionary) -> Option<ObjectId> {
    let normal = get_dict(doc, annotation, b"AP")?.get(b"N").ok()?;
    let states = match normal {
        Object::Reference(id) => match object(doc, *id)? {
            Object::Stream(_) => return Some(*id),
            Object::Dictionary(states) => states,
            _ => return None,
        },
        Object::Dictionary(states) => states,
        _ => return None,
    };
    match states.get(get_name(doc, annotation, b"AS")?).ok()? {
        Object::Reference(id) => Some(*id),
        _ => None,
    }
}

/// A field attribute, from the field or the nearest ancestor that has it.
fn inherited_field<'a>(doc: &'a Document, field: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = field;
    for _ in 0..MAX_FIELD_DEPTH {
        if let Some(value) = get(doc, node, key) {
            return Some(value);
        }
        node = get(doc, node, b"Parent").and_then(as_dict)?;
    }
    None
}

fn inherited_field_type<'a>(doc: &'a Document, field: &'a Dictionary) -> Option<&'a [u8]> {
    match inherited_field(doc, field, b"FT")? {
        Object::Name(name) => Some(name),
        _ => None,
    }
}

/// The lines a field shows: a text field's value, a combo box's choice, a list box's options.
fn field_lines(doc: &Document, field: &Dictionary) -> Vec<String> {
    let text = |object: &Object| resolve(doc, object).and_then(|o| decode_text_string(o).ok());
    let flags = inherited_field(doc, field, b"Ff")
        .and_then(|f| super::objects::number(doc, f))
        .unwrap_or(0.0) as i64;
    let value_lines = || -> Vec<String> {
        match inherited_field(doc, field, b"V") {
            Some(Object::Array(values)) => values.iter().filter_map(text).collect(),
            Some(value) => text(value).into_iter().collect(),
            None => Vec::new(),
        }
    };
    let lines: Vec<String> = match inherited_field_type(doc, field) {
        Some(b"Tx") => value_lines(),
        Some(b"Ch") if flags & COMBO != 0 => value_lines(),
        Some(b"Ch") => match inherited_field(doc, field, b"Opt") {
            Some(Object::Array(options)) => options
                .iter()
                .filter_map(|option| match resolve(doc, option)? {
                    // `[export value, shown text]`
                    Object::Array(pair) => pair.get(1).and_then(text),
                    other => text(other),
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    lines
        .iter()
        .flat_map(|value| value.split(['\r', '\n']))
        .map(str::to_owned)
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// Characters for a field's lines, set from the top left of its rectangle.
fn field_value_chars(
    doc: &Document,
    field: &Dictionary,
    rect: [f64; 4],
    chars: &mut Vec<TextChar>,
) {
    let size = inherited_field(doc, field, b"DA")
        .and_then(|da| resolve(doc, da))
        .and_then(|da| match da {
            Object::String(bytes, _) => font_size_of(bytes),
            _ => None,
        })
        .filter(|size| *size > 0.0)
        .unwrap_or(DEFAULT_FIELD_FONT_SIZE);
    let (left, top) = (rect[0].min(rect[2]), rect[1].max(rect[3]));
    for (index, line) in field_lines(doc, field).iter().enumerate() {
        let y = top - size * (1.1 + 1.15 * index as f64);
        for (column, c) in line.chars().enumerate() {
            if chars.len() >= MAX_CHARS_PER_PAGE {
                return;
            }
            chars.push(TextChar {
                text: c.to_string(),
                x: left + 2.0 + 0.5 * size * column as f64,
                y,
                dx: 0.5 * size,
                dy: 0.0,
                size,
                dir: 0,
            });
        }
    }
}

/// The font size of a default appearance string (`/Helv 10 Tf 0 g` → 10).
fn font_size_of(appearance: &[u8]) -> Option<f64> {
    super::content::Lexer::new(appearance)
        .filter(|op| op.operator == b"Tf")
        .last()
        .and_then(|op| op.operands.get(1).and_then(super::content::Operand::number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_font_size_of_a_default_appearance() {
        assert_eq!(font_size_of(b"/Helv 10 Tf 0 0 0 rg"), Some(10.0));
        assert_eq!(font_size_of(b"0 g /F3 0 Tf"), Some(0.0));
        assert_eq!(font_size_of(b"0 g"), None);
    }
}
