//! The documents table: one row per state record, and the filters of the Documents view
//! (status, time window, free text over id, correlation id, file name and content), kept in
//! the page's query string so that a filtered view is a link.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use docflow_app::pipeline::state::{DocumentState, DocumentStatus, TaskStatus};

/// Most documents the table reads from the recent-documents index.
pub const MAX_ROWS: usize = 200;

/// Most characters of a document's text kept for the free-text filter.
pub const MAX_SEARCH_TEXT: usize = 64 * 1024;

/// One row of the Documents table.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRow {
    /// The document.
    pub id: String,
    /// Where it is.
    pub status: DocumentStatus,
    /// When it was accepted.
    pub submitted_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The correlation id.
    pub correlation_id: String,
    /// The submitted file name.
    pub filename: Option<String>,
    /// Tasks succeeded.
    pub done: usize,
    /// Tasks failed.
    pub failed: usize,
    /// Tasks in the manifest.
    pub total: usize,
    /// Tokens spent, when any task recorded usage.
    pub tokens: Option<u64>,
    /// The latest task error (`Reason: description`).
    pub last_error: Option<String>,
}

impl DocumentRow {
    /// The row of a state record.
    pub fn of(state: &DocumentState) -> Self {
        let tasks = state.tasks.values();
        let tokens: u64 = state.tasks.values().map(|t| t.usage.total_tokens).sum();
        let last_error = state
            .tasks
            .values()
            .filter_map(|t| t.error.as_ref().map(|e| (t.finished_at, e)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, e)| format!("{}: {}", e.reason, e.description));
        Self {
            id: state.document_id.clone(),
            status: state.status,
            submitted_at: state.submitted_at,
            updated_at: state.updated_at,
            correlation_id: state.correlation_id.clone(),
            filename: state.filename.clone(),
            done: tasks
                .clone()
                .filter(|t| t.status == TaskStatus::Succeeded)
                .count(),
            failed: tasks.filter(|t| t.status == TaskStatus::Failed).count(),
            total: state.tasks.len(),
            tokens: (tokens > 0).then_some(tokens),
            last_error,
        }
    }
}

/// The time windows the filter offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Everything kept.
    All,
    /// The last 15 minutes.
    Minutes15,
    /// The last hour.
    Hour,
    /// The last day.
    Day,
}

impl Window {
    /// Every window, in the order the filter lists them.
    pub const ALL: [Window; 4] = [Window::All, Window::Minutes15, Window::Hour, Window::Day];

    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::All => "",
            Window::Minutes15 => "15m",
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    /// What the filter shows.
    pub fn label(self) -> &'static str {
        match self {
            Window::All => "any time",
            Window::Minutes15 => "last 15 minutes",
            Window::Hour => "last hour",
            Window::Day => "last 24 hours",
        }
    }

    fn length(self) -> Option<Duration> {
        match self {
            Window::All => None,
            Window::Minutes15 => Some(Duration::minutes(15)),
            Window::Hour => Some(Duration::hours(1)),
            Window::Day => Some(Duration::hours(24)),
        }
    }
}

/// The Documents view's query string as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    /// A status name, or empty for all.
    #[serde(default)]
    pub status: String,
    /// A window (`15m`, `1h`, `24h`), or empty for all.
    #[serde(default)]
    pub since: String,
    /// Free text.
    #[serde(default)]
    pub q: String,
}

/// Why a filter is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// Not a status.
    #[error("status must be one of queued, processing, completed, partial, failed (got {0:?})")]
    Status(String),
    /// Not a window.
    #[error("since must be one of 15m, 1h, 24h (got {0:?})")]
    Since(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Only this status.
    pub status: Option<DocumentStatus>,
    /// Only submitted within this window.
    pub window: Window,
    /// Free text (lower case), matched against id, correlation id, file name and content.
    pub text: String,
}

/// The statuses the filter offers.
pub const STATUSES: [DocumentStatus; 5] = [
    DocumentStatus::Queued,
    DocumentStatus::Processing,
    DocumentStatus::Completed,
    DocumentStatus::Partial,
    DocumentStatus::Failed,
];

