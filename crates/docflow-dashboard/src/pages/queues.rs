//! `/queues`: every queue and subscription of the topology, live.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::encode;
use crate::queues::{QueueRow, format_age, format_rate};

/// The view's body.
pub fn body(rows: &[QueueRow], now: DateTime<Utc>) -> Markup {
    html! {
        h1 { "Queues" }
        p.hint { "In: messages sent per second (to a subscription's topic). Out: completed, forwarded or expired per second. Both from successive samples, every 2 s." }
        table.queues {
            thead { tr {
                th { "Queue or subscription" } th.num { "Active" } th.num { "Scheduled" }
                th.num { "Dead-lettered" } th.num { "Oldest message" } th.num { "In" } th.num { "Out" }
            } }
            tbody #queue-rows { (rows_html(rows, now)) }
        }
    }
}

/// The table's rows; a live update replaces them all.
pub fn rows_html(rows: &[QueueRow], now: DateTime<Utc>) -> Markup {
    html! {
        @for row in rows {
            tr data-entity=(row.entity.path) {
                td {
                    code { (row.entity.path) }
                    @if let Some(to) = &row.entity.forward_to { small { " → " (to) } }
                }
                td.num { (row.sample.active) }
                td.num { (row.sample.scheduled) }
                td.num {
                    @if row.sample.dead_lettered > 0 {
                        a href={"/dead-letters?entity=" (encode(&row.entity.path))} { (row.sample.dead_lettered) }
                    } @else { "0" }
                }
                td.num { (format_age(row.oldest_age_secs(), now)) }
                td.num { (format_rate(row.in_rate)) }
                td.num { (format_rate(row.out_rate)) }
            }
        }
    }
}
