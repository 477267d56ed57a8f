//! Cross-check of the performatives against fe2o3-amqp-types (the fe2o3 project's typed
//! AMQP definitions, encoded with serde_amqp): each performative is built in both libraries
//! from the same generated fields; our encoding must decode with theirs to their value, and
//! theirs must decode with ours to our value.

mod common;

use docflow_amqp::delivery_state::{Accepted, Modified, Received, Rejected, Released};
use docflow_amqp::performative::{Attach, Disposition, Flow, Open, Transfer};
use docflow_amqp::terminus::{Source, Target};
use docflow_amqp::{
    AmqpError, Composite, DeliveryState, ReceiverSettleMode, Role, SenderSettleMode, Value,
};
use fe2o3_amqp_types::definitions as fd;
use fe2o3_amqp_types::messaging as fm;
use fe2o3_amqp_types::performatives as fp;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_amqp::Value as TheirValue;
use serde_amqp::primitives::{Array as TheirArray, OrderedMap, Symbol};

/// Our primitive value as theirs (the generated fields hold primitives only).
fn value_to_theirs(v: &Value) -> TheirValue {
    let bytes = docflow_amqp::codec::encode_to_vec(v);
    serde_amqp::from_slice(&bytes).expect("primitives decode with serde_amqp")
}

fn symbols_to_theirs(s: &[String]) -> Option<TheirArray<Symbol>> {
    (!s.is_empty()).then(|| TheirArray(s.iter().map(|x| Symbol::from(x.as_str())).collect()))
}

fn fields_to_theirs(f: &[(Value, Value)]) -> Option<fd::Fields> {
    if f.is_empty() {
        return None;
    }
    let mut map = OrderedMap::new();
    for (k, v) in f {
        let Value::Symbol(k) = k else {
            panic!("fields keys are symbols")
        };
        map.insert(Symbol::from(k.as_str()), value_to_theirs(v));
    }
    Some(map)
}

/// Symbol-keyed fields with distinct keys and primitive values.
fn fields() -> impl Strategy<Value = Vec<(Value, Value)>> {
    vec(("[a-z:-]{1,12}", common::primitive()), 0..4).prop_map(|pairs| {
        let mut out: Vec<(Value, Value)> = Vec::new();
        for (k, v) in pairs {
            let k = Value::Symbol(k);
            if !out.iter().any(|(o, _)| *o == k) {
                out.push((k, v));
            }
        }
        out
    })
}

fn symbols() -> impl Strategy<Value = Vec<String>> {
    vec("[A-Za-z:.-]{1,12}", 0..3)
}

/// The error conditions Service Bus uses that fe2o3 keeps as custom symbols.
fn error() -> impl Strategy<Value = AmqpError> {
    (
        prop_oneof![
            Just("com.microsoft:message-lock-lost"),
            Just("com.microsoft:dead-letter"),
            Just("com.microsoft:session-lock-lost"),
        ],
        proptest::option::of(".{0,10}"),
        fields(),
    )
        .prop_map(|(condition, description, info)| AmqpError {
            condition: condition.into(),
            description,
            info,
        })
}

fn error_to_theirs(e: &AmqpError) -> fd::Error {
    fd::Error {
        condition: fd::ErrorCondition::Custom(Symbol::from(e.condition.as_str())),
        description: e.description.clone(),
        info: fields_to_theirs(&e.info).map(Box::new),
    }
}

fn state() -> impl Strategy<Value = DeliveryState> {
    prop_oneof![
        Just(DeliveryState::Accepted(Accepted)),
        Just(DeliveryState::Released(Released)),
        proptest::option::of(error()).prop_map(|error| DeliveryState::Rejected(Rejected { error })),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            fields()
        )
            .prop_map(
                |(delivery_failed, undeliverable_here, message_annotations)| {
                    DeliveryState::Modified(Modified {
                        delivery_failed,
                        undeliverable_here,
                        message_annotations,
                    })
                }
            ),
        (any::<u32>(), any::<u64>()).prop_map(|(section_number, section_offset)| {
            DeliveryState::Received(Received {
                section_number,
                section_offset,
            })
        }),
    ]
}

fn state_to_theirs(s: &DeliveryState) -> fm::DeliveryState {
    match s {
        DeliveryState::Accepted(_) => fm::DeliveryState::Accepted(fm::Accepted {}),
        DeliveryState::Released(_) => fm::DeliveryState::Released(fm::Released {}),
        DeliveryState::Rejected(r) => fm::DeliveryState::Rejected(fm::Rejected {
            error: r.error.as_ref().map(error_to_theirs),
        }),
        DeliveryState::Modified(m) => fm::DeliveryState::Modified(fm::Modified {
            delivery_failed: m.delivery_failed,
            undeliverable_here: m.undeliverable_here,
            message_annotations: fields_to_theirs(&m.message_annotations),
        }),
        DeliveryState::Received(r) => fm::DeliveryState::Received(fm::Received {
            section_number: r.section_number,
            section_offset: r.section_offset,
        }),
        DeliveryState::Other(_) => unreachable!("not generated"),
    }
}

