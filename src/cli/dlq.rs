//! `docflow dlq`: dead-letter triage against Azure or the embedded broker.
//!
//! - `list ENTITY` shows the dead-letter queue as a table (or `--json`);
//! - `show ENTITY SEQ` shows one message whole;
//! - `resubmit ENTITY` sends a copy of each selected message to the original entity (new
//!   MessageId, same correlation id and properties, plus `x-docflow-resubmitted-from`), and
//!   only then removes the original: a crash in between can duplicate, never lose;
//! - `discard ENTITY` removes the selected messages, after confirmation unless `--yes`.
//!
//! Azure's REST API cannot browse, so against Azure `list` and `show` lock every message and
//! release it again (its delivery count in the dead-letter queue goes up by one); against the
//! embedded broker they browse without side effects.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use std::collections::HashMap;

use crate::last_errors::{LastError, LastErrors};
use crate::servicebus::message::{Message, PropertyValue, ReceivedMessage};
use crate::servicebus::{ClientError, ServiceBusClient};

/// Most dead-lettered messages one command handles.
pub const DEFAULT_MAX: usize = 10_000;
/// Runs longer than this show a progress bar.
const PROGRESS_THRESHOLD: usize = 20;

/// Which messages a command acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every message.
    All,
    /// Those with this `DeadLetterReason`.
    Reason(String),
    /// These sequence numbers.
    Sequences(Vec<i64>),
}

impl Selection {
    /// A reason matches the handler's recorded reason or Service Bus's own.
    fn matches(&self, m: &ReceivedMessage, joined: &Joined) -> bool {
        match self {
            Selection::All => true,
            Selection::Reason(r) => reason_of(m, joined) == r || m.dead_letter_reason() == Some(r),
            Selection::Sequences(seqs) => seqs.contains(&m.sequence_number),
        }
    }
}

/// Last-error records of the listed messages, by message id.
type Joined = HashMap<String, LastError>;

/// The handler's last-error records, when their blob store is reachable: a custom handler
/// cannot dead-letter with its own reason, so Service Bus says `MaxDeliveryCountExceeded` and
/// the record says why.
#[derive(Clone, Default)]
pub struct Reasons(pub Option<LastErrors>);

impl Reasons {
    async fn join(&self, messages: &[ReceivedMessage]) -> Joined {
        let mut joined = HashMap::new();
        let Some(records) = &self.0 else {
            return joined;
        };
        for m in messages {
            if let Some(id) = &m.message.message_id
                && let Ok(Some(record)) = records.find(id).await
            {
                joined.insert(id.clone(), record);
            }
        }
        joined
    }
}

fn last_error<'a>(m: &ReceivedMessage, joined: &'a Joined) -> Option<&'a LastError> {
    m.message.message_id.as_ref().and_then(|id| joined.get(id))
}

/// The recorded reason, else Service Bus's.
fn reason_of<'a>(m: &'a ReceivedMessage, joined: &'a Joined) -> &'a str {
    last_error(m, joined)
        .map(|e| e.reason.as_str())
        .or(m.dead_letter_reason())
        .unwrap_or("-")
}

fn description_of<'a>(m: &'a ReceivedMessage, joined: &'a Joined) -> &'a str {
    last_error(m, joined)
        .map(|e| e.description.as_str())
        .or(m.dead_letter_description())
        .unwrap_or("-")
}

/// A dead-letter command.
#[derive(Debug, Clone)]
pub enum DlqCommand {
    /// `list`.
    List {
        /// Queue or `topic/subscriptions/sub`.
        entity: String,
        /// Only this reason.
        reason: Option<String>,
        /// JSON output.
        json: bool,
        /// At most this many.
        max: usize,
    },
    /// `show`.
    Show {
        /// Entity.
        entity: String,
        /// Sequence number.
        seq: i64,
    },
    /// `resubmit`.
    Resubmit {
        /// Entity.
        entity: String,
        /// Which messages.
        selection: Selection,
        /// Only say what would happen.
        dry_run: bool,
    },
    /// `discard`.
    Discard {
        /// Entity.
        entity: String,
        /// Which messages.
        selection: Selection,
        /// Only say what would happen.
        dry_run: bool,
        /// Skip the confirmation.
        yes: bool,
    },
}

