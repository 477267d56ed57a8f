//! `host.json`: version 2.0, the custom handler, `functionTimeout`, the HTTP route prefix and
//! the Service Bus extension's settings, with the host's defaults.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{AppError, HostSettings, app_error};
use docflow_servicebus::message::parse_timespan;

/// The Service Bus extension's defaults (protocol doc §5.2).
const DEFAULT_LOCK_RENEWAL: Duration = Duration::from_secs(300);
const DEFAULT_MAX_SESSIONS: usize = 8;
const DEFAULT_BATCH_SIZE: usize = 1000;
/// The host's default `functionTimeout` outside dedicated plans.
const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);
/// `customHandler.initializationTimeout` default in code.
const DEFAULT_INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A host.json TimeSpan (`hh:mm:ss`), or `-1` / null for unbounded.
fn timespan(value: Option<&Value>, field: &str) -> Result<Option<Option<Duration>>, AppError> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.trim() == "-1" || s.trim().starts_with('-') => Ok(Some(None)),
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => Ok(Some(None)),
        Some(Value::String(s)) => parse_timespan(s).map(|d| Some(Some(d))).ok_or_else(|| {
            app_error(
                "host.json",
                field,
                format!("{s:?} is not a TimeSpan such as 00:10:00"),
            )
        }),
        Some(_) => Err(app_error(
            "host.json",
            field,
            "must be a TimeSpan string such as 00:10:00",
        )),
    }
}

pub(super) fn host_settings(json: &Value) -> Result<HostSettings, AppError> {
    let file = "host.json";
    let version = json.get("version").and_then(Value::as_str);
    if version != Some("2.0") {
        return Err(app_error(file, "$.version", "must be \"2.0\""));
    }
    if json
        .pointer("/concurrency/dynamicConcurrencyEnabled")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(app_error(
            file,
            "$.concurrency.dynamicConcurrencyEnabled",
            "dynamic concurrency is not supported by docflow dev; set it to false",
        ));
    }
    let handler = json
        .get("customHandler")
        .or_else(|| json.get("httpWorker"))
        .ok_or_else(|| {
            app_error(
                file,
                "$.customHandler",
                "is required for a custom handler app",
            )
        })?;
    let description = handler
        .get("description")
        .ok_or_else(|| app_error(file, "$.customHandler.description", "is required"))?;
    let executable = description
        .get("defaultExecutablePath")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            app_error(
                file,
                "$.customHandler.description.defaultExecutablePath",
                "is required",
            )
        })?
        .to_string();
    let arguments = match description.get("arguments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                app_error(
                    file,
                    "$.customHandler.description.arguments",
                    "must be an array of strings",
                )
            })?,
        Some(_) => {
            return Err(app_error(
                file,
                "$.customHandler.description.arguments",
                "must be an array of strings",
            ));
        }
    };
    let sb = json
        .pointer("/extensions/serviceBus")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let count = |key: &str, default: usize| -> Result<usize, AppError> {
        match sb.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1)
                .map(|n| n as usize)
                .ok_or_else(|| {
                    app_error(
                        file,
                        &format!("$.extensions.serviceBus.{key}"),
                        "must be a whole number of at least 1",
                    )
                }),
        }
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(HostSettings {
        function_timeout: timespan(json.get("functionTimeout"), "$.functionTimeout")?
            .unwrap_or(Some(DEFAULT_FUNCTION_TIMEOUT)),
        executable,
        arguments,
        working_directory: description
            .get("workingDirectory")
            .and_then(Value::as_str)
            .map(str::to_owned),
        forward_http: handler
            .get("enableForwardingHttpRequest")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        initialization_timeout: timespan(
            handler.get("initializationTimeout"),
            "$.customHandler.initializationTimeout",
        )?
        .flatten()
        .unwrap_or(DEFAULT_INITIALIZATION_TIMEOUT),
        route_prefix: json
            .pointer("/extensions/http/routePrefix")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .trim_matches('/')
            .to_string(),
        auto_complete: sb
            .get("autoCompleteMessages")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        max_lock_renewal: timespan(
            sb.get("maxAutoLockRenewalDuration"),
            "$.extensions.serviceBus.maxAutoLockRenewalDuration",
        )?
        .unwrap_or(Some(DEFAULT_LOCK_RENEWAL)),
        max_concurrent_calls: count("maxConcurrentCalls", 16 * cores)?,
        max_concurrent_sessions: count("maxConcurrentSessions", DEFAULT_MAX_SESSIONS)?,
        max_calls_per_session: count("maxConcurrentCallsPerSession", 1)?,
        max_batch_size: count("maxMessageBatchSize", DEFAULT_BATCH_SIZE)?,
    })
}