impl Filter {
    /// Parses the query string's values.
    pub fn parse(query: &FilterQuery) -> Result<Self, FilterError> {
        let status = match query.status.trim() {
            "" => None,
            s => Some(
                STATUSES
                    .into_iter()
                    .find(|st| st.as_str() == s)
                    .ok_or_else(|| FilterError::Status(s.to_string()))?,
            ),
        };
        let window = Window::ALL
            .into_iter()
            .find(|w| w.as_str() == query.since.trim())
            .ok_or_else(|| FilterError::Since(query.since.clone()))?;
        Ok(Self {
            status,
            window,
            text: query.q.trim().to_lowercase(),
        })
    }

    /// Whether a row passes; `content` is the document's text (lower case) when known.
    pub fn matches(&self, row: &DocumentRow, content: Option<&str>, now: DateTime<Utc>) -> bool {
        if self.status.is_some_and(|s| s != row.status) {
            return false;
        }
        if let Some(length) = self.window.length()
            && row.submitted_at < now - length
        {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        row.id.to_lowercase().contains(&self.text)
            || row.correlation_id.to_lowercase().contains(&self.text)
            || row
                .filename
                .as_deref()
                .is_some_and(|f| f.to_lowercase().contains(&self.text))
            || content.is_some_and(|c| c.contains(&self.text))
    }

    /// Whether the free text needs the documents' content.
    pub fn searches_text(&self) -> bool {
        !self.text.is_empty()
    }
}

/// `when` as an age: `12s`, `4m`, `3h`, `2d`.
pub fn age(when: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - when).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: DocumentStatus, minutes_ago: i64, now: DateTime<Utc>) -> DocumentRow {
        DocumentRow {
            id: id.into(),
            status,
            submitted_at: now - Duration::minutes(minutes_ago),
            updated_at: now,
            correlation_id: format!("corr-{id}"),
            filename: Some(format!("{id}.txt")),
            done: 0,
            failed: 0,
            total: 0,
            tokens: None,
            last_error: None,
        }
    }

    fn filter(status: &str, since: &str, q: &str) -> Result<Filter, FilterError> {
        Filter::parse(&FilterQuery {
            status: status.into(),
            since: since.into(),
            q: q.into(),
        })
    }

    #[test]
    fn status_window_and_text_filter_rows() {
        let now = Utc::now();
        let a = row("aaa", DocumentStatus::Completed, 5, now);
        let b = row("bbb", DocumentStatus::Processing, 90, now);
        let all = filter("", "", "").unwrap();
        assert!(all.matches(&a, None, now) && all.matches(&b, None, now));
        let completed = filter("completed", "", "").unwrap();
        assert!(completed.matches(&a, None, now) && !completed.matches(&b, None, now));
        let recent = filter("", "1h", "").unwrap();
        assert!(recent.matches(&a, None, now) && !recent.matches(&b, None, now));
        let by_corr = filter("", "", "CORR-BBB").unwrap();
        assert!(!by_corr.matches(&a, None, now) && by_corr.matches(&b, None, now));
        let by_content = filter("", "", "Invoice").unwrap();
        assert!(by_content.searches_text());
        assert!(by_content.matches(&a, Some("an invoice from contoso"), now));
        assert!(!by_content.matches(&b, Some("a contract"), now));
        assert!(by_content.matches(&row("invoice-1", DocumentStatus::Queued, 1, now), None, now));
    }

    #[test]
    fn unknown_statuses_and_windows_are_refused() {
        assert_eq!(
            filter("done", "", ""),
            Err(FilterError::Status("done".into()))
        );
        assert_eq!(filter("", "2w", ""), Err(FilterError::Since("2w".into())));
    }

    #[test]
    fn ages_are_short() {
        let now = Utc::now();
        assert_eq!(age(now - Duration::seconds(5), now), "5s");
        assert_eq!(age(now - Duration::minutes(3), now), "3m");
        assert_eq!(age(now - Duration::hours(2), now), "2h");
        assert_eq!(age(now + Duration::seconds(5), now), "0s");
    }
}
