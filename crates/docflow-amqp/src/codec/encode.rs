//! Encoding values with the compact forms of part 1, section 1.6: `uint0`/`smalluint`,
//! `ulong0`/`smallulong`, `smallint`/`smalllong`, `true`/`false`, `list0`, and the 8-bit
//! width of every variable and compound type whenever its content fits.
//!
//! Inside arrays one constructor serves every element (section 1.6.24), so elements use the
//! full-width fixed forms (`uint` 0x70, `ulong` 0x80, `int` 0x71, `long` 0x81, `boolean`
//! 0x56), the 8-bit variable form only when every element fits it, and the 32-bit compound
//! forms: the choices of the Python SDK's encoder (`use_smallest=False` for elements).
//!
//! Sizes above `u32::MAX` cannot be expressed in AMQP at all; the broker bounds messages and
//! frames far below that (`max-message-size`, `max-frame-size`), so the encoder saturates such
//! a size instead of failing.

use super::code;
use crate::types::{Array, ElementType, Value};

/// Appends the AMQP encoding of `value` to `out`, in its most compact form.
///
/// Use it to build frame bodies and message sections; [`crate::codec::decode`] reads the
/// result back to an equal value.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(code::NULL),
        Value::Boolean(true) => out.push(code::TRUE),
        Value::Boolean(false) => out.push(code::FALSE),
        Value::Ubyte(v) => out.extend([code::UBYTE, *v]),
        Value::Ushort(v) => fixed(out, code::USHORT, &v.to_be_bytes()),
        Value::Uint(0) => out.push(code::UINT0),
        Value::Uint(v @ 1..=255) => out.extend([code::SMALLUINT, *v as u8]),
        Value::Uint(v) => fixed(out, code::UINT, &v.to_be_bytes()),
        Value::Ulong(0) => out.push(code::ULONG0),
        Value::Ulong(v @ 1..=255) => out.extend([code::SMALLULONG, *v as u8]),
        Value::Ulong(v) => fixed(out, code::ULONG, &v.to_be_bytes()),
        Value::Byte(v) => fixed(out, code::BYTE, &v.to_be_bytes()),
        Value::Short(v) => fixed(out, code::SHORT, &v.to_be_bytes()),
        Value::Int(v @ -128..=127) => fixed(out, code::SMALLINT, &(*v as i8).to_be_bytes()),
        Value::Int(v) => fixed(out, code::INT, &v.to_be_bytes()),
        Value::Long(v @ -128..=127) => fixed(out, code::SMALLLONG, &(*v as i8).to_be_bytes()),
        Value::Long(v) => fixed(out, code::LONG, &v.to_be_bytes()),
        Value::Float(v) => fixed(out, code::FLOAT, &v.to_bits().to_be_bytes()),
        Value::Double(v) => fixed(out, code::DOUBLE, &v.to_bits().to_be_bytes()),
        Value::Decimal32(v) => fixed(out, code::DECIMAL32, v),
        Value::Decimal64(v) => fixed(out, code::DECIMAL64, v),
        Value::Decimal128(v) => fixed(out, code::DECIMAL128, v),
        Value::Char(v) => fixed(out, code::CHAR, &u32::from(*v).to_be_bytes()),
        Value::Timestamp(v) => fixed(out, code::TIMESTAMP, &v.to_be_bytes()),
        Value::Uuid(v) => fixed(out, code::UUID, v),
        Value::Binary(v) => variable(out, code::VBIN8, code::VBIN32, v),
        Value::String(v) => variable(out, code::STR8, code::STR32, v.as_bytes()),
        Value::Symbol(v) => variable(out, code::SYM8, code::SYM32, v.as_bytes()),
        Value::Described(d) => {
            out.push(code::DESCRIBED);
            encode(&d.descriptor, out);
            encode(&d.value, out);
        }
        Value::List(items) if items.is_empty() => out.push(code::LIST0),
        Value::List(items) => compound(out, code::LIST8, code::LIST32, items.len(), |out| {
            items.iter().for_each(|v| encode(v, out))
        }),
        Value::Map(pairs) => compound(
            out,
            code::MAP8,
            code::MAP32,
            pairs.len().saturating_mul(2),
            |out| {
                for (k, v) in pairs {
                    encode(k, out);
                    encode(v, out);
                }
            },
        ),
        Value::Array(array) => compound(
            out,
            code::ARRAY8,
            code::ARRAY32,
            array.items().len(),
            |out| array_content(array, out),
        ),
    }
}

/// Encodes `value` into a new buffer: a convenience for tests and one-off encodings.
pub fn encode_to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Appends `bytes` as a `binary` (vbin8 or vbin32) without building a [`Value`] first.
pub(crate) fn encode_binary(bytes: &[u8], out: &mut Vec<u8>) {
    variable(out, code::VBIN8, code::VBIN32, bytes);
}

fn fixed(out: &mut Vec<u8>, code: u8, bytes: &[u8]) {
    out.push(code);
    out.extend_from_slice(bytes);
}

