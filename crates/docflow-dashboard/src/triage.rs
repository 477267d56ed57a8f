//! The Dead letters view's model and actions, over [`docflow_app::dead_letters`] (the functions
//! `docflow dlq` calls): each entity's dead letters with their recorded last errors, searched
//! by body, grouped by reason and error signature; resubmit or discard of a group or of chosen
//! messages, for a confirmed count, audited.

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use crate::guard::ApiError;
use crate::sources::Sources;
use docflow_app::dead_letters::{
    self, DeadLetterAction, Joined, Selection, SettleError, SettleOptions, signature::Group,
    signature::groups,
};
use docflow_servicebus::ClientError;
use docflow_servicebus::message::ReceivedMessage;

/// Most dead letters read per entity for the view.
pub const MAX_PER_ENTITY: usize = 2_000;

/// Who the audit records name.
pub const ACTOR: &str = "dashboard";

/// The view's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeadLetterQuery {
    /// Only this queue or subscription.
    #[serde(default)]
    pub entity: String,
    /// Only messages whose body contains this (case-insensitive).
    #[serde(default)]
    pub search: String,
}

/// One entity's dead letters.
#[derive(Debug, Clone)]
pub struct EntityDeadLetters {
    /// The queue or subscription.
    pub entity: String,
    /// The messages (searched), in sequence order.
    pub messages: Vec<ReceivedMessage>,
    /// Their last-error records.
    pub joined: Joined,
    /// Their groups, largest first.
    pub groups: Vec<Group>,
}

/// Whether a message's body contains `needle` (lower case).
pub fn body_contains(m: &ReceivedMessage, needle: &str) -> bool {
    needle.is_empty()
        || String::from_utf8_lossy(&m.message.body)
            .to_lowercase()
            .contains(needle)
}

/// The dead letters of every entity with some (or of the one asked for), among `known`.
pub async fn load(
    sources: &Sources,
    query: &DeadLetterQuery,
    known: &[String],
    with_dead_letters: &[String],
) -> Result<Vec<EntityDeadLetters>, ApiError> {
    let entity = query.entity.trim();
    if !entity.is_empty() && !known.iter().any(|k| k == entity) {
        return Err(ApiError::not_found(format!(
            "no queue or subscription {entity:?}"
        )));
    }
    let needle = query.search.trim().to_lowercase();
    let mut out = Vec::new();
    for path in known.iter().cloned() {
        let wanted = if entity.is_empty() {
            with_dead_letters.contains(&path)
        } else {
            path == entity
        };
        if !wanted {
            continue;
        }
        let all = sources
            .bus
            .read(&path, MAX_PER_ENTITY)
            .await
            .map_err(bus_error)?;
        let messages: Vec<ReceivedMessage> = all
            .into_iter()
            .filter(|m| body_contains(m, &needle))
            .collect();
        let joined = sources.reasons.join(&messages).await;
        let groups = groups(&path, &messages, &joined);
        out.push(EntityDeadLetters {
            entity: path,
            messages,
            joined,
            groups,
        });
    }
    Ok(out)
}

/// An action as the page posts it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequest {
    /// The queue or subscription.
    pub entity: String,
    /// A group's reason (with `signature`).
    #[serde(default)]
    pub reason: Option<String>,
    /// A group's signature.
    #[serde(default)]
    pub signature: Option<String>,
    /// Or these messages.
    #[serde(default)]
    pub sequence_numbers: Option<Vec<i64>>,
    /// The count the user confirmed: the action takes exactly this many or none.
    pub count: usize,
}

/// What an action did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// `resubmit` or `discard`.
    pub action: &'static str,
    /// The queue or subscription.
    pub entity: String,
    /// Messages acted on.
    pub count: usize,
    /// Where they went (resubmit) or were removed from (discard).
    pub place: String,
}

/// Runs an action.
pub async fn act(
    sources: &Sources,
    action: DeadLetterAction,
    request: &ActionRequest,
) -> Result<ActionResult, ApiError> {
    let known = sources.bus.entities().await.map_err(bus_error)?;
    if !known.iter().any(|e| e.path == request.entity) {
        return Err(ApiError::not_found(format!(
            "no queue or subscription {:?}",
            request.entity
        )));
    }
    let selection = match (
        &request.reason,
        &request.signature,
        &request.sequence_numbers,
    ) {
        (Some(reason), Some(signature), None) => Selection::Group {
            reason: reason.clone(),
            signature: signature.clone(),
        },
        (None, None, Some(seqs)) if !seqs.is_empty() => Selection::Sequences(seqs.clone()),
        _ => {
            return Err(ApiError::bad_request(
                "give either reason and signature (a group) or sequenceNumbers",
            ));
        }
    };
    if request.count == 0 {
        return Err(ApiError::bad_request(
            "count must be the number of messages confirmed, at least 1",
        ));
    }
    let settled = dead_letters::settle(
        sources.bus.as_dead_letter_bus(),
        &sources.reasons,
        &request.entity,
        &selection,
        action,
        SettleOptions {
            expect: Some(request.count),
            audit: Some((&sources.audit, ACTOR)),
            on_each: None,
        },
    )
    .await
    .map_err(|e| match e {
        e @ SettleError::CountChanged { .. } => {
            ApiError::new(StatusCode::CONFLICT, "CountChanged", e.to_string())
        }
        SettleError::Client(e) => bus_error(e),
    })?;
    Ok(ActionResult {
        action: match action {
            DeadLetterAction::Resubmit => "resubmit",
            DeadLetterAction::Discard => "discard",
        },
        entity: request.entity.clone(),
        count: settled.count,
        place: settled.place,
    })
}

/// A Service Bus failure as the dashboard answers it.
pub fn bus_error(e: ClientError) -> ApiError {
    match e {
        ClientError::EntityNotFound { entity, .. } => {
            ApiError::not_found(format!("no queue or subscription {entity:?}"))
        }
        ClientError::BadRequest(m) => ApiError::bad_request(m),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "ServiceBusFailed",
            other.to_string(),
        ),
    }
}
