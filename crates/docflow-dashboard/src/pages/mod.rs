//! The HTML, server-rendered with maud: the shell every page shares and one module per view.
//! Live parts are elements with an `id` that the page's script replaces with the HTML a
//! server-sent event carries; `data-live` on `<main>` names the page's event stream.

pub mod budget;
pub mod dead_letters;
pub mod document;
pub mod documents;
pub mod queues;
pub mod waterfall;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// The views in the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/`.
    Documents,
    /// `/queues`.
    Queues,
    /// `/dead-letters`.
    DeadLetters,
    /// `/budget`.
    Budget,
}

/// A whole page: the shell around `body`. `live` is the page's event stream, if it has one.
/// `token` is the action token; without one the dashboard is read-only: the page says so and
/// shows no action buttons.
pub fn page(
    title: &str,
    nav: Nav,
    token: Option<&str>,
    live: Option<&str>,
    problem: Option<&str>,
    body: Markup,
) -> Markup {
    let link = |href: &str, label: &str, this: Nav| {
        html! { a href=(href) class=[(nav == this).then_some("active")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(token) = token {
                    meta name="docflow-token" content=(token);
                }
                title { (title) " · docflow" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body class=[token.is_none().then_some("read-only")] {
                header {
                    span.brand { "docflow" }
                    nav {
                        (link("/", "Documents", Nav::Documents))
                        (link("/queues", "Queues", Nav::Queues))
                        (link("/dead-letters", "Dead letters", Nav::DeadLetters))
                        (link("/budget", "LLM budget", Nav::Budget))
                    }
                    span #live-state .live-state title="live updates" { }
                }
                @if token.is_none() {
                    p.read-only-note { "Read-only: start the dashboard with --allow-actions to resubmit or discard." }
                }
                @if let Some(p) = problem {
                    p.problem role="alert" { (p) }
                }
                main data-live=[live] {
                    (body)
                }
            }
        }
    }
}

/// A status badge.
pub fn badge(status: &str) -> Markup {
    html! { span class={"badge " (status)} { (status) } }
}

/// A timestamp as UTC text, with its age kept current by the page's script.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()) {
            (at.format("%H:%M:%S").to_string())
        }
    }
}

/// An age (`12s`) that the page's script keeps current from `data-since`.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        span.age data-since=(at.timestamp_millis()) title=(at.to_rfc3339()) {
            (crate::documents::age(at, now))
        }
    }
}

/// Text cut to `width` characters, whole in the tooltip.
pub fn clipped(text: &str, width: usize) -> Markup {
    html! { span title=(text) { (docflow_app::dead_letters::clip(text, width)) } }
}

/// A query-string value, percent-encoded.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
