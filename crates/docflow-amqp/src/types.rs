//! The AMQP 1.0 type system (OASIS AMQP 1.0 part 1, section 1.6): one Rust value per AMQP
//! type, so that a decoded value keeps its exact AMQP type. Service Bus SDKs unbox exact types
//! (a `long` sequence number, an `int` status code, a `uuid` message-id), so the broker must
//! never widen or narrow a value on its way through.

use thiserror::Error;

/// An AMQP 1.0 value of any type (part 1, section 1.6).
///
/// Use it wherever the wire carries a value whose type the broker must keep exactly: message
/// ids, annotations, application properties, filters and the fields of the spec's lists.
/// Equality is exact: floats compare by their bits (so `NaN == NaN` and `0.0 != -0.0`),
/// which is what "decodes to the same value" means for a codec.
#[derive(Debug, Clone)]
pub enum Value {
    /// `null` (0x40).
    Null,
    /// `boolean` (0x41 true, 0x42 false, 0x56 with one byte).
    Boolean(bool),
    /// `ubyte` (0x50).
    Ubyte(u8),
    /// `ushort` (0x60).
    Ushort(u16),
    /// `uint` (0x43 uint0, 0x52 smalluint, 0x70).
    Uint(u32),
    /// `ulong` (0x44 ulong0, 0x53 smallulong, 0x80).
    Ulong(u64),
    /// `byte` (0x51).
    Byte(i8),
    /// `short` (0x61).
    Short(i16),
    /// `int` (0x54 smallint, 0x71).
    Int(i32),
    /// `long` (0x55 smalllong, 0x81).
    Long(i64),
    /// `float` (0x72, IEEE 754 binary32).
    Float(f32),
    /// `double` (0x82, IEEE 754 binary64).
    Double(f64),
    /// `decimal32` (0x74), kept as its raw big-endian bytes: docflow never computes with it.
    Decimal32([u8; 4]),
    /// `decimal64` (0x84), raw bytes.
    Decimal64([u8; 8]),
    /// `decimal128` (0x94), raw bytes.
    Decimal128([u8; 16]),
    /// `char` (0x73, UTF-32BE).
    Char(char),
    /// `timestamp` (0x83): milliseconds since the Unix epoch.
    Timestamp(i64),
    /// `uuid` (0x98): the 16 bytes in RFC 4122 order.
    Uuid([u8; 16]),
    /// `binary` (0xa0 vbin8, 0xb0 vbin32).
    Binary(Vec<u8>),
    /// `string` (0xa1 str8-utf8, 0xb1 str32-utf8).
    String(String),
    /// `symbol` (0xa3 sym8, 0xb3 sym32): ASCII by the spec; the decoder refuses anything else.
    Symbol(String),
    /// A described type (0x00 descriptor value), e.g. every performative and message section.
    Described(Box<Described>),
    /// `list` (0x45 list0, 0xc0 list8, 0xd0 list32).
    List(Vec<Value>),
    /// `map` (0xc1 map8, 0xd1 map32): pairs in wire order, keys of any type.
    Map(Vec<(Value, Value)>),
    /// `array` (0xe0 array8, 0xf0 array32): values of one type under one constructor.
    Array(Array),
}

/// A described value (part 1, section 1.2): a descriptor (usually a `ulong` code or a
/// `symbol` name) saying what the value means, and the value itself.
///
/// Use it to build or inspect the spec's composite types by hand; the typed performatives and
/// sections of this crate do that for you.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// What the value is: `Value::Ulong(code)` or `Value::Symbol(name)` in practice.
    pub descriptor: Value,
    /// The value being described.
    pub value: Value,
}

/// The type of an array's elements: arrays carry one constructor for all their elements
/// (part 1, section 1.6.24), so the type must be known even when the array is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// `null` elements.
    Null,
    /// `boolean` elements.
    Boolean,
    /// `ubyte` elements.
    Ubyte,
    /// `ushort` elements.
    Ushort,
    /// `uint` elements.
    Uint,
    /// `ulong` elements.
    Ulong,
    /// `byte` elements.
    Byte,
    /// `short` elements.
    Short,
    /// `int` elements.
    Int,
    /// `long` elements.
    Long,
    /// `float` elements.
    Float,
    /// `double` elements.
    Double,
    /// `decimal32` elements.
    Decimal32,
    /// `decimal64` elements.
    Decimal64,
    /// `decimal128` elements.
    Decimal128,
    /// `char` elements.
    Char,
    /// `timestamp` elements.
    Timestamp,
    /// `uuid` elements.
    Uuid,
    /// `binary` elements.
    Binary,
    /// `string` elements.
    String,
    /// `symbol` elements.
    Symbol,
    /// `list` elements.
    List,
    /// `map` elements.
    Map,
    /// `array` elements (each may have its own element type).
    Array,
}

