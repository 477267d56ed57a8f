//! Shared Access Signature tokens (`servicebus.md` §1.2): signing for the client, validation for
//! the embedded broker.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

/// Characters left as-is by .NET's `WebUtility.UrlEncode`-style encoding used in tokens.
const TOKEN_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Send messages.
    pub send: bool,
    /// Receive and settle messages.
    pub listen: bool,
    /// Manage entities (implies both others).
    pub manage: bool,
}

impl Rights {
    /// Manage, Send and Listen.
    pub const ALL: Rights = Rights {
        send: true,
        listen: true,
        manage: true,
    };

    /// Parses `Manage`, `Send`, `Listen` separated by `,` or `|` (case-insensitive).
    pub fn parse(text: &str) -> Option<Rights> {
        let mut rights = Rights {
            send: false,
            listen: false,
            manage: false,
        };
        for part in text
            .split([',', '|'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.to_ascii_lowercase().as_str() {
                "send" => rights.send = true,
                "listen" => rights.listen = true,
                "manage" => rights = Rights::ALL,
                _ => return None,
            }
        }
        Some(rights)
    }

    /// Whether these rights include `needed`.
    pub fn allows(&self, needed: Right) -> bool {
        self.manage
            || match needed {
                Right::Send => self.send,
                Right::Listen => self.listen,
                Right::Manage => false,
            }
    }
}

/// One right an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Sending.
    Send,
    /// Receiving and settling.
    Listen,
    /// Management and local extensions.
    Manage,
}

impl Right {
    /// The claim name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Send => "Send",
            Self::Listen => "Listen",
            Self::Manage => "Manage",
        }
    }
}

/// A named key with its rights (a shared access policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasRule {
    /// Policy name (`skn`).
    pub name: String,
    /// The key, used as its literal UTF-8 string.
    pub key: String,
    /// What it allows.
    pub rights: Rights,
}

/// Builds a token for `resource` (e.g. `https://ns.servicebus.windows.net/queue`) valid until
/// `expiry` (Unix seconds).
pub fn sign(resource: &str, key_name: &str, key: &str, expiry: u64) -> String {
    let encoded = utf8_percent_encode(&resource.to_ascii_lowercase(), TOKEN_ENCODE).to_string();
    let signature = signature(key, &encoded, expiry);
    format!(
        "SharedAccessSignature sr={encoded}&sig={}&se={expiry}&skn={}",
        utf8_percent_encode(&signature, TOKEN_ENCODE),
        utf8_percent_encode(key_name, TOKEN_ENCODE)
    )
}

