//! The machinery shared by the spec's composite types (part 1, section 1.4): a described list
//! whose fields are read one by one with their names for errors, written with trailing nulls
//! trimmed, and the [`Composite`] trait that gives every typed struct `encode` and `decode`.

use thiserror::Error;

use crate::codec::{self, DecodeError};
use crate::types::{Array, Described, ElementType, Value};

/// A map-typed field (`fields`, `filter-set`, annotations, unsettled maps): pairs in wire
/// order, keys and values of any type, so that every value keeps its exact AMQP type.
pub type Fields = Vec<(Value, Value)>;

/// Why a value is not the composite type it should be; names the type and the field.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FieldError {
    /// The bytes are not an AMQP value at all.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A composite type was expected where the value is not described.
    #[error("{context}: expected a described value, found {found}")]
    NotDescribed {
        /// The type being read.
        context: &'static str,
        /// The AMQP type found.
        found: &'static str,
    },
    /// A described value with another descriptor than the type (or types) expected.
    #[error("{context}: unexpected descriptor {descriptor:?}")]
    UnexpectedDescriptor {
        /// The type (or family of types) being read.
        context: &'static str,
        /// The descriptor found.
        descriptor: Value,
    },
    /// A composite type's value that is not of the kind its descriptor promises.
    #[error("{context}: the described value is {found}, expected {expected}")]
    WrongShape {
        /// The type being read.
        context: &'static str,
        /// What the descriptor promises (list, map, binary...).
        expected: &'static str,
        /// The AMQP type found.
        found: &'static str,
    },
    /// A field of the wrong AMQP type.
    #[error("{context}.{field}: expected {expected}, found {found}")]
    WrongType {
        /// The type being read.
        context: &'static str,
        /// The field.
        field: &'static str,
        /// The type the spec gives the field.
        expected: &'static str,
        /// The AMQP type found.
        found: &'static str,
    },
    /// A mandatory field that is null or absent.
    #[error("{context}.{field} is mandatory but absent")]
    Missing {
        /// The type being read.
        context: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field whose value the spec does not allow.
    #[error("{context}.{field}: {value:?} is not a valid value")]
    InvalidValue {
        /// The type being read.
        context: &'static str,
        /// The field.
        field: &'static str,
        /// The value found.
        value: Value,
    },
}

/// A type's descriptor: its numeric code and its symbolic name; the spec lets a peer use
/// either (part 1, section 1.5), so decoding accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The numeric descriptor, e.g. 0x10 for `open` (domain 0x00000000).
    pub code: u64,
    /// The symbolic descriptor, e.g. `amqp:open:list`.
    pub name: &'static str,
}

impl Descriptor {
    /// Whether `descriptor` (a `ulong` or `symbol`) names this type.
    pub fn matches(&self, descriptor: &Value) -> bool {
        match descriptor {
            Value::Ulong(code) => *code == self.code,
            Value::Symbol(name) => name == self.name,
            _ => false,
        }
    }
}

/// A composite type of the spec encoded as a described list (performatives, SASL frames,
/// terminus, error, delivery states, the header and properties sections).
///
/// Implementors list their fields in spec order; `to_value`, `encode` and `decode` follow.
pub trait Composite: Sized {
    /// The type's descriptor.
    const DESCRIPTOR: Descriptor;
    /// The type's name in errors, as the spec spells it.
    const NAME: &'static str;

    /// Every field in spec order, `Value::Null` for absent ones and for spec defaults.
    fn fields(&self) -> Vec<Value>;

    /// Reads the fields in spec order; absent trailing fields read as null.
    fn from_fields(reader: &mut FieldReader) -> Result<Self, FieldError>;

    /// The described list, trailing nulls trimmed (part 1, section 1.4).
    fn to_value(&self) -> Value {
        let mut fields = self.fields();
        while fields.last() == Some(&Value::Null) {
            fields.pop();
        }
        Value::described(Self::DESCRIPTOR.code, Value::List(fields))
    }

    /// Reads the type from a decoded value; extra fields beyond the spec's are ignored.
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let items = described_list(value, Self::DESCRIPTOR, Self::NAME)?;
        Self::from_fields(&mut FieldReader::new(Self::NAME, items))
    }

    /// Appends the type's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        codec::encode(&self.to_value(), out);
    }

    /// Decodes the type from the start of `bytes`; returns it with the bytes used.
    fn decode(bytes: &[u8]) -> Result<(Self, usize), FieldError> {
        let (value, used) = codec::decode(bytes)?;
        Ok((Self::from_value(value)?, used))
    }
}

/// Unwraps a described list with the given descriptor into its items.
pub(crate) fn described_list(
    value: Value,
    descriptor: Descriptor,
    context: &'static str,
) -> Result<Vec<Value>, FieldError> {
    let Described {
        descriptor: found,
        value,
    } = into_described(value, context)?;
    if !descriptor.matches(&found) {
        return Err(FieldError::UnexpectedDescriptor {
            context,
            descriptor: found,
        });
    }
    match value {
        Value::List(items) => Ok(items),
        other => Err(FieldError::WrongShape {
            context,
            expected: "list",
            found: other.type_name(),
        }),
    }
}

/// Unwraps a described value.
pub(crate) fn into_described(value: Value, context: &'static str) -> Result<Described, FieldError> {
    match value {
        Value::Described(d) => Ok(*d),
        other => Err(FieldError::NotDescribed {
            context,
            found: other.type_name(),
        }),
    }
}

/// Reads a composite's fields in order, naming each in its errors.
pub struct FieldReader {
    context: &'static str,
    items: std::vec::IntoIter<Value>,
}

