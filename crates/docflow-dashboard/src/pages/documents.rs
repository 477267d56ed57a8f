//! `/`: the Documents view: filters kept in the query string, and the live table.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{age, badge, clipped, encode};
use crate::documents::{DocumentRow, Filter, STATUSES, Window};

/// The view's body.
pub fn body(filter: &Filter, query: &str, rows: &[&DocumentRow], now: DateTime<Utc>) -> Markup {
    html! {
        h1 { "Documents" }
        form.filters method="get" action="/" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[filter.status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "Submitted "
                select name="since" {
                    @for w in Window::ALL {
                        option value=(w.as_str()) selected[filter.window == w] { (w.label()) }
                    }
                }
            }
            label { "Search "
                input type="search" name="q" value=(filter.text)
                    placeholder="id, correlation id, file name or text";
            }
            button type="submit" { "Filter" }
            @if !query.is_empty() { a href="/" { "clear" } }
        }
        table.documents {
            thead { tr {
                th { "Document" } th { "Status" } th { "Age" } th.num { "Tasks done / failed / total" }
                th.num { "Tokens" } th { "Last error" }
            } }
            tbody #rows {
                @for row in rows { (row_html(row, now)) }
            }
        }
        p.empty #no-rows hidden[!rows.is_empty()] { "No documents match." }
    }
}

/// One row; its `id` is what a live update replaces.
pub fn row_html(row: &DocumentRow, now: DateTime<Utc>) -> Markup {
    html! {
        tr id={"doc-" (row.id)} data-status=(row.status.as_str()) {
            td {
                a href={"/documents/" (encode(&row.id))} { code { (row.id) } }
                @if let Some(f) = &row.filename { br; small { (f) } }
            }
            td { (badge(row.status.as_str())) }
            td { (age(row.submitted_at, now)) }
            td.num { (row.done) " / " (row.failed) " / " (row.total) }
            td.num { @match row.tokens { Some(t) => (t), None => "-" } }
            td.error { @match &row.last_error { Some(e) => (clipped(e, 80)), None => "" } }
        }
    }
}
