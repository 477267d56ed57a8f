//! Link termini (part 3, section 3.5): the `source` (0x28) and `target` (0x29) of an attach.
//! Their address names the Service Bus entity; a session receiver's `source.filter` carries
//! `com.microsoft:session-filter`.

use crate::delivery_state::DeliveryState;
use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader, Fields};
use crate::types::Value;

/// What state a terminus keeps across detaches (section 3.5.5), a `uint`; `None` is the
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminusDurability {
    /// 0: nothing survives.
    #[default]
    None,
    /// 1: the terminus's configuration survives.
    Configuration,
    /// 2: configuration and unsettled state survive.
    UnsettledState,
}

impl TerminusDurability {
    fn read(r: &mut FieldReader) -> Result<Self, FieldError> {
        match r.uint("durable")? {
            None | Some(0) => Ok(TerminusDurability::None),
            Some(1) => Ok(TerminusDurability::Configuration),
            Some(2) => Ok(TerminusDurability::UnsettledState),
            Some(v) => Err(r.invalid("durable", Value::Uint(v))),
        }
    }

    fn write(self) -> Value {
        match self {
            TerminusDurability::None => Value::Null,
            TerminusDurability::Configuration => Value::Uint(1),
            TerminusDurability::UnsettledState => Value::Uint(2),
        }
    }
}

/// The default `expiry-policy` of both termini (section 3.5.6).
pub const DEFAULT_EXPIRY_POLICY: &str = "session-end";

/// The `source` of a link (section 3.5.3): where messages come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The node's address: the entity path as the client wrote it.
    pub address: Option<String>,
    /// Default [`TerminusDurability::None`].
    pub durable: TerminusDurability,
    /// A symbol; default [`DEFAULT_EXPIRY_POLICY`].
    pub expiry_policy: String,
    /// Seconds; default 0.
    pub timeout: u32,
    /// Ask the peer to create the node; default false.
    pub dynamic: bool,
    /// Properties of a dynamically created node.
    pub dynamic_node_properties: Fields,
    /// A symbol such as `move` or `copy`.
    pub distribution_mode: Option<String>,
    /// The filter set: `com.microsoft:session-filter` among others.
    pub filter: Fields,
    /// The outcome of deliveries settled without one.
    pub default_outcome: Option<DeliveryState>,
    /// Outcomes the source supports.
    pub outcomes: Vec<String>,
    /// Capabilities of the source.
    pub capabilities: Vec<String>,
}

impl Default for Source {
    fn default() -> Self {
        Self {
            address: None,
            durable: TerminusDurability::None,
            expiry_policy: DEFAULT_EXPIRY_POLICY.to_owned(),
            timeout: 0,
            dynamic: false,
            dynamic_node_properties: Vec::new(),
            distribution_mode: None,
            filter: Vec::new(),
            default_outcome: None,
            outcomes: Vec::new(),
            capabilities: Vec::new(),
        }
    }
}

fn expiry_policy(r: &mut FieldReader) -> Result<String, FieldError> {
    Ok(r.symbol("expiry-policy")?
        .unwrap_or_else(|| DEFAULT_EXPIRY_POLICY.to_owned()))
}

fn write_expiry_policy(policy: &str) -> Value {
    if policy == DEFAULT_EXPIRY_POLICY {
        Value::Null
    } else {
        Value::Symbol(policy.to_owned())
    }
}

impl Composite for Source {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x28,
        name: "amqp:source:list",
    };
    const NAME: &'static str = "source";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::string(&self.address),
            self.durable.write(),
            write_expiry_policy(&self.expiry_policy),
            fields::unless_default(self.timeout, 0),
            fields::unless_default(self.dynamic, false),
            fields::map(&self.dynamic_node_properties),
            fields::symbol(&self.distribution_mode),
            fields::map(&self.filter),
            DeliveryState::write(&self.default_outcome),
            fields::symbols(&self.outcomes),
            fields::symbols(&self.capabilities),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            address: r.address("address")?,
            durable: TerminusDurability::read(r)?,
            expiry_policy: expiry_policy(r)?,
            timeout: r.uint("timeout")?.unwrap_or(0),
            dynamic: r.boolean("dynamic")?.unwrap_or(false),
            dynamic_node_properties: r.map("dynamic-node-properties")?,
            distribution_mode: r.symbol("distribution-mode")?,
            filter: r.map("filter")?,
            default_outcome: DeliveryState::read(r)?,
            outcomes: r.symbols("outcomes")?,
            capabilities: r.symbols("capabilities")?,
        })
    }
}

