//! Proptest strategies for AMQP values, shared by the property tests.

#![allow(dead_code)]

use docflow_amqp::{Array, ElementType, Value};
use proptest::collection::vec;
use proptest::prelude::*;

/// Which kinds of value a strategy may produce: the cross-check leaves out what the other
/// implementation cannot represent (duplicate map keys, arrays of described values, empty
/// arrays whose element type it cannot know).
#[derive(Clone, Copy)]
pub struct Shape {
    /// Allow empty arrays (their element type is only in the constructor).
    pub empty_arrays: bool,
    /// Allow arrays of described values.
    pub described_arrays: bool,
    /// Allow any value as a descriptor (not only ulong or symbol).
    pub any_descriptor: bool,
    /// Allow maps with equal keys.
    pub duplicate_keys: bool,
    /// Allow arrays whose elements are lists.
    pub compound_arrays: bool,
}

/// Everything the codec supports.
pub const ALL: Shape = Shape {
    empty_arrays: true,
    described_arrays: true,
    any_descriptor: true,
    duplicate_keys: true,
    compound_arrays: true,
};

/// Unsigned values around the boundaries of the compact forms.
fn u32_edges() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(255), Just(256), 0u32..300, any::<u32>()]
}

fn u64_edges() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(255), Just(256), 0u64..300, any::<u64>()]
}

fn i32_edges() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(-128i32),
        Just(127),
        Just(128),
        Just(-129),
        -200i32..200,
        any::<i32>()
    ]
}

fn i64_edges() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(-128i64),
        Just(127),
        Just(128),
        Just(-129),
        -200i64..200,
        any::<i64>()
    ]
}

/// Byte and string lengths on both sides of the 8-bit forms.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..20), 1 => vec(any::<u8>(), 250..300)]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => ".{0,12}", 1 => "[a-z]{250,300}"]
}

/// Symbols are ASCII by the spec.
pub fn symbol_text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[ -~]{0,16}", 1 => "[a-z:]{250,300}"]
}

/// Every primitive (non-compound) value.
pub fn primitive() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<u8>().prop_map(Value::Ubyte),
        any::<u16>().prop_map(Value::Ushort),
        u32_edges().prop_map(Value::Uint),
        u64_edges().prop_map(Value::Ulong),
        any::<i8>().prop_map(Value::Byte),
        any::<i16>().prop_map(Value::Short),
        i32_edges().prop_map(Value::Int),
        i64_edges().prop_map(Value::Long),
        any::<u32>().prop_map(|b| Value::Float(f32::from_bits(b))),
        any::<u64>().prop_map(|b| Value::Double(f64::from_bits(b))),
        any::<[u8; 4]>().prop_map(Value::Decimal32),
        any::<[u8; 8]>().prop_map(Value::Decimal64),
        any::<[u8; 16]>().prop_map(Value::Decimal128),
        any::<char>().prop_map(Value::Char),
        any::<i64>().prop_map(Value::Timestamp),
        any::<[u8; 16]>().prop_map(Value::Uuid),
        bytes().prop_map(Value::Binary),
        text().prop_map(Value::String),
        symbol_text().prop_map(Value::Symbol),
    ]
}

fn array(
    element: ElementType,
    items: impl Strategy<Value = Value>,
    min: usize,
) -> impl Strategy<Value = Value> {
    vec(items, min..6).prop_map(move |items| {
        Value::Array(Array::new(None, element, items).expect("homogeneous items"))
    })
}

/// Arrays of each primitive type, and of lists built from `inner`.
fn arrays(inner: BoxedStrategy<Value>, shape: Shape) -> BoxedStrategy<Value> {
    let min = usize::from(!shape.empty_arrays);
    let lists = vec(inner, 0..3).prop_map(Value::List);
    let mut options: Vec<BoxedStrategy<Value>> = vec![
        array(
            ElementType::Boolean,
            any::<bool>().prop_map(Value::Boolean),
            min,
        )
        .boxed(),
        array(ElementType::Ubyte, any::<u8>().prop_map(Value::Ubyte), min).boxed(),
        array(ElementType::Uint, u32_edges().prop_map(Value::Uint), min).boxed(),
        array(ElementType::Ulong, u64_edges().prop_map(Value::Ulong), min).boxed(),
        array(ElementType::Int, i32_edges().prop_map(Value::Int), min).boxed(),
        array(ElementType::Long, i64_edges().prop_map(Value::Long), min).boxed(),
        array(
            ElementType::Double,
            any::<f64>().prop_map(Value::Double),
            min,
        )
        .boxed(),
        array(
            ElementType::Timestamp,
            any::<i64>().prop_map(Value::Timestamp),
            min,
        )
        .boxed(),
        array(
            ElementType::Uuid,
            any::<[u8; 16]>().prop_map(Value::Uuid),
            min,
        )
        .boxed(),
        array(ElementType::Binary, bytes().prop_map(Value::Binary), min).boxed(),
        array(ElementType::String, text().prop_map(Value::String), min).boxed(),
        array(
            ElementType::Symbol,
            symbol_text().prop_map(Value::Symbol),
            min,
        )
        .boxed(),
    ];
    if shape.compound_arrays {
        options.push(array(ElementType::List, lists.clone(), min).boxed());
    }
    if shape.described_arrays {
        options.push(
            (any::<u64>(), vec(lists, 0..4))
                .prop_map(|(code, items)| {
                    let descriptor = Some(Value::Ulong(code));
                    Value::Array(Array::new(descriptor, ElementType::List, items).expect("lists"))
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

fn descriptor(shape: Shape) -> BoxedStrategy<Value> {
    if shape.any_descriptor {
        prop_oneof![
            any::<u64>().prop_map(Value::Ulong),
            symbol_text().prop_map(Value::Symbol),
            primitive(),
        ]
        .boxed()
    } else {
        prop_oneof![
            any::<u64>().prop_map(Value::Ulong),
            symbol_text().prop_map(Value::Symbol)
        ]
        .boxed()
    }
}

/// Any value, nesting at most 4 levels.
pub fn value(shape: Shape) -> BoxedStrategy<Value> {
    primitive()
        .boxed()
        .prop_recursive(4, 48, 6, move |inner| {
            let pairs = vec((inner.clone(), inner.clone()), 0..5);
            let map = if shape.duplicate_keys {
                pairs.prop_map(Value::Map).boxed()
            } else {
                pairs
                    .prop_map(|pairs| {
                        let mut unique: Vec<(Value, Value)> = Vec::new();
                        for (k, v) in pairs {
                            if !unique.iter().any(|(u, _)| *u == k) {
                                unique.push((k, v));
                            }
                        }
                        Value::Map(unique)
                    })
                    .boxed()
            };
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::List),
                map,
                (descriptor(shape), inner.clone()).prop_map(|(d, v)| Value::Described(Box::new(
                    docflow_amqp::Described {
                        descriptor: d,
                        value: v
                    }
                ))),
                arrays(inner, shape),
            ]
            .boxed()
        })
        .boxed()
}
