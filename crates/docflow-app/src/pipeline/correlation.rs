//! The correlation id of a request, born at submission and carried by every message and log
//! line: the trace id of a W3C `traceparent`, else a usable `x-correlation-id`, else a new one.

use super::submission::HttpInput;

/// Longest correlation id taken from a caller: Service Bus allows 128 characters.
pub const MAX_CORRELATION_ID_CHARS: usize = 128;

/// The correlation id of a request: the trace id of a W3C `traceparent`, else
/// `x-correlation-id` when it is usable, else a new one.
pub fn correlation_id(input: &HttpInput) -> String {
    if let Some(trace) = input.header("traceparent").and_then(trace_id) {
        return trace;
    }
    input
        .header("x-correlation-id")
        .map(str::trim)
        .filter(|id| {
            !id.is_empty()
                && id.chars().count() <= MAX_CORRELATION_ID_CHARS
                && id.chars().all(|c| c.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The trace id of a `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if valid and not zero.
fn trace_id(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2)
        && *version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2))
    .then(|| trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(headers: &[(&str, &str)]) -> HttpInput {
        HttpInput {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..HttpInput::default()
        }
    }

    #[test]
    fn correlation_ids() {
        let traced = input(&[(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )]);
        assert_eq!(correlation_id(&traced), "4bf92f3577b34da6a3ce929d0e0e4736");
        let given = input(&[("X-Correlation-Id", "order-17")]);
        assert_eq!(correlation_id(&given), "order-17");
        let zero = input(&[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )]);
        assert_eq!(
            correlation_id(&zero).len(),
            36,
            "an all-zero trace id is invalid"
        );
        assert_eq!(correlation_id(&input(&[])).len(), 36);
    }
}