fn signature(key: &str, encoded_resource: &str, expiry: u64) -> String {
    use base64::Engine as _;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(format!("{encoded_resource}\n{expiry}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// No `Authorization` header.
    #[error("MissingToken: the request has no Authorization header")]
    Missing,
    /// Not a parsable `SharedAccessSignature`.
    #[error("MalformedToken: {0}")]
    Malformed(&'static str),
    /// `se` has passed.
    #[error("ExpiredToken: The token is expired.")]
    Expired,
    /// `skn` names no configured rule.
    #[error("InvalidSignature: unknown key name {0:?}")]
    UnknownKey(String),
    /// The signature does not match.
    #[error("InvalidSignature: The token has an invalid signature.")]
    BadSignature,
    /// `sr` does not cover the requested resource.
    #[error("InvalidAudience: the token is not valid for {0}")]
    WrongResource(String),
    /// The rule lacks the right.
    #[error("Unauthorized access. '{0}' claim(s) are required to perform this operation.")]
    MissingRight(&'static str),
}

/// Validates an `Authorization` header for a request to `target` (host + path, no scheme) that
/// needs `needed`, at Unix time `now`.
pub fn validate(
    header: Option<&str>,
    target: &str,
    needed: Right,
    rules: &[SasRule],
    now: u64,
) -> Result<(), SasError> {
    let header = header.ok_or(SasError::Missing)?.trim();
    let token = header
        .strip_prefix("SharedAccessSignature ")
        .ok_or(SasError::Malformed(
            "expected 'SharedAccessSignature sr=…&sig=…&se=…&skn=…'",
        ))?;
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    for pair in token.split('&') {
        let (k, v) = pair
            .split_once('=')
            .ok_or(SasError::Malformed("a field has no '='"))?;
        match k {
            "sr" => sr = Some(v),
            "sig" => sig = Some(v),
            "se" => se = Some(v),
            "skn" => skn = Some(v),
            _ => {}
        }
    }
    let (sr, sig, se, skn) = match (sr, sig, se, skn) {
        (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
        _ => return Err(SasError::Malformed("sr, sig, se and skn are required")),
    };
    let expiry: u64 = se
        .parse()
        .map_err(|_| SasError::Malformed("se is not a number"))?;
    if expiry <= now {
        return Err(SasError::Expired);
    }
    let key_name = percent_decode_str(skn).decode_utf8_lossy().to_string();
    let rule = rules
        .iter()
        .find(|r| r.name == key_name)
        .ok_or_else(|| SasError::UnknownKey(key_name.clone()))?;
    let expected = signature(&rule.key, sr, expiry);
    let given = percent_decode_str(sig).decode_utf8_lossy();
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(SasError::BadSignature);
    }
    let resource = percent_decode_str(sr)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    // Azure compares the audience without its query string: Microsoft's legacy REST client
    // signs the whole request URI (`…/messages/head?timeout=5`).
    let resource = resource.split(['?', '#']).next().unwrap_or_default();
    let resource = strip_scheme(resource).trim_end_matches('/');
    let target = strip_scheme(&target.to_ascii_lowercase()).to_string();
    let covered = target == resource
        || target.starts_with(&format!("{resource}/"))
        || !resource.contains('/') && host_only_matches(resource, &target);
    if !covered {
        return Err(SasError::WrongResource(target));
    }
    if !rule.rights.allows(needed) {
        return Err(SasError::MissingRight(needed.name()));
    }
    Ok(())
}

/// `sr=your-namespace` (the REST docs' abbreviation) covers the whole namespace.
fn host_only_matches(resource: &str, target: &str) -> bool {
    let host = target.split('/').next().unwrap_or("");
    host == resource || host.split([':', '.']).next() == Some(resource)
}

fn strip_scheme(s: &str) -> &str {
    ["https://", "http://", "sb://"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<SasRule> {
        vec![
            SasRule {
                name: "root".into(),
                key: "secret".into(),
                rights: Rights::ALL,
            },
            SasRule {
                name: "listen".into(),
                key: "l".into(),
                rights: Rights::parse("Listen").unwrap(),
            },
        ]
    }

    #[test]
    fn the_audience_ignores_the_query_string_and_the_scheme() {
        // Microsoft's legacy REST client signs the whole request URI.
        let token = sign(
            "http://127.0.0.1:7072/q1/messages/head?timeout=5",
            "root",
            "secret",
            2_000,
        );
        let check = |target: &str| validate(Some(&token), target, Right::Listen, &rules(), 1_000);
        assert_eq!(check("127.0.0.1:7072/q1/messages/head"), Ok(()));
        let token = sign("HTTPS://127.0.0.1:7072/Q1?x=1", "root", "secret", 2_000);
        let check = |target: &str| validate(Some(&token), target, Right::Listen, &rules(), 1_000);
        assert_eq!(check("127.0.0.1:7072/q1/messages/head"), Ok(()));
        // A prefix on path segments only: q1 does not cover q10.
        assert!(matches!(
            check("127.0.0.1:7072/q10/messages/head"),
            Err(SasError::WrongResource(_))
        ));
    }

    #[test]
    fn a_signed_token_validates_for_its_resource_and_below() {
        let token = sign("http://127.0.0.1:7072/q1", "root", "secret", 2_000);
        assert_eq!(
            validate(
                Some(&token),
                "127.0.0.1:7072/q1/messages",
                Right::Send,
                &rules(),
                1_000
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                Some(&token),
                "127.0.0.1:7072/q2/messages",
                Right::Send,
                &rules(),
                1_000
            ),
            Err(SasError::WrongResource("127.0.0.1:7072/q2/messages".into()))
        );
        assert_eq!(
            validate(
                Some(&token),
                "127.0.0.1:7072/q1",
                Right::Send,
                &rules(),
                2_000
            ),
            Err(SasError::Expired)
        );
        let forged = sign("http://127.0.0.1:7072/q1", "root", "wrong", 2_000);
        assert_eq!(
            validate(
                Some(&forged),
                "127.0.0.1:7072/q1",
                Right::Send,
                &rules(),
                1_000
            ),
            Err(SasError::BadSignature)
        );
        let listen = sign("http://127.0.0.1:7072/", "listen", "l", 2_000);
        assert_eq!(
            validate(
                Some(&listen),
                "127.0.0.1:7072/q1/messages",
                Right::Send,
                &rules(),
                1_000
            ),
            Err(SasError::MissingRight("Send"))
        );
        assert_eq!(
            validate(None, "x", Right::Send, &rules(), 0),
            Err(SasError::Missing)
        );
    }
}
