//! Decoding values of every form of part 1, section 1.6, from bytes that may be hostile.
//!
//! Guarantees: no panic on any input; a declared size larger than the bytes that remain is an
//! error before anything is allocated; element counts are checked against the bytes that can
//! hold them, and zero-width array elements (null, true, uint0, list0...) share one budget of
//! one element per input byte (at least [`ZERO_WIDTH_FLOOR`]) across the whole decode, nested
//! arrays included, so memory stays proportional to the input; nesting deeper than
//! [`MAX_DEPTH`] is an error.

use thiserror::Error;

use super::code;
use crate::types::{Array, Described, ElementType, Value};

/// How deeply lists, maps, arrays and described values may nest before decoding stops: deep
/// enough for any real AMQP frame (a transfer's state is about 4 levels), small enough that a
/// hostile frame cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// The smallest budget of zero-width array elements a decode gets, whatever the input's
/// length: a value re-encoded in compact forms is shorter than it was, and with a budget of
/// exactly its length an array of nulls that decoded once would not decode again.
pub const ZERO_WIDTH_FLOOR: usize = 64 * 1024;

/// The budget of zero-width array elements for an input of `len` bytes.
pub(crate) fn zero_width_budget(len: usize) -> usize {
    len.max(ZERO_WIDTH_FLOOR)
}

/// The most elements reserved ahead for a compound: beyond it the vector grows as elements
/// actually decode. A declared count is only checked against the bytes, and a [`Value`] is
/// far larger than a byte, so reserving the whole count at each of 64 nested levels would
/// reserve gigabytes for a frame whose values fail on their first element.
const PREALLOCATE: usize = 256;

/// Why bytes could not be decoded as an AMQP value; every variant names the byte offset (from
/// the start of the decoded buffer) where the problem starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ends inside a value.
    #[error("truncated input at byte {offset}: {what} needs {needed} bytes, {available} remain")]
    Truncated {
        /// Where the incomplete item starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that remain.
        available: usize,
    },
    /// A format code that AMQP 1.0 does not define.
    #[error("unknown format code 0x{code:02x} at byte {offset}")]
    UnknownFormatCode {
        /// Where the code is.
        offset: usize,
        /// The code.
        code: u8,
    },
    /// A compound's declared size cannot even hold its count field.
    #[error("{what} at byte {offset} declares size {size}, smaller than its count field")]
    SizeTooSmall {
        /// Where the compound starts.
        offset: usize,
        /// Which kind of compound.
        what: &'static str,
        /// The declared size.
        size: usize,
    },
    /// A compound declares more elements than its bytes can hold.
    #[error("{what} at byte {offset} declares {count} elements in {size} bytes")]
    CountTooLarge {
        /// Where the compound starts.
        offset: usize,
        /// Which kind of compound.
        what: &'static str,
        /// The declared count.
        count: usize,
        /// The bytes available to the elements.
        size: usize,
    },
    /// A compound's elements did not use exactly its declared size.
    #[error("{what} at byte {offset} declares {declared} bytes of elements, they use {used}")]
    SizeMismatch {
        /// Where the compound starts.
        offset: usize,
        /// Which kind of compound.
        what: &'static str,
        /// Bytes declared for the elements.
        declared: usize,
        /// Bytes the elements used.
        used: usize,
    },
    /// A map with an odd number of keys and values.
    #[error("map at byte {offset} has an odd element count {count}")]
    OddMapCount {
        /// Where the map starts.
        offset: usize,
        /// The declared count.
        count: usize,
    },
    /// A `boolean` octet other than 0 or 1.
    #[error("boolean at byte {offset} has octet 0x{byte:02x}, not 0x00 or 0x01")]
    InvalidBoolean {
        /// Where the octet is.
        offset: usize,
        /// The octet.
        byte: u8,
    },
    /// A `char` that is not a Unicode scalar value.
    #[error("char at byte {offset} is 0x{value:08x}, not a Unicode scalar value")]
    InvalidChar {
        /// Where the value is.
        offset: usize,
        /// The UTF-32 value.
        value: u32,
    },
    /// A `string` that is not UTF-8.
    #[error("string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A `symbol` with non-ASCII bytes.
    #[error("symbol at byte {offset} is not ASCII")]
    NonAsciiSymbol {
        /// Where the symbol's bytes start.
        offset: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("value at byte {offset} nests deeper than {limit} levels")]
    TooDeep {
        /// Where the too-deep value starts.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// An array element constructor that is itself described twice, which [`Array`] cannot
    /// represent (and no AMQP peer sends).
    #[error("array at byte {offset} has a doubly described element constructor")]
    NestedArrayDescriptor {
        /// Where the constructor is.
        offset: usize,
    },
}

