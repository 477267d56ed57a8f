//! `docflow dlq`: dead-letter triage against Azure or the embedded broker, a thin client of
//! [`crate::dead_letters`] (the dashboard of `docflow dev` calls the same functions).
//!
//! - `list ENTITY` shows the dead-letter queue as a table (or `--json`);
//! - `show ENTITY SEQ` shows one message whole;
//! - `resubmit ENTITY` puts a copy of each selected message back in the entity it came from
//!   (new MessageId, same correlation id and properties, plus `x-docflow-resubmitted-from`):
//!   a queue's copy is sent and only then the original removed (a crash in between can
//!   duplicate, never lose); a subscription's goes back into that subscription only, never to
//!   its topic, where every subscription would get it again (the embedded broker does this in
//!   one step; Azure cannot, so there it is refused);
//! - `discard ENTITY` removes the selected messages, after confirmation unless `--yes`.
//!
//! Resubmits and discards are written to the app's audit container when its blob store is
//! reachable. Azure's REST API cannot browse, so against Azure `list` and `show` lock every
//! message and release it again (its delivery count in the dead-letter queue goes up by one);
//! against the embedded broker they browse without side effects.

use std::io::{BufRead, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Settings;
use crate::dead_letters::{
    self, AuditTrail, DeadLetterAction, DeadLetterBus, clip, description_of, dlq_path, preview,
    reason_of, summary_json,
};
use crate::last_errors::LastErrors;
use crate::servicebus::{ClientError, Namespace, ServiceBusClient, ServiceBusClientOptions};

pub use crate::dead_letters::{DEFAULT_MAX, Reasons, Selection};

/// Who the audit records name.
const ACTOR: &str = "docflow dlq";

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

/// `docflow dlq`: the namespace from `connection` or the Functions setting `setting`, the
/// app's blob store (when reachable) for last-error records and the audit trail, both from
/// the app's settings (`lookup`: the environment, then local.settings.json); runs `command`.
pub async fn main(
    connection: Option<String>,
    setting: &str,
    command: DlqCommand,
    lookup: impl Fn(&str) -> Option<String>,
) -> u8 {
    let namespace = match connection {
        Some(text) => Namespace::from_connection_string(&text),
        None => Namespace::from_setting(setting, &lookup),
    };
    let client = match namespace.map_err(|e| e.to_string()).and_then(|ns| {
        ServiceBusClient::new(ns, ServiceBusClientOptions::default()).map_err(|e| e.to_string())
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docflow: {e}");
            return super::EXIT_CONFIG;
        }
    };
    // The handler's blob store, when reachable: last-error records, and the audit container.
    let records = match &Settings::from_lookup(&lookup) {
        Ok(s) if s.blob_connection.is_some() || s.blob_dir.is_dir() => {
            crate::app::blob_store(s).ok().map(|blobs| {
                (
                    LastErrors::new(blobs.clone(), s.process.state_container.clone()),
                    AuditTrail::new(blobs, s.containers.audit.clone()),
                )
            })
        }
        _ => None,
    };
    let (last_errors, audit) = records.unzip();
    run(&client, &Reasons(last_errors), audit.as_ref(), command).await
}

/// Runs a command; returns the exit code. `audit`, when given, records resubmits and discards.
pub async fn run(
    client: &ServiceBusClient,
    reasons: &Reasons,
    audit: Option<&AuditTrail>,
    command: DlqCommand,
) -> u8 {
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
            let action = DeadLetterAction::Resubmit;
            act(client, reasons, audit, &entity, &selection, dry_run, action).await
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
            let action = DeadLetterAction::Discard;
            act(client, reasons, audit, &entity, &selection, dry_run, action).await
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

/// Reads the dead-letter queue without removing anything.
pub async fn read_all(
    client: &ServiceBusClient,
    entity: &str,
    max: usize,
) -> Result<Vec<crate::servicebus::message::ReceivedMessage>, ClientError> {
    client.read(entity, max).await
}

async fn list(
    client: &ServiceBusClient,
    reasons: &Reasons,
    entity: &str,
    reason: Option<&str>,
    as_json: bool,
    max: usize,
) -> Result<(), ClientError> {
    let selection = reason.map_or(Selection::All, |r| Selection::Reason(r.to_string()));
    let (messages, joined) = dead_letters::select(client, reasons, entity, &selection, max).await?;
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
    let selection = Selection::Sequences(vec![seq]);
    let (messages, joined) =
        dead_letters::select(client, reasons, entity, &selection, DEFAULT_MAX).await?;
    let Some(m) = messages.first() else {
        return Err(ClientError::BadRequest(format!(
            "no message with sequence number {seq} in {}",
            dlq_path(entity)
        )));
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&dead_letters::detail_json(m, &joined)).unwrap_or_default()
    );
    Ok(())
}

async fn act(
    client: &ServiceBusClient,
    reasons: &Reasons,
    audit: Option<&AuditTrail>,
    entity: &str,
    selection: &Selection,
    dry_run: bool,
    action: DeadLetterAction,
) -> Result<(), ClientError> {
    let path = dlq_path(entity);
    let (verb, past) = match action {
        DeadLetterAction::Resubmit => ("resubmit", "resubmitted"),
        DeadLetterAction::Discard => ("discard", "discarded"),
    };
    if dry_run {
        let (selected, joined) =
            dead_letters::select(client, reasons, entity, selection, DEFAULT_MAX).await?;
        for m in &selected {
            println!(
                "would {verb} {} ({})",
                m.sequence_number,
                reason_of(m, &joined)
            );
        }
        println!(
            "dry run: {} message(s) would be {past} from {path}; nothing was changed",
            selected.len()
        );
        return Ok(());
    }
    let bar = ProgressBar::hidden();
    let tick = |done: usize, total: usize| {
        if done == 1 && total >= PROGRESS_THRESHOLD && std::io::stderr().is_terminal() {
            show_progress(&bar, total, verb);
        }
        bar.set_position(done as u64);
    };
    let settled = dead_letters::settle(
        client,
        reasons,
        entity,
        selection,
        action,
        dead_letters::SettleOptions {
            expect: None,
            audit: audit.map(|trail| (trail, ACTOR)),
            on_each: Some(&tick),
        },
    )
    .await
    .map_err(dead_letters::SettleError::into_client_error)?;
    bar.finish_and_clear();
    let preposition = match action {
        DeadLetterAction::Resubmit => "to",
        DeadLetterAction::Discard => "from",
    };
    println!(
        "{} message(s) {past} {preposition} {}",
        settled.count, settled.place
    );
    Ok(())
}

/// Runs longer than this show a progress bar.
const PROGRESS_THRESHOLD: usize = 20;

fn show_progress(bar: &ProgressBar, total: usize, verb: &str) {
    bar.set_length(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(verb.to_string());
    bar.set_draw_target(ProgressDrawTarget::stderr());
}

fn confirm(entity: &str, selection: &Selection) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!(
        "Discard {} from {}? This cannot be undone. [y/N] ",
        selection.describe(),
        dlq_path(entity)
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes")
}
