use super::*;
use crate::task::{OUTCOME_SCHEMA, OutcomeError};

fn state(kinds: &[&str]) -> DocumentState {
    let now = Utc::now();
    DocumentState {
        schema: STATE_SCHEMA.into(),
        document_id: "d".into(),
        correlation_id: "c".into(),
        trace_id: None,
        status: DocumentStatus::Queued,
        submitted_at: now,
        updated_at: now,
        completed_at: None,
        content: ContentRef {
            container: "documents".into(),
            blob: "d.txt".into(),
            content_type: None,
            size_bytes: None,
            sha256: None,
        },
        source_content_type: "text/plain".into(),
        filename: None,
        options: AnalysisOptions {
            analyses: kinds.iter().map(|k| k.to_string()).collect(),
            labels: vec![],
            max_words: 80,
        },
        callback_url: None,
        tasks: BTreeMap::new(),
        deadline_at: None,
        analysis: None,
        completion_published: false,
        revision: 0,
        notification: None,
        extraction: None,
    }
}

fn outcome(kind: &str, ok: bool) -> TaskOutcome {
    TaskOutcome {
        schema: OUTCOME_SCHEMA.into(),
        task_id: task_id("d", kind),
        document_id: "d".into(),
        correlation_id: Some("c".into()),
        kind: kind.into(),
        status: if ok {
            OutcomeStatus::Succeeded
        } else {
            OutcomeStatus::Failed
        },
        result: None,
        model: Some("m".into()),
        usage: TokenUsage::new(10, 5),
        reused: false,
        error: (!ok).then(|| OutcomeError {
            reason: "ContentFiltered".into(),
            description: "no".into(),
        }),
        attempts: Some(2),
        duration_ms: Some(7),
        dead_lettered: !ok,
        trace: None,
    }
}

fn analysis() -> ResultRef {
    ResultRef {
        container: "results".into(),
        blob: "analyses/d.json".into(),
    }
}

#[test]
fn a_failed_text_extraction_fails_every_pending_analysis() {
    let mut s = state(&["summarize", "sentiment"]);
    let source = s.content.clone();
    s.extraction = Some(ExtractionInfo {
        source: Some(source),
        ..ExtractionInfo::pending_ocr("tesseract", vec![])
    });
    let now = Utc::now();
    assert!(s.start_analysis(now, now));
    assert!(s.awaits_ocr());
    // A success of extract_text is the step's own business: no outcome changes anything.
    assert_eq!(
        s.merge(&outcome(EXTRACT_TEXT_KIND, true), now),
        Merge::Unchanged
    );
    let mut failed = outcome(EXTRACT_TEXT_KIND, false);
    failed.error = Some(OutcomeError {
        reason: "OcrFailed".into(),
        description: "the scan is unreadable".into(),
    });
    assert_eq!(s.merge(&failed, now), Merge::Recorded);
    assert!(s.all_reported());
    assert!(!s.awaits_ocr());
    assert_eq!(
        s.extraction.as_ref().unwrap().status,
        ExtractionStatus::Failed
    );
    for entry in s.tasks.values() {
        assert_eq!(entry.status, TaskStatus::Failed);
        assert_eq!(entry.error.as_ref().unwrap().reason, "OcrFailed");
    }
    // A repeat changes nothing.
    assert_eq!(s.merge(&failed, now), Merge::Unchanged);
}

#[test]
fn manifest_is_written_once() {
    let mut s = state(&["summarize", "sentiment"]);
    let now = Utc::now();
    assert!(s.start_analysis(now, now));
    assert_eq!(s.status, DocumentStatus::Processing);
    assert_eq!(s.tasks.len(), 2);
    assert!(!s.start_analysis(now, now));
}

#[test]
fn first_outcome_wins_and_repeats_change_nothing() {
    let mut s = state(&["summarize", "sentiment"]);
    let now = Utc::now();
    s.start_analysis(now, now);
    assert_eq!(s.merge(&outcome("summarize", true), now), Merge::Recorded);
    assert_eq!(s.merge(&outcome("summarize", false), now), Merge::Unchanged);
    assert_eq!(s.merge(&outcome("translate", true), now), Merge::Unchanged);
    assert!(!s.all_reported());
    assert_eq!(s.merge(&outcome("sentiment", false), now), Merge::Recorded);
    assert!(s.all_reported());
    assert_eq!(s.tasks["summarize"].attempts, 2);
    assert!(s.tasks["sentiment"].error.as_ref().unwrap().dead_lettered);
    assert_eq!(s.usage().total_tokens, 30);
}

#[test]
fn final_status_names_what_failed() {
    let now = Utc::now();
    let mut all = state(&["summarize"]);
    all.start_analysis(now, now);
    all.merge(&outcome("summarize", true), now);
    assert!(all.finalize(now, "DeadlineExceeded", "late", analysis()));
    assert_eq!(all.status, DocumentStatus::Completed);
    assert!(!all.finalize(now, "DeadlineExceeded", "late", analysis()));

    let mut some = state(&["summarize", "sentiment"]);
    some.start_analysis(now, now);
    some.merge(&outcome("summarize", true), now);
    some.finalize(
        now,
        "DeadlineExceeded",
        "no outcome before the deadline",
        analysis(),
    );
    assert_eq!(some.status, DocumentStatus::Partial);
    assert_eq!(some.failed_tasks()[0].reason, "DeadlineExceeded");
    assert_eq!(
        some.merge(&outcome("sentiment", true), now),
        Merge::Unchanged
    );

    let mut none = state(&["summarize"]);
    none.start_analysis(now, now);
    none.merge(&outcome("summarize", false), now);
    none.finalize(now, "x", "y", analysis());
    assert_eq!(none.status, DocumentStatus::Failed);
    assert_eq!(none.succeeded_kinds(), Vec::<String>::new());
    // A resubmitted task that succeeds reopens the analysis with a new revision.
    assert_eq!(
        none.merge(&outcome("summarize", true), now),
        Merge::Recorded
    );
    assert!(none.reopen(now, |_| analysis()));
    assert_eq!((none.status, none.revision), (DocumentStatus::Completed, 1));
    assert!(!none.completion_published);
    assert!(!none.reopen(now, |_| analysis()));
    assert_eq!(
        none.merge(&outcome("summarize", false), now),
        Merge::Unchanged
    );
}