fn variable(out: &mut Vec<u8>, code8: u8, code32: u8, bytes: &[u8]) {
    match u8::try_from(bytes.len()) {
        Ok(len) => out.extend([code8, len]),
        Err(_) => {
            out.push(code32);
            out.extend(saturate(bytes.len()).to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Writes a compound (list, map or array) with `code32`, then shrinks it to the `code8` form
/// when the count and the size (which includes the count byte) both fit in one octet.
fn compound(
    out: &mut Vec<u8>,
    code8: u8,
    code32: u8,
    count: usize,
    content: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.push(code32);
    body32(out, count, content);
    let content_len = out.len() - start - 9;
    if count <= 255 && content_len < 255 {
        out[start] = code8;
        out[start + 1] = (content_len + 1) as u8;
        out[start + 2] = count as u8;
        out.drain(start + 3..start + 9);
    }
}

/// Writes the 32-bit form's size and count, then the content, then patches the size.
fn body32(out: &mut Vec<u8>, count: usize, content: impl FnOnce(&mut Vec<u8>)) {
    let size_at = out.len();
    out.extend([0; 4]);
    out.extend(saturate(count).to_be_bytes());
    content(out);
    let size = saturate(out.len() - size_at - 4);
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
}

/// An array's constructor (optional descriptor, element code) followed by its elements.
fn array_content(array: &Array, out: &mut Vec<u8>) {
    if let Some(descriptor) = array.descriptor() {
        out.push(code::DESCRIBED);
        encode(descriptor, out);
    }
    let element_code = element_code(array.element(), array.items());
    out.push(element_code);
    for item in array.items() {
        element(item, element_code, out);
    }
}

fn element_code(element: ElementType, items: &[Value]) -> u8 {
    let fits8 = || {
        items.iter().all(|v| match v {
            Value::Binary(b) => b.len() <= 255,
            Value::String(s) | Value::Symbol(s) => s.len() <= 255,
            _ => true,
        })
    };
    match element {
        ElementType::Null => code::NULL,
        ElementType::Boolean => code::BOOLEAN,
        ElementType::Ubyte => code::UBYTE,
        ElementType::Ushort => code::USHORT,
        ElementType::Uint => code::UINT,
        ElementType::Ulong => code::ULONG,
        ElementType::Byte => code::BYTE,
        ElementType::Short => code::SHORT,
        ElementType::Int => code::INT,
        ElementType::Long => code::LONG,
        ElementType::Float => code::FLOAT,
        ElementType::Double => code::DOUBLE,
        ElementType::Decimal32 => code::DECIMAL32,
        ElementType::Decimal64 => code::DECIMAL64,
        ElementType::Decimal128 => code::DECIMAL128,
        ElementType::Char => code::CHAR,
        ElementType::Timestamp => code::TIMESTAMP,
        ElementType::Uuid => code::UUID,
        ElementType::Binary if fits8() => code::VBIN8,
        ElementType::Binary => code::VBIN32,
        ElementType::String if fits8() => code::STR8,
        ElementType::String => code::STR32,
        ElementType::Symbol if fits8() => code::SYM8,
        ElementType::Symbol => code::SYM32,
        ElementType::List => code::LIST32,
        ElementType::Map => code::MAP32,
        ElementType::Array => code::ARRAY32,
    }
}

/// One array element without its constructor, in the form `element_code` names. `Array::new`
/// guarantees the element has the array's type, so every value matches its code here.
fn element(value: &Value, element_code: u8, out: &mut Vec<u8>) {
    match value {
        Value::Null => {}
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Ubyte(v) => out.push(*v),
        Value::Ushort(v) => out.extend(v.to_be_bytes()),
        Value::Uint(v) => out.extend(v.to_be_bytes()),
        Value::Ulong(v) => out.extend(v.to_be_bytes()),
        Value::Byte(v) => out.extend(v.to_be_bytes()),
        Value::Short(v) => out.extend(v.to_be_bytes()),
        Value::Int(v) => out.extend(v.to_be_bytes()),
        Value::Long(v) => out.extend(v.to_be_bytes()),
        Value::Float(v) => out.extend(v.to_bits().to_be_bytes()),
        Value::Double(v) => out.extend(v.to_bits().to_be_bytes()),
        Value::Decimal32(v) => out.extend(v),
        Value::Decimal64(v) => out.extend(v),
        Value::Decimal128(v) => out.extend(v),
        Value::Char(v) => out.extend(u32::from(*v).to_be_bytes()),
        Value::Timestamp(v) => out.extend(v.to_be_bytes()),
        Value::Uuid(v) => out.extend(v),
        Value::Binary(b) => variable_element(out, element_code, b),
        Value::String(s) | Value::Symbol(s) => variable_element(out, element_code, s.as_bytes()),
        Value::List(items) => body32(out, items.len(), |out| {
            items.iter().for_each(|v| encode(v, out))
        }),
        Value::Map(pairs) => body32(out, pairs.len().saturating_mul(2), |out| {
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
        }),
        Value::Array(inner) => body32(out, inner.items().len(), |out| array_content(inner, out)),
        // Unreachable through `Array::new`, which refuses described elements; encoding the
        // value whole keeps the output well-formed for a decoder that reads it anyway.
        Value::Described(_) => encode(value, out),
    }
}

fn variable_element(out: &mut Vec<u8>, element_code: u8, bytes: &[u8]) {
    if matches!(element_code, code::VBIN8 | code::STR8 | code::SYM8) {
        out.push(bytes.len() as u8);
    } else {
        out.extend(saturate(bytes.len()).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Array;

    fn enc(v: Value) -> Vec<u8> {
        encode_to_vec(&v)
    }

    // Part 1, section 1.6: the compact encodings of each primitive type.
    #[test]
    fn primitives_use_compact_forms() {
        assert_eq!(enc(Value::Null), [0x40]);
        assert_eq!(enc(Value::Boolean(true)), [0x41]);
        assert_eq!(enc(Value::Boolean(false)), [0x42]);
        assert_eq!(enc(Value::Uint(0)), [0x43]);
        assert_eq!(enc(Value::Uint(255)), [0x52, 0xff]);
        assert_eq!(enc(Value::Uint(256)), [0x70, 0, 0, 1, 0]);
        assert_eq!(enc(Value::Ulong(0)), [0x44]);
        assert_eq!(enc(Value::Ulong(0x10)), [0x53, 0x10]);
        assert_eq!(
            enc(Value::Ulong(0x8001_3700)),
            [0x80, 0, 0, 0, 0, 0x80, 1, 0x37, 0]
        );
        assert_eq!(enc(Value::Int(-1)), [0x54, 0xff]);
        assert_eq!(enc(Value::Int(200)), [0x71, 0, 0, 0, 200]);
        assert_eq!(enc(Value::Long(5)), [0x55, 5]);
        assert_eq!(
            enc(Value::Long(-129)),
            [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(enc(Value::Char('a')), [0x73, 0, 0, 0, 0x61]);
        assert_eq!(enc(Value::Timestamp(1)), [0x83, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(enc(Value::string("x")), [0xa1, 1, b'x']);
        assert_eq!(enc(Value::symbol("ab")), [0xa3, 2, b'a', b'b']);
        assert_eq!(enc(Value::Binary(vec![7])), [0xa0, 1, 7]);
    }

    #[test]
    fn long_variable_values_use_32_bit_forms() {
        let s = "y".repeat(256);
        let bytes = enc(Value::String(s));
        assert_eq!(&bytes[..5], [0xb1, 0, 0, 1, 0]);
        assert_eq!(bytes.len(), 5 + 256);
        assert_eq!(enc(Value::Binary(vec![0; 300]))[0], 0xb0);
        assert_eq!(enc(Value::Symbol("z".repeat(300)))[0], 0xb3);
    }

    // Section 1.6.22: list8 is size (including the count octet), count, items.
    #[test]
    fn lists_and_maps_shrink_to_8_bit_forms() {
        assert_eq!(enc(Value::List(vec![])), [0x45]);
        assert_eq!(
            enc(Value::List(vec![Value::Null, Value::Uint(1)])),
            [0xc0, 4, 2, 0x40, 0x52, 1]
        );
        assert_eq!(enc(Value::Map(vec![])), [0xc1, 1, 0]);
        assert_eq!(
            enc(Value::Map(vec![(Value::symbol("k"), Value::Int(1))])),
            [0xc1, 6, 2, 0xa3, 1, b'k', 0x54, 1]
        );
        let big = Value::List(vec![Value::Binary(vec![0; 300])]);
        let bytes = enc(big);
        assert_eq!(&bytes[..9], [0xd0, 0, 0, 1, 0x35, 0, 0, 0, 1]);
        let many = Value::List(vec![Value::Null; 256]);
        assert_eq!(&enc(many)[..9], [0xd0, 0, 0, 1, 4, 0, 0, 1, 0]);
    }

    // Section 1.6.24: array8 is size, count, one constructor, then the bare elements.
    #[test]
    fn arrays_share_one_constructor() {
        let a = Array::symbols(["a", "bc"]);
        assert_eq!(
            enc(Value::Array(a)),
            [0xe0, 7, 2, 0xa3, 1, b'a', 2, b'b', b'c']
        );
        let longs = Array::new(None, ElementType::Long, vec![Value::Long(1)]).unwrap();
        assert_eq!(
            enc(Value::Array(longs)),
            [0xe0, 10, 1, 0x81, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        let empty = Array::new(None, ElementType::Uuid, vec![]).unwrap();
        assert_eq!(enc(Value::Array(empty)), [0xe0, 2, 0, 0x98]);
        let described = Array::new(
            Some(Value::Ulong(0x24)),
            ElementType::List,
            vec![Value::List(vec![])],
        )
        .unwrap();
        assert_eq!(
            enc(Value::Array(described)),
            [0xe0, 13, 1, 0x00, 0x53, 0x24, 0xd0, 0, 0, 0, 4, 0, 0, 0, 0]
        );
    }

    #[test]
    fn described_values_prefix_the_descriptor() {
        let v = Value::described(0x24, Value::List(vec![]));
        assert_eq!(enc(v), [0x00, 0x53, 0x24, 0x45]);
    }
}