/// Why an [`Array`] could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ArrayError {
    /// An element's type differs from the array's element type.
    #[error("array element {index} is {found:?}, the array holds {expected:?}")]
    MixedTypes {
        /// Position of the offending element.
        index: usize,
        /// The array's element type.
        expected: ElementType,
        /// The element's own type (`None` for a described value, which arrays cannot hold
        /// one by one: the descriptor belongs to the array's constructor).
        found: Option<ElementType>,
    },
}

/// An AMQP array: a descriptor (when the elements are described), their type and the values.
///
/// Use it for the spec's `multiple` symbol fields (capabilities, locales) and for Service Bus
/// management maps that need arrays rather than lists (`lock-tokens`, `expirations`,
/// `sequence-numbers`). It is built through [`Array::new`], which checks that every element
/// has the declared type, so encoding an `Array` can never produce a malformed array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    descriptor: Option<Box<Value>>,
    element: ElementType,
    items: Vec<Value>,
}

impl Array {
    /// Builds an array of `element` values; `descriptor`, when given, describes every element
    /// (the items are then the undescribed values). Fails when an item is of another type.
    pub fn new(
        descriptor: Option<Value>,
        element: ElementType,
        items: Vec<Value>,
    ) -> Result<Self, ArrayError> {
        for (index, item) in items.iter().enumerate() {
            let found = item.element_type();
            if found != Some(element) {
                return Err(ArrayError::MixedTypes {
                    index,
                    expected: element,
                    found,
                });
            }
        }
        Ok(Self {
            descriptor: descriptor.map(Box::new),
            element,
            items,
        })
    }

    /// An array whose elements the decoder read under one constructor, and so are all of
    /// `element`'s type already.
    pub(crate) fn from_decoded(
        descriptor: Option<Value>,
        element: ElementType,
        items: Vec<Value>,
    ) -> Self {
        debug_assert!(items.iter().all(|v| v.element_type() == Some(element)));
        Self {
            descriptor: descriptor.map(Box::new),
            element,
            items,
        }
    }

    /// An array of symbols, the form of the spec's `multiple` symbol fields.
    pub fn symbols<I, S>(symbols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            descriptor: None,
            element: ElementType::Symbol,
            items: symbols
                .into_iter()
                .map(|s| Value::Symbol(s.into()))
                .collect(),
        }
    }

    /// The descriptor shared by all elements, when the array holds described values.
    pub fn descriptor(&self) -> Option<&Value> {
        self.descriptor.as_deref()
    }

    /// The type of every element.
    pub fn element(&self) -> ElementType {
        self.element
    }

    /// The elements, undescribed.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// Takes the elements out of the array.
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }
}

impl Value {
    /// The element type this value would have inside an array, `None` for a described value.
    pub fn element_type(&self) -> Option<ElementType> {
        Some(match self {
            Value::Null => ElementType::Null,
            Value::Boolean(_) => ElementType::Boolean,
            Value::Ubyte(_) => ElementType::Ubyte,
            Value::Ushort(_) => ElementType::Ushort,
            Value::Uint(_) => ElementType::Uint,
            Value::Ulong(_) => ElementType::Ulong,
            Value::Byte(_) => ElementType::Byte,
            Value::Short(_) => ElementType::Short,
            Value::Int(_) => ElementType::Int,
            Value::Long(_) => ElementType::Long,
            Value::Float(_) => ElementType::Float,
            Value::Double(_) => ElementType::Double,
            Value::Decimal32(_) => ElementType::Decimal32,
            Value::Decimal64(_) => ElementType::Decimal64,
            Value::Decimal128(_) => ElementType::Decimal128,
            Value::Char(_) => ElementType::Char,
            Value::Timestamp(_) => ElementType::Timestamp,
            Value::Uuid(_) => ElementType::Uuid,
            Value::Binary(_) => ElementType::Binary,
            Value::String(_) => ElementType::String,
            Value::Symbol(_) => ElementType::Symbol,
            Value::List(_) => ElementType::List,
            Value::Map(_) => ElementType::Map,
            Value::Array(_) => ElementType::Array,
            Value::Described(_) => return None,
        })
    }

