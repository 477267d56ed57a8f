//! What a request path asks for: Azure's message URLs, the local-only `$local` ones, and
//! everything else as a read of the ATOM management API.

use warp::http::StatusCode;

use super::reply::Failure;

/// What the path asks for.
pub(super) enum Route {
    Clock,
    Send {
        entity: String,
    },
    Receive {
        entity: String,
        dlq: bool,
    },
    Lock {
        entity: String,
        dlq: bool,
        id: String,
        token: String,
        local: Option<String>,
    },
    Local {
        entity: String,
        dlq: bool,
        rest: Vec<String>,
    },
    /// Any other path: `$Resources/Queues`, `$Resources/Topics`, `{topic}/Subscriptions`, or
    /// an entity (`{queue}`, `{topic}`, `{topic}/Subscriptions/{sub}`), the segments decoded.
    Management {
        segments: Vec<String>,
    },
}

/// Parses a request path (segments percent-decoded, matched case-insensitively).
pub(super) fn parse(path: &str) -> Result<Route, Failure> {
    let segments = docflow_servicebus::http_url::path_segments(path);
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let not_found = || {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("no Service Bus operation at {path}"),
        )
    };
    if lower.first().map(String::as_str) == Some("$local") {
        return if lower.get(1).map(String::as_str) == Some("clock") && lower.len() == 2 {
            Ok(Route::Clock)
        } else {
            Err(not_found())
        };
    }
    let entity_of = |end: usize| -> (String, bool) { crate::split_dlq(&segments[..end].join("/")) };
    if let Some(local) = lower.iter().position(|s| s == "$local") {
        let rest: Vec<String> = segments[local + 1..].to_vec();
        // {Location}/$local/defer|deadletter: …/messages/{id}/{token}/$local/…
        if local >= 4 && lower[local - 3] == "messages" {
            let (entity, dlq) = entity_of(local - 3);
            return Ok(Route::Lock {
                entity,
                dlq,
                id: segments[local - 2].clone(),
                token: segments[local - 1].clone(),
                local: Some(rest.join("/").to_ascii_lowercase()),
            });
        }
        if local == 0 {
            return Err(not_found());
        }
        let (entity, dlq) = entity_of(local);
        return Ok(Route::Local { entity, dlq, rest });
    }
    let Some(m) = lower.iter().rposition(|s| s == "messages") else {
        return if segments.is_empty() {
            Err(not_found())
        } else {
            Ok(Route::Management { segments })
        };
    };
    if m == 0 {
        return Err(not_found());
    }
    let (entity, dlq) = entity_of(m);
    match &lower[m + 1..] {
        [] if !dlq => Ok(Route::Send { entity }),
        [head] if head == "head" => Ok(Route::Receive { entity, dlq }),
        [_, _] => Ok(Route::Lock {
            entity,
            dlq,
            id: segments[m + 1].clone(),
            token: segments[m + 2].clone(),
            local: None,
        }),
        [] => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "a dead-letter queue only receives messages through dead-lettering",
        )),
        _ => Err(not_found()),
    }
}
