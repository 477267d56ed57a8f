//! CBS (`$cbs` put-token): SAS tokens checked with the REST API's rules, the entities a
//! connection holds tokens for, and address normalisation.

use std::collections::HashMap;

use docflow_amqp::Value;
use docflow_amqp::message::{Body, Message, Properties};
use docflow_servicebus::sas::{self, Right, SasError, SasRule};
use percent_encoding::percent_decode_str;

/// The CBS node's address.
pub(crate) const CBS_ADDRESS: &str = "$cbs";

/// Normalises an address or audience the way the SDKs write them: drops `scheme://host[:port]`
/// and a leading `/`, percent-decodes, and lowercases (entity names compare
/// case-insensitively). `amqps://h:5671/Q/$DeadLetterQueue` becomes `q/$deadletterqueue`.
pub fn normalize_address(address: &str) -> String {
    let path = match address.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => address,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    percent_decode_str(path)
        .decode_utf8_lossy()
        .trim_matches('/')
        .to_lowercase()
}

/// The entities this connection holds valid tokens for.
#[derive(Debug, Default)]
pub(crate) struct Authorizations {
    /// Normalised entity path (empty for the whole namespace) → rights and expiry (Unix s).
    tokens: HashMap<String, (Vec<Right>, u64)>,
}

/// Tokens one connection may hold before the oldest are forgotten (a bound, not a limit the
/// SDKs reach: they put one per entity and refresh it).
const MAX_TOKENS: usize = 1024;

impl Authorizations {
    /// Whether `entity` (normalised) may be used with `right` at Unix time `now`: a token for
    /// the entity itself, a parent path (`topic` covers `topic/subscriptions/s`) or the
    /// namespace.
    pub(crate) fn allows(&self, entity: &str, right: Right, now: u64) -> bool {
        self.tokens.iter().any(|(path, (rights, expiry))| {
            *expiry > now
                && rights.contains(&right)
                && (path.is_empty() || entity == path || entity.starts_with(&format!("{path}/")))
        })
    }

    /// Checks a put-token body and records it. Returns the description for the reply.
    pub(crate) fn put(&mut self, token: &str, rules: &[SasRule], now: u64) -> Result<(), SasError> {
        let sr = token_field(token, "sr").ok_or(SasError::Malformed("sr is required"))?;
        let expiry = token_field(token, "se")
            .and_then(|se| se.parse::<u64>().ok())
            .ok_or(SasError::Malformed("se is not a number"))?;
        // The token is checked against its own audience: the entity comes from `sr`, not from
        // comparing audience strings (.NET writes `amqp://host/q`, Python `sb://host:port/q`).
        let audience = percent_decode_str(sr)
            .decode_utf8_lossy()
            .to_ascii_lowercase();
        let audience = audience.split(['?', '#']).next().unwrap_or_default();
        let mut rights = Vec::new();
        let mut first_error = None;
        for right in [Right::Send, Right::Listen, Right::Manage] {
            match sas::validate(Some(token), audience, right, rules, now) {
                Ok(()) => rights.push(right),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if rights.is_empty() {
            return Err(first_error.unwrap_or(SasError::Malformed("no rights")));
        }
        let entity = normalize_address(audience);
        let entity = entity
            .strip_suffix("/$management")
            .map(str::to_owned)
            .unwrap_or(entity);
        if self.tokens.len() >= MAX_TOKENS && !self.tokens.contains_key(&entity) {
            self.tokens.retain(|_, (_, e)| *e > now);
            if self.tokens.len() >= MAX_TOKENS {
                return Err(SasError::Malformed("too many tokens on one connection"));
            }
        }
        self.tokens.insert(entity, (rights, expiry));
        Ok(())
    }
}

fn token_field<'a>(token: &'a str, name: &str) -> Option<&'a str> {
    let fields = token.trim().strip_prefix("SharedAccessSignature ")?;
    fields
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Handles a CBS request message; returns the reply to send on the `$cbs` receiver link.
pub(crate) fn handle_request(
    request: &Message,
    auth: &mut Authorizations,
    rules: &[SasRule],
    now: u64,
) -> Message {
    let property = |name: &str| {
        request
            .application_properties
            .iter()
            .flatten()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    let operation = match property("operation") {
        Some(Value::String(s)) | Some(Value::Symbol(s)) => s.as_str(),
        _ => "",
    };
    let (status, description) = if operation != "put-token" {
        (400, format!("unsupported CBS operation {operation:?}"))
    } else {
        match &request.body {
            Body::Value(Value::String(token)) => match auth.put(token, rules, now) {
                Ok(()) => (200, "OK".to_string()),
                Err(e) => (401, e.to_string()),
            },
            _ => (400, "the token must be an amqp-value string".to_string()),
        }
    };
    let correlation_id = request
        .properties
        .as_ref()
        .and_then(|p| p.message_id.clone());
    Message {
        properties: Some(Properties {
            correlation_id,
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("status-code".into(), Value::Int(status)),
            ("status-description".into(), Value::String(description)),
        ]),
        ..Message::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_normalise_as_the_sdks_write_them() {
        assert_eq!(normalize_address("amqps://127.0.0.1:5671/Q"), "q");
        assert_eq!(
            normalize_address("/q/$DeadLetterQueue"),
            "q/$deadletterqueue"
        );
        assert_eq!(
            normalize_address("amqp://host/T/Subscriptions/S"),
            "t/subscriptions/s"
        );
        assert_eq!(normalize_address("q%2Fx"), "q/x");
        assert_eq!(normalize_address("sb://host/"), "");
    }
}