/// Runs a command; returns the exit code.
pub async fn run(client: &ServiceBusClient, reasons: &Reasons, command: DlqCommand) -> u8 {
    let result = match command {
        DlqCommand::List {
            entity,
            reason,
            json,
            max,
        } => list(client, reasons, &entity, reason.as_deref(), json, max).await,
        DlqCommand::Show { entity, seq } => show(client, reasons, &entity, seq).await,
        DlqCommand::Resubmit {
            entity,
            selection,
            dry_run,
        } => {
            settle_selected(
                client,
                reasons,
                &entity,
                &selection,
                dry_run,
                Action::Resubmit,
            )
            .await
        }
        DlqCommand::Discard {
            entity,
            selection,
            dry_run,
            yes,
        } => {
            if !dry_run && !yes && !confirm(&entity, &selection) {
                eprintln!(
                    "docflow dlq discard: not confirmed; nothing was removed (pass --yes to skip the question)"
                );
                return super::EXIT_CONFIG;
            }
            settle_selected(
                client,
                reasons,
                &entity,
                &selection,
                dry_run,
                Action::Discard,
            )
            .await
        }
    };
    match result {
        Ok(()) => 0,
        Err(e @ (ClientError::Unavailable { .. } | ClientError::Connection(_))) => {
            eprintln!(
                "docflow dlq: cannot reach Service Bus: {e}\nis the app running? start `docflow dev` (or `docflow broker`) first, or pass --connection"
            );
            super::EXIT_FAILED
        }
        Err(e) => {
            eprintln!("docflow dlq: {e}");
            super::EXIT_FAILED
        }
    }
}

fn dlq_path(entity: &str) -> String {
    format!("{}/$DeadLetterQueue", entity.trim_end_matches('/'))
}

/// Reads the dead-letter queue without removing anything.
pub async fn read_all(
    client: &ServiceBusClient,
    entity: &str,
    max: usize,
) -> Result<Vec<ReceivedMessage>, ClientError> {
    let path = dlq_path(entity);
    if client.is_local() {
        let mut out = Vec::new();
        let mut from = 0;
        while out.len() < max {
            let page = client
                .browse(&path, from, (max - out.len()).min(500))
                .await?;
            let Some(last) = page.last() else { break };
            from = last.sequence_number + 1;
            out.extend(page);
        }
        return Ok(out);
    }
    let locked = lock_all(client, &path, max).await?;
    for m in &locked {
        client.abandon_message(m).await?;
    }
    Ok(locked)
}

async fn lock_all(
    client: &ServiceBusClient,
    path: &str,
    max: usize,
) -> Result<Vec<ReceivedMessage>, ClientError> {
    let mut locked = Vec::new();
    while locked.len() < max {
        match client.peek_lock(path, Duration::from_secs(1)).await? {
            Some(m) => locked.push(m),
            None => break,
        }
    }
    Ok(locked)
}

async fn list(
    client: &ServiceBusClient,
    reasons: &Reasons,
    entity: &str,
    reason: Option<&str>,
    as_json: bool,
    max: usize,
) -> Result<(), ClientError> {
    let all = read_all(client, entity, max).await?;
    let joined = reasons.join(&all).await;
    let selection = reason.map_or(Selection::All, |r| Selection::Reason(r.to_string()));
    let messages: Vec<ReceivedMessage> = all
        .into_iter()
        .filter(|m| selection.matches(m, &joined))
        .collect();
    let mut out = std::io::stdout().lock();
    if as_json {
        let items: Vec<serde_json::Value> =
            messages.iter().map(|m| summary_json(m, &joined)).collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:>8}  {:<34}  {:<20}  {:>4}  {:<26}  {:<40}  {:<16}  BODY",
        "SEQ", "MESSAGE ID", "ENQUEUED (UTC)", "DLV", "REASON", "DESCRIPTION", "CORRELATION"
    );
    for m in &messages {
        let _ = writeln!(
            out,
            "{:>8}  {:<34}  {:<20}  {:>4}  {:<26}  {:<40}  {:<16}  {}",
            m.sequence_number,
            clip(m.message.message_id.as_deref().unwrap_or("-"), 34),
            m.enqueued_time.format("%Y-%m-%d %H:%M:%S"),
            m.delivery_count,
            clip(reason_of(m, &joined), 26),
            clip(description_of(m, &joined), 40),
            clip(m.message.correlation_id.as_deref().unwrap_or("-"), 16),
            preview(&m.message.body, 40),
        );
    }
    let _ = writeln!(
        out,
        "{} dead-lettered message(s) in {}",
        messages.len(),
        dlq_path(entity)
    );
    Ok(())
}