fn role_to_theirs(r: Role) -> fd::Role {
    match r {
        Role::Sender => fd::Role::Sender,
        Role::Receiver => fd::Role::Receiver,
    }
}

fn rcv_to_theirs(m: ReceiverSettleMode) -> fd::ReceiverSettleMode {
    match m {
        ReceiverSettleMode::First => fd::ReceiverSettleMode::First,
        ReceiverSettleMode::Second => fd::ReceiverSettleMode::Second,
    }
}

fn role() -> impl Strategy<Value = Role> {
    any::<bool>().prop_map(|b| if b { Role::Receiver } else { Role::Sender })
}

fn rcv_mode() -> impl Strategy<Value = ReceiverSettleMode> {
    prop_oneof![
        Just(ReceiverSettleMode::First),
        Just(ReceiverSettleMode::Second)
    ]
}

/// Ours encodes and theirs decodes to `theirs`; theirs encodes and ours decodes to `ours`.
fn check<O, T>(ours: &O, theirs: &T) -> Result<(), TestCaseError>
where
    O: Composite + PartialEq + std::fmt::Debug,
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut ours_bytes = Vec::new();
    ours.encode(&mut ours_bytes);
    let decoded: T = serde_amqp::from_slice(&ours_bytes)
        .map_err(|e| TestCaseError::fail(format!("fe2o3 refused {ours_bytes:02x?}: {e}")))?;
    prop_assert_eq!(&decoded, theirs, "ours: {:02x?}", ours_bytes);
    let their_bytes = serde_amqp::to_vec(theirs)
        .map_err(|e| TestCaseError::fail(format!("fe2o3 cannot encode: {e}")))?;
    let (back, used) = O::decode(&their_bytes)
        .map_err(|e| TestCaseError::fail(format!("we refused {their_bytes:02x?}: {e}")))?;
    prop_assert_eq!(used, their_bytes.len());
    prop_assert_eq!(&back, ours, "theirs: {:02x?}", their_bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn attach_agrees(
        (name, handle, role, snd, rcv) in (".{0,10}", any::<u32>(), role(), 0u8..3, rcv_mode()),
        source in proptest::option::of((proptest::option::of(".{0,12}"), vec(("[a-z:-]{1,30}", proptest::option::of(".{0,6}")), 0..3), symbols())),
        target in proptest::option::of(proptest::option::of(".{0,12}")),
        (initial_delivery_count, max_message_size) in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u64>())),
        (offered, properties) in (symbols(), fields()),
    ) {
        let snd_settle_mode = [SenderSettleMode::Unsettled, SenderSettleMode::Settled, SenderSettleMode::Mixed][usize::from(snd)];
        let source = source.map(|(address, filter, capabilities)| {
            let mut unique: Vec<(Value, Value)> = Vec::new();
            for (k, v) in filter {
                let k = Value::Symbol(k);
                if !unique.iter().any(|(u, _)| *u == k) {
                    unique.push((k, v.map_or(Value::Null, Value::String)));
                }
            }
            Source { address, filter: unique, capabilities, ..Source::default() }
        });
        let target = target.map(|address| Target { address, ..Target::default() });
        let ours = Attach {
            name: name.clone(),
            handle,
            role,
            snd_settle_mode,
            rcv_settle_mode: rcv,
            source: source.clone(),
            target: target.clone(),
            initial_delivery_count,
            max_message_size,
            offered_capabilities: offered.clone(),
            properties: properties.clone(),
            ..Attach::default()
        };
        let theirs = fp::Attach {
            name,
            handle: fd::Handle(handle),
            role: role_to_theirs(role),
            snd_settle_mode: [fd::SenderSettleMode::Unsettled, fd::SenderSettleMode::Settled, fd::SenderSettleMode::Mixed][usize::from(snd)].clone(),
            rcv_settle_mode: rcv_to_theirs(rcv),
            source: source.map(|s| {
                let filter = (!s.filter.is_empty()).then(|| {
                    let mut map = OrderedMap::new();
                    for (k, v) in &s.filter {
                        let Value::Symbol(k) = k else { unreachable!() };
                        map.insert(Symbol::from(k.as_str()), value_to_theirs(v));
                    }
                    map
                });
                Box::new(fm::Source {
                    address: s.address,
                    durable: fm::TerminusDurability::None,
                    expiry_policy: fm::TerminusExpiryPolicy::SessionEnd,
                    timeout: 0,
                    dynamic: false,
                    dynamic_node_properties: None,
                    distribution_mode: None,
                    filter,
                    default_outcome: None,
                    outcomes: None,
                    capabilities: symbols_to_theirs(&s.capabilities),
                })
            }),
            target: target.map(|t| Box::new(fm::TargetArchetype::Target(fm::Target {
                address: t.address,
                durable: fm::TerminusDurability::None,
                expiry_policy: fm::TerminusExpiryPolicy::SessionEnd,
                timeout: 0,
                dynamic: false,
                dynamic_node_properties: None,
                capabilities: None,
            }))),
            unsettled: None,
            incomplete_unsettled: false,
            initial_delivery_count,
            max_message_size,
            offered_capabilities: symbols_to_theirs(&offered),
            desired_capabilities: None,
            properties: fields_to_theirs(&properties),
        };
        check(&ours, &theirs)?;
    }

    #[test]
    fn transfer_agrees(
        (handle, delivery_id, delivery_tag, message_format, settled) in (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(vec(any::<u8>(), 0..32)),
            proptest::option::of(prop_oneof![Just(0u32), Just(0x8001_3700), any::<u32>()]),
            proptest::option::of(any::<bool>()),
        ),
        (more, rcv_settle_mode, state) in (any::<bool>(), proptest::option::of(rcv_mode()), proptest::option::of(state())),
        (resume, aborted, batchable) in (any::<bool>(), any::<bool>(), any::<bool>()),
    ) {
        let ours = Transfer {
            handle, delivery_id, delivery_tag: delivery_tag.clone(), message_format, settled, more,
            rcv_settle_mode, state: state.clone(), resume, aborted, batchable,
        };
        let theirs = fp::Transfer {
            handle: fd::Handle(handle),
            delivery_id,
            delivery_tag: delivery_tag.map(Into::into),
            message_format,
            settled,
            more,
            rcv_settle_mode: rcv_settle_mode.map(rcv_to_theirs),
            state: state.as_ref().map(state_to_theirs),
            resume,
            aborted,
            batchable,
        };
        check(&ours, &theirs)?;
    }

    #[test]
    fn disposition_agrees(
        role in role(),
        first in any::<u32>(),
        last in proptest::option::of(any::<u32>()),
        settled in any::<bool>(),
        state in proptest::option::of(state()),
        batchable in any::<bool>(),
    ) {
        let ours = Disposition { role, first, last, settled, state: state.clone(), batchable };
        let theirs = fp::Disposition {
            role: role_to_theirs(role),
            first,
            last,
            settled,
            state: state.as_ref().map(state_to_theirs),
            batchable,
        };
        check(&ours, &theirs)?;
    }

    #[test]
    fn flow_agrees(
        (next_incoming_id, incoming_window, next_outgoing_id, outgoing_window) in (
            proptest::option::of(any::<u32>()), any::<u32>(), any::<u32>(), any::<u32>()),
        (handle, delivery_count, link_credit, available) in (
            proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
        (drain, echo, properties) in (any::<bool>(), any::<bool>(), fields()),
    ) {
        let ours = Flow {
            next_incoming_id, incoming_window, next_outgoing_id, outgoing_window, handle,
            delivery_count, link_credit, available, drain, echo, properties: properties.clone(),
        };
        let theirs = fp::Flow {
            next_incoming_id, incoming_window, next_outgoing_id, outgoing_window,
            handle: handle.map(fd::Handle), delivery_count, link_credit, available, drain, echo,
            properties: fields_to_theirs(&properties),
        };
        check(&ours, &theirs)?;
    }

    #[test]
    fn open_agrees(
        container_id in ".{0,12}",
        hostname in proptest::option::of("[a-z.]{0,12}"),
        max_frame_size in prop_oneof![Just(u32::MAX), 512u32..70_000],
        channel_max in any::<u16>(),
        idle_time_out in proptest::option::of(any::<u32>()),
        (offered, desired, properties) in (symbols(), symbols(), fields()),
    ) {
        let ours = Open {
            container_id: container_id.clone(), hostname: hostname.clone(), max_frame_size,
            channel_max, idle_time_out, offered_capabilities: offered.clone(),
            desired_capabilities: desired.clone(), properties: properties.clone(),
            ..Open::default()
        };
        let theirs = fp::Open {
            container_id, hostname,
            max_frame_size: fp::MaxFrameSize(max_frame_size),
            channel_max: fp::ChannelMax(channel_max),
            idle_time_out,
            outgoing_locales: None,
            incoming_locales: None,
            offered_capabilities: symbols_to_theirs(&offered),
            desired_capabilities: symbols_to_theirs(&desired),
            properties: fields_to_theirs(&properties),
        };
        check(&ours, &theirs)?;
    }
}
