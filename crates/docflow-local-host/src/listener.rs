//! Service Bus trigger listeners: receive in peek-lock, invoke, settle as the host does.
//!
//! 2xx with a readable JSON reply and successful outputs → complete (when
//! `autoCompleteMessages`); anything else → abandon. Locks are renewed while an invocation runs,
//! up to `maxAutoLockRenewalDuration` (not for batches). Concurrency follows
//! `maxConcurrentCalls`, `maxConcurrentSessions` and `maxConcurrentCallsPerSession`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::{Instrument, error, info, info_span, warn};

use super::Context;
use super::config::{FunctionDef, ServiceBusTrigger};
use super::invoke;
use docflow_broker::{ReceiveMode, SessionLock};
use docflow_servicebus::message::{PropertyValue, ReceivedMessage};
use docflow_telemetry::TraceContext;
use docflow_telemetry::messaging;

/// How long one receive waits before the loop checks for shutdown again.
const POLL: Duration = Duration::from_secs(1);
/// A session with no message for this long is released.
const SESSION_IDLE: Duration = Duration::from_secs(1);

/// Runs the listener of one Service Bus function until shutdown.
pub async fn run(ctx: Arc<Context>, def: FunctionDef, trigger: ServiceBusTrigger) {
    if trigger.many {
        batches(ctx, def, trigger).await;
    } else if trigger.sessions {
        let workers = ctx.app.host.max_concurrent_sessions;
        let mut tasks = Vec::new();
        for _ in 0..workers {
            tasks.push(tokio::spawn(sessions(
                ctx.clone(),
                def.clone(),
                trigger.clone(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
    } else {
        singles(ctx, def, trigger).await;
    }
}

async fn singles(ctx: Arc<Context>, def: FunctionDef, trigger: ServiceBusTrigger) {
    let slots = Arc::new(Semaphore::new(ctx.app.host.max_concurrent_calls));
    let def = Arc::new(def);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = ctx.shutdown.cancelled() => break,
        };
        let received = tokio::select! {
            r = ctx.broker.receive(&trigger.entity, false, ReceiveMode::PeekLock, POLL) => r,
            () = ctx.shutdown.cancelled() => break,
        };
        match received {
            Ok(Some(message)) => {
                let (ctx, def, trigger) = (ctx.clone(), def.clone(), trigger.clone());
                tokio::spawn(async move {
                    invoke_single(&ctx, &def, &trigger, message, None).await;
                    drop(permit);
                });
            }
            Ok(None) => {}
            Err(e) => {
                error!(function = %def.name, error = %e, "receiving failed");
                tokio::time::sleep(POLL).await;
            }
        }
    }
    // Drain: wait for the invocations in flight.
    let _ = slots
        .acquire_many(ctx.app.host.max_concurrent_calls as u32)
        .await;
}

async fn sessions(ctx: Arc<Context>, def: FunctionDef, trigger: ServiceBusTrigger) {
    let per_session = ctx.app.host.max_calls_per_session;
    while !ctx.shutdown.is_cancelled() {
        let accepted = tokio::select! {
            r = ctx.broker.accept_session(&trigger.entity, None, POLL) => r,
            () = ctx.shutdown.cancelled() => break,
        };
        let lock = match accepted {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            Err(e) => {
                warn!(function = %def.name, error = %e, "accepting a session failed");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let renewal = tokio::spawn(renew_session(
            ctx.clone(),
            trigger.entity.clone(),
            lock.clone(),
        ));
        let slots = Arc::new(Semaphore::new(per_session));
        loop {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let received = tokio::select! {
                r = ctx.broker.receive_in_session(&trigger.entity, &lock, ReceiveMode::PeekLock, SESSION_IDLE) => r,
                () = ctx.shutdown.cancelled() => break,
            };
            let Ok(Some(message)) = received else { break };
            if per_session == 1 {
                invoke_single(&ctx, &def, &trigger, message, Some(&lock)).await;
                drop(permit);
            } else {
                let (ctx, def, trigger, lock) =
                    (ctx.clone(), def.clone(), trigger.clone(), lock.clone());
                tokio::spawn(async move {
                    invoke_single(&ctx, &def, &trigger, message, Some(&lock)).await;
                    drop(permit);
                });
            }
        }
        let _ = slots.acquire_many(per_session as u32).await;
        renewal.abort();
        if let Err(e) = ctx.broker.close_session(&trigger.entity, &lock).await {
            warn!(function = %def.name, session = %lock.session_id, error = %e, "closing the session failed");
        }
    }
}

async fn renew_session(ctx: Arc<Context>, entity: String, lock: SessionLock) {
    let every = ctx.lock_duration(&entity) / 2;
    loop {
        tokio::time::sleep(every).await;
        if ctx.broker.renew_session_lock(&entity, &lock).await.is_err() {
            return;
        }
    }
}

async fn batches(ctx: Arc<Context>, def: FunctionDef, trigger: ServiceBusTrigger) {
    while !ctx.shutdown.is_cancelled() {
        let received = tokio::select! {
            r = ctx.broker.receive_batch(&trigger.entity, trigger.max_batch_size, ReceiveMode::PeekLock, POLL) => r,
            () = ctx.shutdown.cancelled() => break,
        };
        let batch = match received {
            Ok(b) if b.is_empty() => continue,
            Ok(b) => b,
            Err(e) => {
                error!(function = %def.name, error = %e, "receiving a batch failed");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let received_at = chrono::Utc::now();
        let called = Instant::now();
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let span = info_span!(
            "invocation",
            otel.name = %format_args!("receive {}", trigger.entity),
            otel.kind = "consumer",
            function = %def.name,
            invocation_id = %invocation_id,
            messages = batch.len()
        );
        // A batch continues no one message's trace: it links to each.
        for message in &batch {
            if let Some(context) = message_context(message) {
                context.link(&span);
            }
        }
        let result = async {
            let (request, data) =
                invoke::service_bus_batch_request(&def.name, &trigger, &batch, &ctx.namespace)?;
            ctx.invoke(&def, &invocation_id, &request, &data).await
        }
        .instrument(span.clone())
        .await;
        // No lock renewal for batches (as on Azure): a slow batch can lose its locks.
        let handler = called.elapsed() / batch.len().max(1) as u32;
        let _enter = span.enter();
        for message in &batch {
            let settling = Instant::now();
            settle(&ctx, &trigger, message, &result, None).await;
            ctx.timings
                .record(&def.name, message, received_at, handler, settling.elapsed());
        }
    }
}

/// Invokes the function for one message, renewing its lock meanwhile, then settles it.
async fn invoke_single(
    ctx: &Arc<Context>,
    def: &FunctionDef,
    trigger: &ServiceBusTrigger,
    message: ReceivedMessage,
    session: Option<&SessionLock>,
) {
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let span = info_span!(
        "invocation",
        otel.name = %format_args!("receive {}", trigger.entity),
        otel.kind = "consumer",
        function = %def.name,
        invocation_id = %invocation_id,
        message_id = message.message.message_id.as_deref().unwrap_or(""),
        delivery_count = message.delivery_count,
    );
    start_receive(&span, trigger, &message);
    async {
        let renewal = match (session, &message.lock_token) {
            (None, Some(token)) => Some(tokio::spawn(renew_message(
                ctx.clone(),
                trigger.entity.clone(),
                token.clone(),
            ))),
            _ => None,
        };
        let received_at = chrono::Utc::now();
        let (request, data) =
            invoke::service_bus_request(&def.name, trigger, &message, &ctx.namespace);
        let called = Instant::now();
        let result = ctx.invoke(def, &invocation_id, &request, &data).await;
        let handler = called.elapsed();
        if let Some(r) = renewal {
            r.abort();
        }
        let settling = Instant::now();
        settle(ctx, trigger, &message, &result, session).await;
        ctx.timings.record(
            &def.name,
            &message,
            received_at,
            handler,
            settling.elapsed(),
        );
    }
    .instrument(span)
    .await;
}

/// The host's span of a received message continues the trace its application properties
/// carry (`traceparent`, else `Diagnostic-Id`, as Microsoft's SDKs set them).
fn start_receive(span: &tracing::Span, trigger: &ServiceBusTrigger, message: &ReceivedMessage) {
    let context = message_context(message);
    let queue_wait = (chrono::Utc::now() - message.enqueued_time).to_std().ok();
    messaging::start_receive(
        span,
        messaging::Destination {
            entity: &trigger.entity,
            subscription: None,
        },
        &messaging::Received {
            message_id: message.message.message_id.as_deref(),
            correlation_id: message.message.correlation_id.as_deref(),
            delivery_count: Some(message.delivery_count),
            queue_wait,
            context: context.as_ref(),
        },
    );
}

fn message_context(message: &ReceivedMessage) -> Option<TraceContext> {
    messaging::message_context(None, |name| match message.message.properties.get(name) {
        Some(PropertyValue::String(value)) => Some(value.clone()),
        _ => None,
    })
}

async fn renew_message(ctx: Arc<Context>, entity: String, token: String) {
    let every = (ctx.lock_duration(&entity) / 2).max(Duration::from_millis(500));
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if ctx
            .app
            .host
            .max_lock_renewal
            .is_some_and(|max| started.elapsed() + every > max)
        {
            return;
        }
        let renewed = ctx
            .broker
            .renew_message_lock(&entity, false, &token, None)
            .instrument(messaging::settle_span("renew_lock", &entity))
            .await;
        if let Err(e) = renewed {
            warn!(error = %e, "renewing the message lock failed");
            return;
        }
    }
}

async fn settle(
    ctx: &Context,
    trigger: &ServiceBusTrigger,
    message: &ReceivedMessage,
    result: &Result<Option<Value>, String>,
    _session: Option<&SessionLock>,
) {
    let outcome = match result {
        Ok(_) if !trigger.auto_complete => return,
        Ok(_) => {
            ctx.broker
                .complete_message(&trigger.entity, message)
                .instrument(messaging::settle_span("complete", &trigger.entity))
                .await
        }
        Err(reason) => {
            warn!(%reason, "invocation failed; abandoning the message");
            ctx.broker
                .abandon_message(&trigger.entity, message)
                .instrument(messaging::settle_span("abandon", &trigger.entity))
                .await
        }
    };
    match outcome {
        Ok(()) if result.is_ok() => info!("message completed"),
        Ok(()) => {}
        Err(e) => {
            warn!(error = %e, "settling the message failed (its lock was lost); it will be redelivered")
        }
    }
}
