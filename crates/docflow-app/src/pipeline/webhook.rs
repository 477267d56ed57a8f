//! Completion callbacks: the signature (`X-Docflow-Signature`, in the style of Stripe's
//! webhooks) and the SSRF guard that decides which addresses a callback may reach. Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Docflow-Signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", mac_hex(secret, timestamp, body))
}

fn mac_hex(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a signature header against `body`, accepting timestamps within `tolerance_secs` of
/// `now` (a receiver's side; docflow's tests and README use it).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    signatures.iter().any(|s| {
        let Some(bytes) = decode_hex(s) else {
            return false;
        };
        mac.clone().verify_slice(&bytes).is_ok()
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why an address may not be called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A cloud metadata or platform endpoint: never allowed.
    Metadata,
    /// Loopback, private, link-local, shared or unique-local: allowed only by configuration.
    Private,
    /// Unspecified, multicast, broadcast or documentation ranges: never a real callback.
    Unroutable,
}

/// Classifies an address for callbacks; `None` means a public address.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(168, 63, 129, 16) {
        return Some(Refusal::Metadata);
    }
    if ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (o[0] == 100 && (64..128).contains(&o[1]))
    {
        return Some(Refusal::Private);
    }
    if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
    {
        return Some(Refusal::Unroutable);
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Refusal::Metadata);
    }
    if ip.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 {
        return Some(Refusal::Private);
    }
    if ip.is_unspecified() || ip.is_multicast() || (s[0] == 0x2001 && s[1] == 0x0db8) {
        return Some(Refusal::Unroutable);
    }
    None
}

/// Whether a callback may connect to `ip` when private networks are (or are not) allowed.
pub fn allowed(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    match classify(ip) {
        None => Ok(()),
        Some(Refusal::Private) if allow_private => Ok(()),
        Some(refusal) => Err(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip() {
        let header = sign(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(b"secret", &header, b"{\"a\":1}", 1_700_000_100, 300));
        assert!(!verify(b"other", &header, b"{\"a\":1}", 1_700_000_100, 300));
        assert!(!verify(
            b"secret",
            &header,
            b"{\"a\":2}",
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"secret",
            &header,
            b"{\"a\":1}",
            1_700_001_000,
            300
        ));
        assert!(!verify(b"secret", "v1=00", b"", 0, 300));
    }

    #[test]
    fn addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(classify(ip("8.8.8.8")), None);
        assert_eq!(classify(ip("2606:4700::1111")), None);
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(classify(ip(private)), Some(Refusal::Private), "{private}");
        }
        for metadata in ["169.254.169.254", "168.63.129.16", "fd00:ec2::254"] {
            assert_eq!(
                classify(ip(metadata)),
                Some(Refusal::Metadata),
                "{metadata}"
            );
            assert!(allowed(ip(metadata), true).is_err());
        }
        assert_eq!(classify(ip("0.0.0.0")), Some(Refusal::Unroutable));
        assert!(allowed(ip("127.0.0.1"), true).is_ok());
        assert!(allowed(ip("127.0.0.1"), false).is_err());
    }
}