async fn show(
    client: &ServiceBusClient,
    reasons: &Reasons,
    entity: &str,
    seq: i64,
) -> Result<(), ClientError> {
    let messages = read_all(client, entity, DEFAULT_MAX).await?;
    let joined = reasons.join(&messages).await;
    let Some(m) = messages.iter().find(|m| m.sequence_number == seq) else {
        return Err(ClientError::BadRequest(format!(
            "no message with sequence number {seq} in {}",
            dlq_path(entity)
        )));
    };
    let mut detail = summary_json(m, &joined);
    detail["body"] = match std::str::from_utf8(&m.message.body) {
        Ok(text) => json!(text),
        Err(_) => {
            use base64::Engine as _;
            json!({"base64": base64::engine::general_purpose::STANDARD.encode(&m.message.body)})
        }
    };
    detail["properties"] = json!(
        m.message
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect::<serde_json::Map<_, _>>()
    );
    detail["contentType"] = json!(m.message.content_type);
    detail["sessionId"] = json!(m.message.session_id);
    detail["subject"] = json!(m.message.subject);
    println!(
        "{}",
        serde_json::to_string_pretty(&detail).unwrap_or_default()
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Resubmit,
    Discard,
}

async fn settle_selected(
    client: &ServiceBusClient,
    reasons: &Reasons,
    entity: &str,
    selection: &Selection,
    dry_run: bool,
    action: Action,
) -> Result<(), ClientError> {
    let path = dlq_path(entity);
    let verb = if action == Action::Resubmit {
        "resubmit"
    } else {
        "discard"
    };
    if dry_run {
        let all = read_all(client, entity, DEFAULT_MAX).await?;
        let joined = reasons.join(&all).await;
        let selected: Vec<ReceivedMessage> = all
            .into_iter()
            .filter(|m| selection.matches(m, &joined))
            .collect();
        for m in &selected {
            println!(
                "would {verb} {} ({})",
                m.sequence_number,
                reason_of(m, &joined)
            );
        }
        let past = if action == Action::Resubmit {
            "resubmitted"
        } else {
            "discarded"
        };
        println!(
            "dry run: {} message(s) would be {past} from {path}; nothing was changed",
            selected.len()
        );
        return Ok(());
    }
    let locked = lock_all(client, &path, DEFAULT_MAX).await?;
    let joined = reasons.join(&locked).await;
    let (selected, others): (Vec<_>, Vec<_>) = locked
        .into_iter()
        .partition(|m| selection.matches(m, &joined));
    for m in &others {
        client.abandon_message(m).await?;
    }
    let bar = progress(selected.len(), verb);
    let destination = resubmit_destination(entity);
    let mut done = 0;
    for m in &selected {
        if action == Action::Resubmit {
            client
                .send_message(&destination, &resubmitted_copy(m, &path))
                .await?;
        }
        client.complete_message(m).await?;
        done += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let past = if action == Action::Resubmit {
        "resubmitted to"
    } else {
        "discarded from"
    };
    let place = if action == Action::Resubmit {
        destination
    } else {
        path
    };
    println!("{done} message(s) {past} {place}");
    Ok(())
}

/// Service Bus cannot send to one subscription: a subscription's messages go back to its topic.
fn resubmit_destination(entity: &str) -> String {
    let lower = entity.to_ascii_lowercase();
    match lower.find("/subscriptions/") {
        Some(i) => entity[..i].to_string(),
        None => entity.to_string(),
    }
}

/// The copy sent back: a new MessageId, the original's correlation id, session and properties
/// (without the broker's dead-letter properties), and where it came from.
pub fn resubmitted_copy(m: &ReceivedMessage, dlq: &str) -> Message {
    let mut copy = m.message.clone();
    copy.message_id = Some(uuid::Uuid::new_v4().simple().to_string());
    copy.scheduled_enqueue_time = None;
    copy.time_to_live = None;
    copy.remove_property("DeadLetterReason");
    copy.remove_property("DeadLetterErrorDescription");
    copy.properties.insert(
        "x-docflow-resubmitted-from".into(),
        PropertyValue::String(format!(
            "{dlq}/{}#{}",
            m.sequence_number,
            m.message.message_id.as_deref().unwrap_or("")
        )),
    );
    copy
}

fn progress(len: usize, verb: &str) -> ProgressBar {
    if len < PROGRESS_THRESHOLD || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(verb.to_string());
    bar
}

fn confirm(entity: &str, selection: &Selection) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!(
        "Discard {} from {}? This cannot be undone. [y/N] ",
        describe(selection),
        dlq_path(entity)
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes")
}

fn describe(selection: &Selection) -> String {
    match selection {
        Selection::All => "every message".into(),
        Selection::Reason(r) => format!("the messages with reason {r:?}"),
        Selection::Sequences(s) => format!("{} message(s)", s.len()),
    }
}

fn summary_json(m: &ReceivedMessage, joined: &Joined) -> serde_json::Value {
    json!({
        "sequenceNumber": m.sequence_number,
        "messageId": m.message.message_id,
        "enqueuedTime": m.enqueued_time.to_rfc3339(),
        "deliveryCount": m.delivery_count,
        "reason": reason_of(m, joined),
        "description": description_of(m, joined),
        "deadLetterReason": m.dead_letter_reason(),
        "deadLetterErrorDescription": m.dead_letter_description(),
        "lastError": last_error(m, joined),
        "correlationId": m.message.correlation_id,
        "bodyPreview": preview(&m.message.body, 80),
    })
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    }
}

fn preview(body: &[u8], width: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(flat.trim(), width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_copies() {
        assert_eq!(resubmit_destination("ai-tasks"), "ai-tasks");
        assert_eq!(
            resubmit_destination("documents/Subscriptions/analyze"),
            "documents"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(preview(b"a\nb", 10), "a b");
    }
}
