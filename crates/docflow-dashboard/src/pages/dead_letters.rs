//! `/dead-letters`: dead letters grouped by entity, reason and error signature, with counts
//! and first/last seen, bulk resubmit and discard of a group (the count shown is the count
//! confirmed), a search over bodies, the messages of the view, and one message whole.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{age, clipped, encode, time};
use crate::triage::{DeadLetterQuery, EntityDeadLetters};
use docflow_app::dead_letters::{description_of, detail_json, last_error, preview, reason_of};
use docflow_servicebus::message::ReceivedMessage;

/// The view's body.
pub fn body(
    query: &DeadLetterQuery,
    entities: &[String],
    loaded: &[EntityDeadLetters],
    now: DateTime<Utc>,
) -> Markup {
    html! {
        h1 { "Dead letters" }
        form.filters method="get" action="/dead-letters" {
            label { "Entity "
                select name="entity" {
                    option value="" { "every entity with dead letters" }
                    @for e in entities {
                        option value=(e) selected[query.entity == *e] { (e) }
                    }
                }
            }
            label { "Body contains "
                input type="search" name="search" value=(query.search) placeholder="text in the message body";
            }
            button type="submit" { "Search" }
        }
        p #flash role="status" hidden {}
        div #dead-letter-groups { (groups_html(loaded, now)) }
        @let messages: usize = loaded.iter().map(|l| l.messages.len()).sum();
        @if messages > 0 {
            h2 { "Messages" }
            table.messages {
                thead { tr {
                    th { "Entity" } th.num { "Seq" } th { "Enqueued" } th.num { "Deliveries" }
                    th { "Reason" } th { "Last error" } th { "Correlation id" } th { "Body" }
                } }
                tbody {
                    @for l in loaded {
                        @for m in &l.messages {
                            tr {
                                td { code { (l.entity) } }
                                td.num { a href={"/dead-letters/message?entity=" (encode(&l.entity)) "&seq=" (m.sequence_number)} { (m.sequence_number) } }
                                td { (time(m.enqueued_time)) }
                                td.num { (m.delivery_count) }
                                td { code { (reason_of(m, &l.joined)) } }
                                td.error { (clipped(description_of(m, &l.joined), 70)) }
                                td { code { (m.message.correlation_id.as_deref().unwrap_or("-")) } }
                                td { code { (preview(&m.message.body, 50)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The groups table; a live update replaces it.
pub fn groups_html(loaded: &[EntityDeadLetters], now: DateTime<Utc>) -> Markup {
    let groups: Vec<_> = loaded.iter().flat_map(|l| &l.groups).collect();
    html! {
        @if groups.is_empty() {
            p.empty #no-dead-letters { "No dead letters." }
        } @else {
            table.groups {
                thead { tr {
                    th { "Entity" } th { "Reason" } th { "Error signature" } th.num { "Count" }
                    th { "First seen" } th { "Last seen" } th { "Actions" }
                } }
                tbody {
                    @for g in groups {
                        tr.group data-entity=(g.entity) data-reason=(g.reason) data-signature=(g.signature) data-count=(g.count) {
                            td { code { (g.entity) } }
                            td { code { (g.reason) } }
                            td.error { (clipped(&g.signature, 90)) br; small { "e.g. " (clipped(&g.example, 90)) } }
                            td.num.count { (g.count) }
                            td { (age(g.first_seen, now)) " ago" }
                            td { (age(g.last_seen, now)) " ago" }
                            td.actions {
                                button.resubmit type="button" data-action="resubmit" {
                                    "Resubmit " (g.count) " to " (g.entity)
                                }
                                " "
                                button.discard type="button" data-action="discard" { "Discard " (g.count) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One message whole, with its recorded last error.
pub fn message(
    entity: &str,
    m: &ReceivedMessage,
    joined: &docflow_app::dead_letters::Joined,
) -> Markup {
    let detail = serde_json::to_string_pretty(&detail_json(m, joined)).unwrap_or_default();
    html! {
        p { a href={"/dead-letters?entity=" (encode(entity))} { "← Dead letters of " (entity) } }
        h1 { "Dead letter " (m.sequence_number) " of " code { (entity) } }
        p #flash role="status" hidden {}
        @if let Some(e) = last_error(m, joined) {
            h2 { "Recorded last error" }
            dl.facts {
                dt { "Reason" } dd { code { (e.reason) } }
                dt { "Description" } dd { (e.description) }
                @if let Some(task) = &e.task_id { dt { "Task" } dd { code { (task) } } }
                @if let Some(n) = e.delivery_count { dt { "Delivery" } dd { (n) } }
                dt { "Recorded" } dd { (time(e.recorded_at)) }
            }
        } @else {
            p { "Service Bus's reason: " code { (reason_of(m, joined)) } " — " (description_of(m, joined)) }
        }
        div.actions data-entity=(entity) data-sequence=(m.sequence_number) data-count="1" {
            button.resubmit type="button" data-action="resubmit" { "Resubmit to " (entity) }
            " "
            button.discard type="button" data-action="discard" { "Discard" }
        }
        h2 { "Message" }
        pre { (detail) }
    }
}
