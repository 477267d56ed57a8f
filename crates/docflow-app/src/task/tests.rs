use super::*;
use serde_json::json;

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn valid() -> Value {
    json!({"schema": "ai.task.v1", "taskId": "doc-42:summarize", "documentId": "doc-42",
               "correlationId": "c-9", "kind": "summarize", "input": {"text": "Hello."},
               "parameters": {"maxWords": 40}, "extra": "ignored"})
}

#[test]
fn parses_the_contract() {
    let task = parse_task(&body(valid())).unwrap();
    assert_eq!(task.task_id, "doc-42:summarize");
    assert_eq!(task.work, Work::Ai(Operation::Summarize { max_words: 40 }));
    assert_eq!(task.input, TaskInput::Text("Hello.".into()));
    assert_eq!(task.correlation_id.as_deref(), Some("c-9"));
}

#[test]
fn each_kind_and_its_parameters() {
    let mut v = valid();
    v["kind"] = json!("classify");
    assert!(matches!(
        parse_task(&body(v.clone())),
        Err(TaskError::InvalidField {
            field: "parameters.labels",
            ..
        })
    ));
    v["parameters"] = json!({"labels": ["a", "b"]});
    assert_eq!(
        parse_task(&body(v.clone())).unwrap().work,
        Work::Ai(Operation::Classify {
            labels: vec!["a".into(), "b".into()]
        })
    );
    v["parameters"] = json!({"labels": ["a", "A"]});
    assert!(parse_task(&body(v.clone())).is_err());
    for kind in ["extract_entities", "sentiment", "embed"] {
        v["kind"] = json!(kind);
        assert_eq!(parse_task(&body(v.clone())).unwrap().work.kind(), kind);
    }
}

#[test]
fn poison_kinds_have_reasons() {
    assert_eq!(
        parse_task(b"{not json").unwrap_err().reason(),
        "InvalidMessageBody"
    );
    assert_eq!(
        parse_task(b"[1]").unwrap_err().reason(),
        "InvalidMessageBody"
    );
    let mut v = valid();
    v["schema"] = json!("ai.task.v2");
    assert_eq!(
        parse_task(&body(v.clone())).unwrap_err(),
        TaskError::UnknownSchema {
            found: Some("ai.task.v2".into())
        }
    );
    v["schema"] = json!("ai.task.v1");
    v["kind"] = json!("translate");
    assert_eq!(
        parse_task(&body(v.clone())).unwrap_err().reason(),
        "UnknownTaskKind"
    );
    let mut v = valid();
    v["parameters"] = json!({"maxWords": 0});
    assert!(parse_task(&body(v)).is_err());
    let mut v = valid();
    v["input"] = json!({"text": "a", "contentRef": {"container": "c", "blob": "b"}});
    assert!(parse_task(&body(v)).is_err());
    let mut v = valid();
    v["input"] =
        json!({"contentRef": {"container": "documents", "blob": "doc-42", "sha256": "xyz"}});
    assert!(parse_task(&body(v)).is_err());
}

#[test]
fn task_id_is_read_from_bodies_that_fail_later() {
    let mut v = valid();
    v["schema"] = json!("nope");
    assert_eq!(task_id_of(&body(v)).as_deref(), Some("doc-42:summarize"));
    assert_eq!(task_id_of(b"garbage"), None);
    assert_eq!(task_id_of(&body(json!({"taskId": ""}))), None);
}

#[test]
fn result_names_are_injective_and_safe() {
    assert_eq!(
        result_blob_name("doc-42:summarize"),
        "tasks/doc-42%3Asummarize.json"
    );
    assert_ne!(encode_segment("a:b"), encode_segment("a/b"));
    assert_eq!(encode_segment(".."), "%2E.");
    assert_eq!(encode_segment("a%b"), "a%25b");
}