    /// The AMQP name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Ubyte(_) => "ubyte",
            Value::Ushort(_) => "ushort",
            Value::Uint(_) => "uint",
            Value::Ulong(_) => "ulong",
            Value::Byte(_) => "byte",
            Value::Short(_) => "short",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Decimal32(_) => "decimal32",
            Value::Decimal64(_) => "decimal64",
            Value::Decimal128(_) => "decimal128",
            Value::Char(_) => "char",
            Value::Timestamp(_) => "timestamp",
            Value::Uuid(_) => "uuid",
            Value::Binary(_) => "binary",
            Value::String(_) => "string",
            Value::Symbol(_) => "symbol",
            Value::Described(_) => "described",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Array(_) => "array",
        }
    }

    /// A described value with a numeric descriptor, the form the spec's own types use.
    pub fn described(code: u64, value: Value) -> Value {
        Value::Described(Box::new(Described {
            descriptor: Value::Ulong(code),
            value,
        }))
    }

    /// A `symbol` value.
    pub fn symbol(s: impl Into<String>) -> Value {
        Value::Symbol(s.into())
    }

    /// A `string` value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value as V;
        match (self, other) {
            (V::Null, V::Null) => true,
            (V::Boolean(a), V::Boolean(b)) => a == b,
            (V::Ubyte(a), V::Ubyte(b)) => a == b,
            (V::Ushort(a), V::Ushort(b)) => a == b,
            (V::Uint(a), V::Uint(b)) => a == b,
            (V::Ulong(a), V::Ulong(b)) => a == b,
            (V::Byte(a), V::Byte(b)) => a == b,
            (V::Short(a), V::Short(b)) => a == b,
            (V::Int(a), V::Int(b)) => a == b,
            (V::Long(a), V::Long(b)) => a == b,
            (V::Float(a), V::Float(b)) => a.to_bits() == b.to_bits(),
            (V::Double(a), V::Double(b)) => a.to_bits() == b.to_bits(),
            (V::Decimal32(a), V::Decimal32(b)) => a == b,
            (V::Decimal64(a), V::Decimal64(b)) => a == b,
            (V::Decimal128(a), V::Decimal128(b)) => a == b,
            (V::Char(a), V::Char(b)) => a == b,
            (V::Timestamp(a), V::Timestamp(b)) => a == b,
            (V::Uuid(a), V::Uuid(b)) => a == b,
            (V::Binary(a), V::Binary(b)) => a == b,
            (V::String(a), V::String(b)) => a == b,
            (V::Symbol(a), V::Symbol(b)) => a == b,
            (V::Described(a), V::Described(b)) => a == b,
            (V::List(a), V::List(b)) => a == b,
            (V::Map(a), V::Map(b)) => a == b,
            (V::Array(a), V::Array(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}

impl From<u8> for Value {
    fn from(v: u8) -> Self {
        Value::Ubyte(v)
    }
}

impl From<u16> for Value {
    fn from(v: u16) -> Self {
        Value::Ushort(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Uint(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Ulong(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Long(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Binary(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_refuses_mixed_types() {
        let err = Array::new(
            None,
            ElementType::Uint,
            vec![Value::Uint(1), Value::Long(2)],
        )
        .unwrap_err();
        assert_eq!(
            err,
            ArrayError::MixedTypes {
                index: 1,
                expected: ElementType::Uint,
                found: Some(ElementType::Long)
            }
        );
        let described = Value::described(1, Value::Null);
        assert!(Array::new(None, ElementType::Null, vec![described]).is_err());
    }

    #[test]
    fn floats_compare_by_bits() {
        assert_eq!(Value::Double(f64::NAN), Value::Double(f64::NAN));
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
        assert_ne!(Value::Uint(1), Value::Ulong(1));
    }

    #[test]
    fn symbol_arrays_hold_symbols() {
        let a = Array::symbols(["a", "b"]);
        assert_eq!(a.element(), ElementType::Symbol);
        assert_eq!(a.items(), &[Value::symbol("a"), Value::symbol("b")]);
        assert!(a.descriptor().is_none());
    }
}
