//! What the real host does with a handler's outputs (§2.2–2.4), as plain functions.
//!
//! docflow's own responses are checked against these rules in tests, and a local host applies
//! them so that whatever works locally works on Azure.

use base64::Engine as _;
use serde_json::Value;

/// Whether .NET's `Convert.FromBase64String` would accept `s` (white space is ignored).
pub fn is_dotnet_base64(s: &str) -> bool {
    let compact: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    if !compact.len().is_multiple_of(4) {
        return false;
    }
    let pad = compact.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return false;
    }
    compact[..compact.len() - pad]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn dotnet_base64_decode(s: &str) -> Vec<u8> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap_or_default()
}

/// `JToken.ToString()`: indented JSON (Newtonsoft's default indentation is two spaces).
fn indented(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("a JSON value serializes")
}

/// The message bodies the Service Bus output binding sends for an `Outputs` value (§2.3).
pub fn service_bus_bodies(value: &Value) -> Vec<Vec<u8>> {
    match value {
        Value::Null => Vec::new(),
        // GetBindingValue: a valid base64 string becomes byte[], whose ToString() is the body.
        Value::String(s) if is_dotnet_base64(s) => vec![b"System.Byte[]".to_vec()],
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => items.iter().map(element_body).collect(),
            Ok(obj @ Value::Object(_)) => vec![indented(&obj)],
            _ => vec![s.clone().into_bytes()],
        },
        Value::Array(items) => items.iter().map(element_body).collect(),
        other => vec![element_body(other)],
    }
}

fn element_body(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Object(_) | Value::Array(_) => indented(v),
        other => other.to_string().into_bytes(),
    }
}

/// The bytes a blob output binding writes for an `Outputs` value (§2.4).
///
/// `binary_data_type` is whether the binding declares `"dataType": "binary"`. Numbers and bools
/// (written with `BitConverter` by the host) are not modelled and give `None`.
pub fn blob_bytes(value: &Value, binary_data_type: bool) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(s) if !binary_data_type && is_dotnet_base64(s) => {
            Some(dotnet_base64_decode(s))
        }
        Value::String(s) => Some(s.clone().into_bytes()),
        Value::Object(_) | Value::Array(_) => Some(value.to_string().into_bytes()),
        Value::Bool(_) | Value::Number(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::InvocationResponse;
    use serde_json::json;

    #[test]
    fn base64_trap_strings_are_recognised() {
        for s in ["test", "done", "abcd1234", "", "YQ==", "ab cd"] {
            assert!(is_dotnet_base64(s), "{s}");
        }
        for s in ["{\"a\":1}", "hello", "abc", "a===", "plain text"] {
            assert!(!is_dotnet_base64(s), "{s}");
        }
    }

    #[test]
    fn naive_string_output_hits_the_trap() {
        assert_eq!(
            service_bus_bodies(&json!("done")),
            vec![b"System.Byte[]".to_vec()]
        );
        assert_eq!(
            service_bus_bodies(&json!("{\"a\":1}")),
            vec![b"{\n  \"a\": 1\n}".to_vec()]
        );
        assert_eq!(service_bus_bodies(&json!("[\"x\",\"y\"]")).len(), 2);
    }

    #[test]
    fn service_bus_builder_survives_the_host_exactly() {
        let bodies = ["done", "{\"a\":1}", "[\"x\",\"y\"]", "plain text", ""];
        let response = InvocationResponse::new().service_bus_messages("out", bodies);
        let sent = service_bus_bodies(&response.outputs()["out"]);
        let expected: Vec<Vec<u8>> = bodies.iter().map(|b| b.as_bytes().to_vec()).collect();
        assert_eq!(sent, expected);
    }

    #[test]
    fn blob_builder_survives_the_host_exactly() {
        for bytes in [&b"test"[..], b"{\"a\":1}", b"\x00\xffbinary", b""] {
            let response = InvocationResponse::new().blob_bytes("b", bytes);
            assert_eq!(blob_bytes(&response.outputs()["b"], false).unwrap(), bytes);
        }
        let response = InvocationResponse::new()
            .blob_json("b", &json!({"z": 1, "a": [1, 2]}))
            .unwrap();
        assert_eq!(
            blob_bytes(&response.outputs()["b"], false).unwrap(),
            br#"{"a":[1,2],"z":1}"#
        );
    }
}