/// The `target` of a link (section 3.5.4): where messages go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The node's address: the entity path as the client wrote it.
    pub address: Option<String>,
    /// Default [`TerminusDurability::None`].
    pub durable: TerminusDurability,
    /// A symbol; default [`DEFAULT_EXPIRY_POLICY`].
    pub expiry_policy: String,
    /// Seconds; default 0.
    pub timeout: u32,
    /// Ask the peer to create the node; default false.
    pub dynamic: bool,
    /// Properties of a dynamically created node.
    pub dynamic_node_properties: Fields,
    /// Capabilities of the target.
    pub capabilities: Vec<String>,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            address: None,
            durable: TerminusDurability::None,
            expiry_policy: DEFAULT_EXPIRY_POLICY.to_owned(),
            timeout: 0,
            dynamic: false,
            dynamic_node_properties: Vec::new(),
            capabilities: Vec::new(),
        }
    }
}

impl Composite for Target {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x29,
        name: "amqp:target:list",
    };
    const NAME: &'static str = "target";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::string(&self.address),
            self.durable.write(),
            write_expiry_policy(&self.expiry_policy),
            fields::unless_default(self.timeout, 0),
            fields::unless_default(self.dynamic, false),
            fields::map(&self.dynamic_node_properties),
            fields::symbols(&self.capabilities),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            address: r.address("address")?,
            durable: TerminusDurability::read(r)?,
            expiry_policy: expiry_policy(r)?,
            timeout: r.uint("timeout")?.unwrap_or(0),
            dynamic: r.boolean("dynamic")?.unwrap_or(false),
            dynamic_node_properties: r.map("dynamic-node-properties")?,
            capabilities: r.symbols("capabilities")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_to_vec;

    // Section 3.5.3: source [address, durable, expiry-policy, timeout, dynamic,
    // dynamic-node-properties, distribution-mode, filter, ...]; defaults become nulls.
    #[test]
    fn session_source_with_filter() {
        let source = Source {
            address: Some("q".into()),
            filter: vec![(
                Value::symbol("com.microsoft:session-filter"),
                Value::string("s1"),
            )],
            ..Source::default()
        };
        let bytes = encode_to_vec(&source.to_value());
        let mut expected = vec![0x00, 0x53, 0x28, 0xc0, 0x2f, 0x08, 0xa1, 0x01, b'q'];
        expected.extend([0x40; 6]);
        expected.extend([0xc1, 0x23, 0x02, 0xa3, 0x1c]);
        expected.extend(b"com.microsoft:session-filter");
        expected.extend([0xa1, 0x02, b's', b'1']);
        assert_eq!(bytes, expected);
        assert_eq!(Source::decode(&bytes).unwrap(), (source, bytes.len()));
    }

    #[test]
    fn target_defaults_are_omitted_and_restored() {
        let target = Target {
            address: Some("/q".into()),
            ..Target::default()
        };
        let bytes = encode_to_vec(&target.to_value());
        assert_eq!(
            bytes,
            [0x00, 0x53, 0x29, 0xc0, 0x05, 0x01, 0xa1, 0x02, b'/', b'q']
        );
        let (decoded, _) = Target::decode(&bytes).unwrap();
        assert_eq!(decoded.expiry_policy, "session-end");
        assert_eq!(decoded, target);
        let durable = Target {
            durable: TerminusDurability::UnsettledState,
            expiry_policy: "never".into(),
            ..Target::default()
        };
        let bytes = encode_to_vec(&durable.to_value());
        assert_eq!(Target::decode(&bytes).unwrap().0, durable);
    }

    #[test]
    fn symbol_addresses_and_bad_durability() {
        let v = Value::described(0x28, Value::List(vec![Value::symbol("q")]));
        assert_eq!(Source::from_value(v).unwrap().address.as_deref(), Some("q"));
        let v = Value::described(0x29, Value::List(vec![Value::Null, Value::Uint(7)]));
        assert!(matches!(
            Target::from_value(v),
            Err(FieldError::InvalidValue {
                context: "target",
                field: "durable",
                ..
            })
        ));
    }
}