/// Decodes one value from the start of `input`; returns it with the number of bytes it used.
///
/// Use it on frame bodies and message sections; bytes after the value are left for the
/// caller (a transfer's payload follows its performative).
pub fn decode(input: &[u8]) -> Result<(Value, usize), DecodeError> {
    decode_from(input, 0, &mut zero_width_budget(input.len()))
}

/// Decodes one value starting at `start`, so that error offsets are relative to the whole of
/// `input`; returns the value and the offset just after it.
///
/// `zero_width` is the number of zero-width array elements the value may still hold; a caller
/// decoding several values from one input (a message's sections) passes the same budget to
/// each, so that together they hold at most one such element per input byte.
pub(crate) fn decode_from(
    input: &[u8],
    start: usize,
    zero_width: &mut usize,
) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder {
        input,
        pos: start,
        limit: input.len(),
        zero_width: *zero_width,
    };
    let value = d.value(0);
    *zero_width = d.zero_width;
    Ok((value?, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    /// Reads stop here: the end of the input, or of the compound being read.
    limit: usize,
    /// Zero-width array elements that may still be decoded.
    zero_width: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.limit.saturating_sub(self.pos);
        if n > available {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available,
            });
        }
        let input: &'a [u8] = self.input;
        let bytes = &input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let code = self.u8("format code")?;
        if code == code::DESCRIBED {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    offset,
                    limit: MAX_DEPTH,
                });
            }
            let descriptor = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            return Ok(Value::Described(Box::new(Described { descriptor, value })));
        }
        self.body(code, offset, depth)
    }

    /// The value after its format code (also how array elements are read).
    fn body(&mut self, code: u8, offset: usize, depth: usize) -> Result<Value, DecodeError> {
        Ok(match code {
            code::NULL => Value::Null,
            code::TRUE => Value::Boolean(true),
            code::FALSE => Value::Boolean(false),
            code::BOOLEAN => {
                let at = self.pos;
                match self.u8("boolean")? {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    byte => return Err(DecodeError::InvalidBoolean { offset: at, byte }),
                }
            }
            code::UBYTE => Value::Ubyte(self.u8("ubyte")?),
            code::USHORT => Value::Ushort(u16::from_be_bytes(self.array("ushort")?)),
            code::UINT0 => Value::Uint(0),
            code::SMALLUINT => Value::Uint(u32::from(self.u8("smalluint")?)),
            code::UINT => Value::Uint(self.u32("uint")?),
            code::ULONG0 => Value::Ulong(0),
            code::SMALLULONG => Value::Ulong(u64::from(self.u8("smallulong")?)),
            code::ULONG => Value::Ulong(u64::from_be_bytes(self.array("ulong")?)),
            code::BYTE => Value::Byte(i8::from_be_bytes(self.array("byte")?)),
            code::SHORT => Value::Short(i16::from_be_bytes(self.array("short")?)),
            code::SMALLINT => Value::Int(i32::from(i8::from_be_bytes(self.array("smallint")?))),
            code::INT => Value::Int(i32::from_be_bytes(self.array("int")?)),
            code::SMALLLONG => Value::Long(i64::from(i8::from_be_bytes(self.array("smalllong")?))),
            code::LONG => Value::Long(i64::from_be_bytes(self.array("long")?)),
            code::FLOAT => Value::Float(f32::from_bits(self.u32("float")?)),
            code::DOUBLE => {
                Value::Double(f64::from_bits(u64::from_be_bytes(self.array("double")?)))
            }
            code::DECIMAL32 => Value::Decimal32(self.array("decimal32")?),
            code::DECIMAL64 => Value::Decimal64(self.array("decimal64")?),
            code::DECIMAL128 => Value::Decimal128(self.array("decimal128")?),
            code::CHAR => {
                let at = self.pos;
                let value = self.u32("char")?;
                Value::Char(
                    char::from_u32(value).ok_or(DecodeError::InvalidChar { offset: at, value })?,
                )
            }
            code::TIMESTAMP => Value::Timestamp(i64::from_be_bytes(self.array("timestamp")?)),
            code::UUID => Value::Uuid(self.array("uuid")?),
            code::VBIN8 | code::VBIN32 => Value::Binary(self.variable(code, "binary")?.to_vec()),
            code::STR8 | code::STR32 => {
                let bytes = self.variable(code, "string")?;
                let at = self.pos - bytes.len();
                let s = std::str::from_utf8(bytes)
                    .map_err(|_| DecodeError::InvalidUtf8 { offset: at })?;
                Value::String(s.to_owned())
            }
            code::SYM8 | code::SYM32 => {
                let bytes = self.variable(code, "symbol")?;
                let at = self.pos - bytes.len();
                if !bytes.is_ascii() {
                    return Err(DecodeError::NonAsciiSymbol { offset: at });
                }
                Value::Symbol(bytes.iter().map(|&b| char::from(b)).collect())
            }
            code::LIST0 => Value::List(Vec::new()),
            code::LIST8
            | code::LIST32
            | code::MAP8
            | code::MAP32
            | code::ARRAY8
            | code::ARRAY32 => self.compound(code, offset, depth)?,
            code => return Err(DecodeError::UnknownFormatCode { offset, code }),
        })
    }

    fn variable(&mut self, code: u8, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = if code & 0xf0 == 0xa0 {
            usize::from(self.u8(what)?)
        } else {
            self.u32(what)? as usize
        };
        self.take(len, what)
    }

    fn compound(&mut self, code: u8, offset: usize, depth: usize) -> Result<Value, DecodeError> {
        let what = match code {
            code::LIST8 | code::LIST32 => "list",
            code::MAP8 | code::MAP32 => "map",
            _ => "array",
        };
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep {
                offset,
                limit: MAX_DEPTH,
            });
        }
        let wide = matches!(code, code::LIST32 | code::MAP32 | code::ARRAY32);
        let (size, count_width) = if wide {
            (self.u32(what)? as usize, 4)
        } else {
            (usize::from(self.u8(what)?), 1)
        };
        let available = self.limit.saturating_sub(self.pos);
        if size > available {
            return Err(DecodeError::Truncated {
                offset,
                what,
                needed: size,
                available,
            });
        }
        if size < count_width {
            return Err(DecodeError::SizeTooSmall { offset, what, size });
        }
        let count = if wide {
            self.u32(what)? as usize
        } else {
            usize::from(self.u8(what)?)
        };
        let declared = size - count_width;
        let outer_limit = self.limit;
        let start = self.pos;
        self.limit = start + declared;
        let value = match what {
            "list" => self.list(count, offset, declared, depth).map(Value::List),
            "map" => self.map(count, offset, declared, depth).map(Value::Map),
            _ => self
                .array_body(count, offset, declared, depth)
                .map(Value::Array),
        };
        self.limit = outer_limit;
        let value = value?;
        let used = self.pos - start;
        if used != declared {
            return Err(DecodeError::SizeMismatch {
                offset,
                what,
                declared,
                used,
            });
        }
        Ok(value)
    }

    fn list(
        &mut self,
        count: usize,
        offset: usize,
        size: usize,
        depth: usize,
    ) -> Result<Vec<Value>, DecodeError> {
        if count > size {
            return Err(DecodeError::CountTooLarge {
                offset,
                what: "list",
                count,
                size,
            });
        }
        let mut items = Vec::with_capacity(count.min(PREALLOCATE));
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    fn map(
        &mut self,
        count: usize,
        offset: usize,
        size: usize,
        depth: usize,
    ) -> Result<Vec<(Value, Value)>, DecodeError> {
        if !count.is_multiple_of(2) {
            return Err(DecodeError::OddMapCount { offset, count });
        }
        if count > size {
            return Err(DecodeError::CountTooLarge {
                offset,
                what: "map",
                count,
                size,
            });
        }
        let mut pairs = Vec::with_capacity((count / 2).min(PREALLOCATE));
        for _ in 0..count / 2 {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            pairs.push((key, value));
        }
        Ok(pairs)
    }

    fn array_body(
        &mut self,
        count: usize,
        offset: usize,
        size: usize,
        depth: usize,
    ) -> Result<Array, DecodeError> {
        // Zero-width elements (null, true, uint0, list0...) take no bytes, so the size cannot
        // bound them: one element per byte of the whole input keeps memory proportional.
        if count > zero_width_budget(self.input.len()) {
            return Err(DecodeError::CountTooLarge {
                offset,
                what: "array",
                count,
                size,
            });
        }
        let mut constructor_at = self.pos;
        let mut element_code = self.u8("array constructor")?;
        let mut descriptor = None;
        if element_code == code::DESCRIBED {
            descriptor = Some(self.value(depth + 1)?);
            constructor_at = self.pos;
            element_code = self.u8("array constructor")?;
            if element_code == code::DESCRIBED {
                return Err(DecodeError::NestedArrayDescriptor {
                    offset: constructor_at,
                });
            }
        }
        let element = element_type(element_code).ok_or(DecodeError::UnknownFormatCode {
            offset: constructor_at,
            code: element_code,
        })?;
        // Elements of these codes take no bytes: without a shared budget, nested arrays (or
        // many message sections) of them would hold input-length elements each.
        let zero_width = matches!(
            element_code,
            code::NULL | code::TRUE | code::FALSE | code::UINT0 | code::ULONG0 | code::LIST0
        );
        if zero_width {
            if count > self.zero_width {
                return Err(DecodeError::CountTooLarge {
                    offset,
                    what: "array",
                    count,
                    size,
                });
            }
            self.zero_width -= count;
        }
        let mut items = Vec::with_capacity(count.min(size).min(PREALLOCATE));
        for _ in 0..count {
            let at = self.pos;
            items.push(self.body(element_code, at, depth + 1)?);
        }
        // `body` returns, for each code, a value of the type `element_type` names for it.
        Ok(Array::from_decoded(descriptor, element, items))
    }
}

