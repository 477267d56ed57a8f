//! App settings that override host.json, as the Functions host reads them:
//! `AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls=1` sets
//! `extensions.serviceBus.maxConcurrentCalls` (`__` separates the levels, names match whatever
//! their case). On Azure these are application settings; locally they come from
//! `local.settings.json` `Values` and the environment.

use serde_json::{Map, Value};

const PREFIX: &str = "azurefunctionsjobhost__";

/// Applies every `AzureFunctionsJobHost__…` setting of `settings` (later ones win) to `host`.
pub fn apply<'a>(host: &mut Value, settings: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (name, value) in settings {
        let Some(path) = name
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map(|_| &name[PREFIX.len()..])
        else {
            continue;
        };
        let keys: Vec<&str> = path.split("__").filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            set(host, &keys, value);
        }
    }
}

fn set(node: &mut Value, keys: &[&str], value: &str) {
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else { return };
    let key = map
        .keys()
        .find(|k| k.eq_ignore_ascii_case(keys[0]))
        .cloned()
        .unwrap_or_else(|| keys[0].to_string());
    let slot = map.entry(key).or_insert(Value::Null);
    if keys.len() > 1 {
        set(slot, &keys[1..], value);
    } else {
        *slot = typed(value);
    }
}

/// A setting's text as the JSON host.json would hold: a number, `true`/`false`, or a string
/// (a TimeSpan such as `00:10:00` stays a string).
fn typed(value: &str) -> Value {
    let trimmed = value.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Value::from(n);
    }
    match trimmed.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_override_host_json_at_any_depth_whatever_the_case() {
        let mut host =
            json!({"version": "2.0", "extensions": {"serviceBus": {"maxConcurrentCalls": 4}}});
        apply(
            &mut host,
            [
                (
                    "AzureFunctionsJobHost__extensions__servicebus__maxConcurrentCalls",
                    "1",
                ),
                ("AZUREFUNCTIONSJOBHOST__functionTimeout", "00:01:00"),
                (
                    "AzureFunctionsJobHost__extensions__serviceBus__autoCompleteMessages",
                    "false",
                ),
                ("AzureFunctionsJobHost__extensions__http__routePrefix", "v1"),
                ("DOCFLOW_AI_PROVIDER", "offline"),
                ("AzureFunctionsJobHost__", "ignored"),
            ],
        );
        assert_eq!(
            host,
            json!({"version": "2.0", "functionTimeout": "00:01:00", "extensions": {
                "serviceBus": {"maxConcurrentCalls": 1, "autoCompleteMessages": false},
                "http": {"routePrefix": "v1"}}})
        );
    }

    #[test]
    fn later_settings_win() {
        let mut host = json!({});
        apply(
            &mut host,
            [
                ("AzureFunctionsJobHost__functionTimeout", "00:01:00"),
                ("AzureFunctionsJobHost__functionTimeout", "00:02:00"),
            ],
        );
        assert_eq!(host["functionTimeout"], "00:02:00");
    }
}