impl FieldReader {
    /// A reader over a described list's items, for the type named `context`.
    pub fn new(context: &'static str, items: Vec<Value>) -> Self {
        Self {
            context,
            items: items.into_iter(),
        }
    }

    /// The next field as it is; null when the list has ended.
    pub fn value(&mut self) -> Value {
        self.items.next().unwrap_or(Value::Null)
    }

    fn wrong(&self, field: &'static str, expected: &'static str, found: &Value) -> FieldError {
        FieldError::WrongType {
            context: self.context,
            field,
            expected,
            found: found.type_name(),
        }
    }

    /// An error for a field whose value the spec does not allow.
    pub fn invalid(&self, field: &'static str, value: Value) -> FieldError {
        FieldError::InvalidValue {
            context: self.context,
            field,
            value,
        }
    }

    /// Turns an absent mandatory field into [`FieldError::Missing`].
    pub fn required<T>(&self, field: &'static str, value: Option<T>) -> Result<T, FieldError> {
        value.ok_or(FieldError::Missing {
            context: self.context,
            field,
        })
    }

    /// A mandatory field read with `read` (one of this reader's typed getters), e.g.
    /// `r.req("handle", FieldReader::uint)`.
    pub fn req<T>(
        &mut self,
        field: &'static str,
        read: fn(&mut Self, &'static str) -> Result<Option<T>, FieldError>,
    ) -> Result<T, FieldError> {
        let value = read(self, field)?;
        self.required(field, value)
    }

    /// A `string` field.
    pub fn string(&mut self, field: &'static str) -> Result<Option<String>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(self.wrong(field, "string", &other)),
        }
    }

    /// An address field (`*address`): a string, or a symbol that some peers send.
    pub fn address(&mut self, field: &'static str) -> Result<Option<String>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::String(s) | Value::Symbol(s) => Ok(Some(s)),
            other => Err(self.wrong(field, "string", &other)),
        }
    }

    /// A `symbol` field.
    pub fn symbol(&mut self, field: &'static str) -> Result<Option<String>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Symbol(s) => Ok(Some(s)),
            other => Err(self.wrong(field, "symbol", &other)),
        }
    }

    /// A `symbol` field with `multiple="true"`: one symbol or an array of them.
    pub fn symbols(&mut self, field: &'static str) -> Result<Vec<String>, FieldError> {
        match self.value() {
            Value::Null => Ok(Vec::new()),
            Value::Symbol(s) => Ok(vec![s]),
            Value::Array(a) if a.element() == ElementType::Symbol && a.descriptor().is_none() => {
                Ok(a.into_items()
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Symbol(s) => Some(s),
                        _ => None,
                    })
                    .collect())
            }
            other => Err(self.wrong(field, "symbol or array of symbols", &other)),
        }
    }

    /// A `boolean` field.
    pub fn boolean(&mut self, field: &'static str) -> Result<Option<bool>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(self.wrong(field, "boolean", &other)),
        }
    }

    /// A `ubyte` field.
    pub fn ubyte(&mut self, field: &'static str) -> Result<Option<u8>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Ubyte(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "ubyte", &other)),
        }
    }

    /// A `ushort` field.
    pub fn ushort(&mut self, field: &'static str) -> Result<Option<u16>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Ushort(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "ushort", &other)),
        }
    }

    /// A `uint` field (also handles, sequence numbers, milliseconds, seconds).
    pub fn uint(&mut self, field: &'static str) -> Result<Option<u32>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Uint(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "uint", &other)),
        }
    }

    /// A `ulong` field.
    pub fn ulong(&mut self, field: &'static str) -> Result<Option<u64>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Ulong(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "ulong", &other)),
        }
    }

    /// A `timestamp` field.
    pub fn timestamp(&mut self, field: &'static str) -> Result<Option<i64>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Timestamp(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "timestamp", &other)),
        }
    }

    /// A `binary` field.
    pub fn binary(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            Value::Binary(v) => Ok(Some(v)),
            other => Err(self.wrong(field, "binary", &other)),
        }
    }

    /// A map field (`fields`, `filter-set`, `node-properties`, unsettled maps).
    pub fn map(&mut self, field: &'static str) -> Result<Fields, FieldError> {
        match self.value() {
            Value::Null => Ok(Vec::new()),
            Value::Map(pairs) => Ok(pairs),
            other => Err(self.wrong(field, "map", &other)),
        }
    }

    /// A field holding a composite type.
    pub fn composite<T: Composite>(
        &mut self,
        _field: &'static str,
    ) -> Result<Option<T>, FieldError> {
        match self.value() {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// `Some(s)` as a `string`, `None` as null.
pub(crate) fn string(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

/// `Some(s)` as a `symbol`, `None` as null.
pub(crate) fn symbol(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::Symbol(s.clone()))
}

/// A `multiple` symbol field: null when empty, otherwise an array (never a lone symbol, which
/// some decoders, fe2o3's among them, refuse where they expect an array).
pub(crate) fn symbols(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Array(Array::symbols(v.iter().cloned()))
    }
}

/// A map field: null when empty.
pub(crate) fn map(v: &Fields) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Map(v.clone())
    }
}

/// A value with a spec default: null when it equals the default, which means the same.
pub(crate) fn unless_default<T: PartialEq + Into<Value>>(v: T, default: T) -> Value {
    if v == default { Value::Null } else { v.into() }
}

/// An optional value of any convertible type.
pub(crate) fn opt<T: Clone + Into<Value>>(v: &Option<T>) -> Value {
    v.clone().map_or(Value::Null, Into::into)
}

/// An optional composite.
pub(crate) fn composite<T: Composite>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, Composite::to_value)
}

#[cfg(test)]
mod tests;