/// The element type a format code produces (`None` for unknown codes and 0x00).
fn element_type(code: u8) -> Option<ElementType> {
    Some(match code {
        code::NULL => ElementType::Null,
        code::TRUE | code::FALSE | code::BOOLEAN => ElementType::Boolean,
        code::UBYTE => ElementType::Ubyte,
        code::USHORT => ElementType::Ushort,
        code::UINT0 | code::SMALLUINT | code::UINT => ElementType::Uint,
        code::ULONG0 | code::SMALLULONG | code::ULONG => ElementType::Ulong,
        code::BYTE => ElementType::Byte,
        code::SHORT => ElementType::Short,
        code::SMALLINT | code::INT => ElementType::Int,
        code::SMALLLONG | code::LONG => ElementType::Long,
        code::FLOAT => ElementType::Float,
        code::DOUBLE => ElementType::Double,
        code::DECIMAL32 => ElementType::Decimal32,
        code::DECIMAL64 => ElementType::Decimal64,
        code::DECIMAL128 => ElementType::Decimal128,
        code::CHAR => ElementType::Char,
        code::TIMESTAMP => ElementType::Timestamp,
        code::UUID => ElementType::Uuid,
        code::VBIN8 | code::VBIN32 => ElementType::Binary,
        code::STR8 | code::STR32 => ElementType::String,
        code::SYM8 | code::SYM32 => ElementType::Symbol,
        code::LIST0 | code::LIST8 | code::LIST32 => ElementType::List,
        code::MAP8 | code::MAP32 => ElementType::Map,
        code::ARRAY8 | code::ARRAY32 => ElementType::Array,
        _ => return None,
    })
}
