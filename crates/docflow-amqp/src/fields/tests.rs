//! Unit tests of the described-list plumbing.

use super::*;
use crate::definitions::AmqpError;

// Part 1, section 1.5: a descriptor is the numeric code or the symbolic name.
#[test]
fn descriptors_match_by_code_or_name() {
    let d = AmqpError::DESCRIPTOR;
    assert!(d.matches(&Value::Ulong(0x1d)));
    assert!(d.matches(&Value::symbol("amqp:error:list")));
    assert!(!d.matches(&Value::Uint(0x1d)));
    assert!(!d.matches(&Value::string("amqp:error:list")));
}

// Part 1, section 1.4: trailing nulls of a composite may be left off; inner ones stay.
#[test]
fn to_value_trims_only_trailing_nulls() {
    let e = AmqpError {
        condition: "c".into(),
        description: None,
        info: vec![(Value::symbol("k"), Value::Null)],
    };
    let Value::Described(d) = e.to_value() else {
        panic!("not described")
    };
    let Value::List(items) = d.value else {
        panic!("not a list")
    };
    assert_eq!(items.len(), 3);
    assert_eq!(items[1], Value::Null);
    let bare = AmqpError::new("c", "").to_value();
    let Value::Described(d) = bare else {
        panic!("not described")
    };
    assert_eq!(
        d.value,
        Value::List(vec![Value::symbol("c"), Value::string("")])
    );
}

#[test]
fn reader_names_fields_and_reads_multiple_symbols() {
    let mut r = FieldReader::new(
        "open",
        vec![
            Value::symbol("one"),
            Value::Array(Array::symbols(["a", "b"])),
            Value::Uint(1),
        ],
    );
    assert_eq!(r.symbols("outgoing-locales").unwrap(), ["one"]);
    assert_eq!(r.symbols("incoming-locales").unwrap(), ["a", "b"]);
    assert_eq!(
        r.req("hostname", FieldReader::string).unwrap_err(),
        FieldError::WrongType {
            context: "open",
            field: "hostname",
            expected: "string",
            found: "uint"
        }
    );
    // Past the end every field reads as null.
    assert_eq!(r.value(), Value::Null);
    assert_eq!(r.map("properties").unwrap(), Vec::new());
    assert_eq!(
        r.req("container-id", FieldReader::string).unwrap_err(),
        FieldError::Missing {
            context: "open",
            field: "container-id"
        }
    );
}

#[test]
fn described_lists_are_checked_for_shape() {
    assert_eq!(
        AmqpError::from_value(Value::described(0x1d, Value::Null)).unwrap_err(),
        FieldError::WrongShape {
            context: "error",
            expected: "list",
            found: "null"
        }
    );
    assert_eq!(
        AmqpError::from_value(Value::described(0x1e, Value::List(vec![]))).unwrap_err(),
        FieldError::UnexpectedDescriptor {
            context: "error",
            descriptor: Value::Ulong(0x1e)
        }
    );
    assert_eq!(
        AmqpError::from_value(Value::Null).unwrap_err(),
        FieldError::NotDescribed {
            context: "error",
            found: "null"
        }
    );
    assert_eq!(symbols(&[]), Value::Null);
    assert_eq!(map(&Vec::new()), Value::Null);
    assert_eq!(unless_default(5u32, 5), Value::Null);
    assert_eq!(unless_default(6u32, 5), Value::Uint(6));
}
