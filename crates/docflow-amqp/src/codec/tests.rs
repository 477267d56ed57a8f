//! Decoding vectors for every format code of part 1, section 1.6, and the refusals of
//! hostile input.

use super::*;
use crate::types::{Array, ElementType, Value};

fn dec(bytes: &[u8]) -> Value {
    let (value, used) = decode(bytes).unwrap();
    assert_eq!(used, bytes.len(), "decoding {bytes:02x?} used {used} bytes");
    value
}

// Section 1.6: every width of every type decodes to the same typed value.
#[test]
fn every_form_of_a_type_decodes_to_that_type() {
    assert_eq!(dec(&[0x43]), Value::Uint(0));
    assert_eq!(dec(&[0x52, 7]), Value::Uint(7));
    assert_eq!(dec(&[0x70, 0, 0, 0, 7]), Value::Uint(7));
    assert_eq!(dec(&[0x44]), Value::Ulong(0));
    assert_eq!(dec(&[0x53, 7]), Value::Ulong(7));
    assert_eq!(dec(&[0x80, 0, 0, 0, 0, 0, 0, 0, 7]), Value::Ulong(7));
    assert_eq!(dec(&[0x54, 0xfe]), Value::Int(-2));
    assert_eq!(dec(&[0x71, 0xff, 0xff, 0xff, 0xfe]), Value::Int(-2));
    assert_eq!(dec(&[0x55, 0xfe]), Value::Long(-2));
    assert_eq!(dec(&[0x56, 0]), Value::Boolean(false));
    assert_eq!(dec(&[0x56, 1]), Value::Boolean(true));
    assert_eq!(dec(&[0x41]), Value::Boolean(true));
    assert_eq!(dec(&[0xb1, 0, 0, 0, 1, b'x']), Value::string("x"));
    assert_eq!(dec(&[0xb3, 0, 0, 0, 1, b'x']), Value::symbol("x"));
    assert_eq!(dec(&[0xb0, 0, 0, 0, 1, 9]), Value::Binary(vec![9]));
    assert_eq!(dec(&[0xd0, 0, 0, 0, 4, 0, 0, 0, 0]), Value::List(vec![]));
    assert_eq!(dec(&[0xc0, 1, 0]), Value::List(vec![]));
    assert_eq!(dec(&[0xd1, 0, 0, 0, 4, 0, 0, 0, 0]), Value::Map(vec![]));
    assert_eq!(dec(&[0x50, 200]), Value::Ubyte(200));
    assert_eq!(dec(&[0x51, 0xff]), Value::Byte(-1));
    assert_eq!(dec(&[0x60, 1, 0]), Value::Ushort(256));
    assert_eq!(dec(&[0x61, 0xff, 0xff]), Value::Short(-1));
    assert_eq!(dec(&[0x72, 0x3f, 0x80, 0, 0]), Value::Float(1.0));
    assert_eq!(
        dec(&[0x82, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
        Value::Double(1.0)
    );
    assert_eq!(dec(&[0x73, 0, 0x01, 0xf6, 0x00]), Value::Char('\u{1f600}'));
    assert_eq!(dec(&[0x74, 1, 2, 3, 4]), Value::Decimal32([1, 2, 3, 4]));
    let mut uuid = vec![0x98];
    uuid.extend(0..16u8);
    let mut expected = [0u8; 16];
    expected.iter_mut().zip(0u8..).for_each(|(b, i)| *b = i);
    assert_eq!(dec(&uuid), Value::Uuid(expected));
}

// Section 1.6.24: an array32 of uint0 elements, and an array of described elements.
#[test]
fn arrays_decode_with_their_constructor() {
    let v = dec(&[0xf0, 0, 0, 0, 5, 0, 0, 0, 3, 0x43]);
    let expected = Array::new(None, ElementType::Uint, vec![Value::Uint(0); 3]).unwrap();
    assert_eq!(v, Value::Array(expected));
    let v = dec(&[0xe0, 5, 2, 0x00, 0x53, 0x24, 0x45]);
    let expected = Array::new(
        Some(Value::Ulong(0x24)),
        ElementType::List,
        vec![Value::List(vec![]); 2],
    )
    .unwrap();
    assert_eq!(v, Value::Array(expected));
}

#[test]
fn trailing_bytes_are_left_to_the_caller() {
    assert_eq!(decode(&[0x40, 0xff, 0xff]).unwrap(), (Value::Null, 1));
}

#[test]
fn hostile_input_is_refused_with_its_offset() {
    assert_eq!(
        decode(&[]).unwrap_err(),
        DecodeError::Truncated {
            offset: 0,
            what: "format code",
            needed: 1,
            available: 0
        }
    );
    assert_eq!(
        decode(&[0x01]).unwrap_err(),
        DecodeError::UnknownFormatCode { offset: 0, code: 1 }
    );
    // A 4 GiB binary declared in 5 bytes: refused before any allocation.
    assert!(matches!(
        decode(&[0xb0, 0xff, 0xff, 0xff, 0xff]).unwrap_err(),
        DecodeError::Truncated {
            offset: 5,
            what: "binary",
            ..
        }
    ));
    // A list32 claiming a billion elements in 4 bytes of content.
    assert_eq!(
        decode(&[0xd0, 0, 0, 0, 8, 0x40, 0, 0, 0, 0x40, 0x40, 0x40, 0x40]).unwrap_err(),
        DecodeError::CountTooLarge {
            offset: 0,
            what: "list",
            count: 0x4000_0000,
            size: 4
        }
    );
    assert_eq!(
        decode(&[0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40]).unwrap_err(),
        DecodeError::CountTooLarge {
            offset: 0,
            what: "array",
            count: u32::MAX as usize,
            size: 1
        }
    );
    assert_eq!(
        decode(&[0xc1, 2, 1, 0x40]).unwrap_err(),
        DecodeError::OddMapCount {
            offset: 0,
            count: 1
        }
    );
    assert_eq!(
        decode(&[0xc0, 3, 1, 0x40, 0x40]).unwrap_err(),
        DecodeError::SizeMismatch {
            offset: 0,
            what: "list",
            declared: 2,
            used: 1
        }
    );
    // An element may not read past its list's declared size.
    assert!(matches!(
        decode(&[0xc0, 2, 1, 0x52, 0x07]).unwrap_err(),
        DecodeError::Truncated {
            offset: 4,
            what: "smalluint",
            ..
        }
    ));
    assert_eq!(
        decode(&[0xc0, 0]).unwrap_err(),
        DecodeError::SizeTooSmall {
            offset: 0,
            what: "list",
            size: 0
        }
    );
    assert_eq!(
        decode(&[0x56, 2]).unwrap_err(),
        DecodeError::InvalidBoolean { offset: 1, byte: 2 }
    );
    assert_eq!(
        decode(&[0x73, 0, 0, 0xd8, 0]).unwrap_err(),
        DecodeError::InvalidChar {
            offset: 1,
            value: 0xd800
        }
    );
    assert_eq!(
        decode(&[0xa1, 1, 0xff]).unwrap_err(),
        DecodeError::InvalidUtf8 { offset: 2 }
    );
    assert_eq!(
        decode(&[0xa3, 1, 0xc3]).unwrap_err(),
        DecodeError::NonAsciiSymbol { offset: 2 }
    );
    assert_eq!(
        decode(&[0xe0, 4, 1, 0, 0x40, 0]).unwrap_err(),
        DecodeError::NestedArrayDescriptor { offset: 5 }
    );
}

#[test]
fn nesting_is_bounded() {
    // 65 nested list8s; the innermost is empty.
    let mut bytes = Vec::new();
    for i in 0..=MAX_DEPTH {
        let inner = MAX_DEPTH - i;
        bytes.extend([0xc0, (inner * 3 + 1) as u8, u8::from(inner > 0)]);
    }
    assert!(matches!(
        decode(&bytes).unwrap_err(),
        DecodeError::TooDeep {
            limit: MAX_DEPTH,
            ..
        }
    ));
    // Exactly MAX_DEPTH levels decode.
    assert!(decode(&bytes[3..]).is_ok());
    // Described values count as levels too.
    let described = [0x00; 200];
    assert!(matches!(
        decode(&described).unwrap_err(),
        DecodeError::TooDeep { .. }
    ));
}

#[test]
fn round_trip_of_a_nested_value() {
    let v = Value::Map(vec![
        (
            Value::symbol("k"),
            Value::List(vec![
                Value::described(0x77, Value::string("body")),
                Value::Array(Array::symbols(["a"])),
            ]),
        ),
        (Value::Uint(1), Value::Binary(vec![0; 300])),
    ]);
    assert_eq!(dec(&encode_to_vec(&v)), v);
}

/// An array32 of `n` nulls: 10 bytes whatever `n` is.
fn nulls(n: u32) -> Vec<u8> {
    let mut bytes = vec![0xf0, 0, 0, 0, 5];
    bytes.extend(n.to_be_bytes());
    bytes.push(0x40);
    bytes
}

// Regression: every array of zero-width elements could hold input-length elements on its own,
// so an array of such arrays held (input length)² / 9 values (gigabytes from 64 KiB). Now
// they share one budget: one per input byte, at least ZERO_WIDTH_FLOOR.
#[test]
fn zero_width_elements_share_one_budget_across_nested_arrays() {
    // One array of more nulls than input bytes is fine, up to the floor...
    let one = nulls(ZERO_WIDTH_FLOOR as u32);
    let Value::Array(array) = dec(&one) else {
        panic!("an array");
    };
    assert_eq!(array.items().len(), ZERO_WIDTH_FLOOR);
    assert_eq!(array.element(), ElementType::Null);
    // ...but 200 arrays of 40,000 nested in one are refused, not 8 million nulls.
    let inner = 40_000u32;
    let mut bytes = vec![0xf0];
    let elements: Vec<u8> = (0..200).flat_map(|_| nulls(inner)[1..].to_vec()).collect();
    bytes.extend((elements.len() as u32 + 5).to_be_bytes());
    bytes.extend(200u32.to_be_bytes());
    bytes.push(0xf0);
    bytes.extend(&elements);
    assert_eq!(bytes.len(), 1810);
    assert!(matches!(
        decode(&bytes).unwrap_err(),
        DecodeError::CountTooLarge {
            what: "array",
            count: 40_000,
            ..
        }
    ));
    // The same in a list, where each array also sits alone.
    let mut list = vec![0xd0];
    let items: Vec<u8> = (0..3).flat_map(|_| nulls(30_000)).collect();
    list.extend((items.len() as u32 + 4).to_be_bytes());
    list.extend(3u32.to_be_bytes());
    list.extend(&items);
    assert!(matches!(
        decode(&list).unwrap_err(),
        DecodeError::CountTooLarge { what: "array", .. }
    ));
}

// Regression (found by fuzzing amqp_message, whose memory crept to 2 GiB): every list, map
// and array reserved its whole declared count of values up front. 64 nested list32s, each
// declaring as many elements as its bytes and failing on its first, reserved 64 × the input
// × the size of a value: 671 MB for one 256 KiB frame. Now at most 256 are reserved ahead,
// and a well-formed long list still decodes whole.
#[test]
fn declared_counts_are_not_reserved_ahead() {
    let len = 256 * 1024;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() + 9 < len && bytes.len() < 9 * MAX_DEPTH {
        let size = (len - bytes.len() - 5) as u32;
        bytes.push(0xd0);
        bytes.extend(size.to_be_bytes());
        bytes.extend((size - 4).to_be_bytes());
    }
    bytes.resize(len, 0xff);
    let error = decode(&bytes).unwrap_err();
    assert!(
        matches!(error, DecodeError::UnknownFormatCode { code: 0xff, .. }),
        "{error:?}"
    );
    let mut long = vec![0xd0];
    long.extend(10_004u32.to_be_bytes());
    long.extend(10_000u32.to_be_bytes());
    long.extend([0x40; 10_000]);
    let Value::List(items) = dec(&long) else {
        panic!("a list");
    };
    assert_eq!(items, vec![Value::Null; 10_000]);
}
