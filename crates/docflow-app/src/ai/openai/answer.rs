//! What docflow asks a chat model for and how it reads the answer: the prompt and JSON Schema
//! of each kind, and a parser that is tolerant where the meaning is unambiguous (reasoning
//! before the JSON, code fences, a score written as a string, label case and whitespace) and
//! strict otherwise, naming the field at fault.

use serde_json::{Map, Value, json};

use crate::ai::{Entity, EntityKind, LabelScore, Operation, SentimentLabel, TaskOutput};

/// The system prompt of a chat operation, and the schema of its answer (`None`: free text).
pub fn prompt(operation: &Operation) -> (String, Option<(&'static str, Value)>) {
    match operation {
        Operation::Summarize { max_words } => (
            format!(
                "Summarize the document the user sends in at most {max_words} words. \
                 Reply with the summary text only."
            ),
            None,
        ),
        Operation::Classify { labels } => {
            let schema = classify_schema(labels);
            (
                format!(
                    "Classify the document the user sends into exactly one of these labels: {}. \
                     Reply with only a JSON object matching this JSON Schema, giving a score \
                     from 0 to 1 for every label: {schema}",
                    serde_json::to_string(labels).unwrap_or_default()
                ),
                Some(("classification", schema)),
            )
        }
        Operation::ExtractEntities => {
            let schema = entities_schema();
            (
                format!(
                    "Extract the named entities of the document the user sends: people, \
                     organizations, locations, dates and money amounts, each with its exact \
                     text as written, in order of appearance. Reply with only a JSON object \
                     matching this JSON Schema: {schema}"
                ),
                Some(("entities", schema)),
            )
        }
        Operation::Sentiment => {
            let schema = sentiment_schema();
            (
                format!(
                    "Rate the overall sentiment of the document the user sends: a label and a \
                     score from -1 (most negative) to 1 (most positive). Reply with only a JSON \
                     object matching this JSON Schema: {schema}"
                ),
                Some(("sentiment", schema)),
            )
        }
        Operation::Embed => (String::new(), None),
    }
}

fn classify_schema(labels: &[String]) -> Value {
    let scores: Map<String, Value> = labels
        .iter()
        .map(|l| (l.clone(), json!({"type": "number"})))
        .collect();
    json!({
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": labels},
            "scores": {"type": "object", "properties": scores, "required": labels, "additionalProperties": false},
        },
        "required": ["label", "scores"],
        "additionalProperties": false,
    })
}

/// Most entities asked for: bounds the answer (a small model otherwise lists until
/// `max_tokens`) while leaving room for any ordinary document.
pub const MAX_ENTITIES: usize = 30;
/// Longest entity text asked for, in characters.
pub const MAX_ENTITY_CHARS: usize = 60;

fn entities_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "entities": {
                "type": "array",
                "maxItems": MAX_ENTITIES,
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["person", "organization", "location", "date", "money"]},
                        "text": {"type": "string", "maxLength": MAX_ENTITY_CHARS},
                    },
                    "required": ["kind", "text"],
                    "additionalProperties": false,
                },
            },
        },
        "required": ["entities"],
        "additionalProperties": false,
    })
}

fn sentiment_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number"},
        },
        "required": ["label", "score"],
        "additionalProperties": false,
    })
}

/// The JSON object in a model's answer: reasoning (`<think>…</think>`) and code fences are
/// dropped, and the outermost `{…}` is taken.
pub fn json_object(content: &str) -> Result<Value, String> {
    let mut text = content.to_string();
    while let (Some(start), Some(end)) = (text.find("<think>"), text.find("</think>")) {
        if end < start {
            break;
        }
        text.replace_range(start..end + "</think>".len(), "");
    }
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err(format!(
            "no JSON object in the answer {:?}",
            clip(content.trim(), 120)
        ));
    };
    if end < start {
        return Err("no JSON object in the answer".into());
    }
    serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the JSON object in the answer is invalid: {e}"))
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A string compared without case and surrounding whitespace or quotes.
fn same(a: &str, b: &str) -> bool {
    a.trim()
        .trim_matches(['"', '\'', '.'])
        .trim()
        .eq_ignore_ascii_case(b.trim())
}

/// Reads a chat answer as the output of `operation` on `text`.
pub fn interpret(operation: &Operation, text: &str, content: &str) -> Result<TaskOutput, String> {
    match operation {
        Operation::Summarize { max_words } => {
            let content = strip_think(content);
            let words: Vec<&str> = content.split_whitespace().collect();
            if words.is_empty() {
                return Err("the summary is empty".into());
            }
            let keep = words.len().min(*max_words as usize);
            Ok(TaskOutput::Summarize {
                summary: words[..keep].join(" "),
            })
        }
        Operation::Classify { labels } => classify(labels, &json_object(content)?),
        Operation::ExtractEntities => entities(text, &json_object(content)?),
        Operation::Sentiment => sentiment(&json_object(content)?),
        Operation::Embed => Err("embeddings do not use chat".into()),
    }
}

fn strip_think(content: &str) -> &str {
    match content.find("</think>") {
        Some(end) => &content[end + "</think>".len()..],
        None => content,
    }
}

fn classify(labels: &[String], answer: &Value) -> Result<TaskOutput, String> {
    let given = answer
        .get("label")
        .and_then(Value::as_str)
        .ok_or("missing field label")?;
    let label = labels
        .iter()
        .find(|l| same(given, l))
        .cloned()
        .ok_or_else(|| format!("label {given:?} is not one of the labels {labels:?}"))?;
    let score_of = |l: &str| -> Option<f64> {
        match answer.get("scores") {
            Some(Value::Object(map)) => map
                .iter()
                .find(|(k, _)| same(k, l))
                .and_then(|(_, v)| number(v)),
            Some(Value::Array(items)) => items
                .iter()
                .find(|i| {
                    i.get("label")
                        .and_then(Value::as_str)
                        .is_some_and(|k| same(k, l))
                })
                .and_then(|i| i.get("score").and_then(number)),
            _ => None,
        }
    };
    if let Some(bad) = answer
        .get("scores")
        .filter(|s| !s.is_object() && !s.is_array() && !s.is_null())
    {
        return Err(format!("scores must be an object of numbers, not {bad}"));
    }
    let mut scores: Vec<LabelScore> = labels
        .iter()
        .map(|l| LabelScore {
            label: l.clone(),
            score: score_of(l)
                .map(|s| if s > 1.0 && s <= 100.0 { s / 100.0 } else { s })
                .unwrap_or(if *l == label { 1.0 } else { 0.0 })
                .clamp(0.0, 1.0),
        })
        .collect();
    scores.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| (b.label == label).cmp(&(a.label == label)))
    });
    Ok(TaskOutput::Classify { label, scores })
}

fn entities(text: &str, answer: &Value) -> Result<TaskOutput, String> {
    let items = answer
        .get("entities")
        .and_then(Value::as_array)
        .ok_or("missing field entities (an array)")?;
    let mut named = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("kind")
            .or_else(|| item.get("type"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("entities[{i}] has no kind"))?;
        let text = item
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("entities[{i}] has no text"))?;
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "person" => EntityKind::Person,
            "organization" | "organisation" => EntityKind::Organization,
            "location" => EntityKind::Location,
            "date" => EntityKind::Date,
            "money" => EntityKind::Money,
            // Kinds docflow does not extract are left out, not an error.
            _ => continue,
        };
        named.push((kind, text.to_string()));
    }
    Ok(TaskOutput::ExtractEntities {
        entities: locate_entities(text, named),
    })
}

fn sentiment(answer: &Value) -> Result<TaskOutput, String> {
    let given = answer
        .get("label")
        .and_then(Value::as_str)
        .ok_or("missing field label")?;
    let label = [
        ("positive", SentimentLabel::Positive),
        ("negative", SentimentLabel::Negative),
        ("neutral", SentimentLabel::Neutral),
    ]
    .into_iter()
    .find(|(name, _)| same(given, name))
    .map(|(_, l)| l)
    .ok_or_else(|| format!("label {given:?} is not positive, negative or neutral"))?;
    let score = answer
        .get("score")
        .and_then(number)
        .ok_or("missing field score (a number from -1 to 1)")?;
    Ok(TaskOutput::Sentiment {
        label,
        score: score.clamp(-1.0, 1.0),
    })
}

/// Finds each entity the model named in the text, in order; names not in the text are dropped.
pub fn locate_entities(text: &str, named: Vec<(EntityKind, String)>) -> Vec<Entity> {
    let mut entities = Vec::new();
    let mut from = 0;
    for (kind, name) in named {
        let needle = name.trim();
        if needle.is_empty() {
            continue;
        }
        let found = text[from..]
            .find(needle)
            .map(|i| i + from)
            .or_else(|| text.find(needle));
        if let Some(start) = found {
            let end = start + needle.len();
            from = end;
            entities.push(Entity {
                kind,
                text: needle.to_string(),
                start: text[..start].chars().count(),
                end: text[..end].chars().count(),
            });
        }
    }
    entities.sort_by_key(|e| e.start);
    entities
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["invoice".into(), "contract".into()]
    }

    #[test]
    fn json_is_found_behind_reasoning_and_fences() {
        let answer = "<think>It mentions money.</think>\n```json\n{\"label\": \"Invoice \", \"scores\": {\"invoice\": \"0.9\", \"contract\": 0.1}}\n```";
        let Ok(TaskOutput::Classify { label, scores }) =
            interpret(&Operation::Classify { labels: labels() }, "", answer)
        else {
            panic!()
        };
        assert_eq!(label, "invoice");
        assert_eq!(scores[0].score, 0.9);
    }

    #[test]
    fn unusable_answers_name_the_problem() {
        let classify = Operation::Classify { labels: labels() };
        assert!(
            interpret(&classify, "", "I cannot tell.")
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            interpret(&classify, "", "{\"scores\": {}}")
                .unwrap_err()
                .contains("missing field label")
        );
        assert!(
            interpret(&classify, "", "{\"label\": \"memo\"}")
                .unwrap_err()
                .contains("not one of the labels")
        );
        assert!(
            interpret(
                &Operation::Sentiment,
                "",
                "{\"label\": \"happy\", \"score\": 1}"
            )
            .is_err()
        );
        assert!(
            interpret(&Operation::Sentiment, "", "{\"label\": \"positive\"}")
                .unwrap_err()
                .contains("score")
        );
        assert!(interpret(&Operation::Summarize { max_words: 5 }, "", "  ").is_err());
    }

    #[test]
    fn lenient_where_unambiguous() {
        let Ok(TaskOutput::Sentiment { label, score }) = interpret(
            &Operation::Sentiment,
            "",
            "{\"label\": \" Negative\", \"score\": \"-0.5\"}",
        ) else {
            panic!()
        };
        assert_eq!((label, score), (SentimentLabel::Negative, -0.5));
        let text = "Acme paid Bob. Bob thanked Acme.";
        let Ok(TaskOutput::ExtractEntities { entities }) = interpret(
            &Operation::ExtractEntities,
            text,
            r#"{"entities": [{"kind": "ORGANIZATION", "text": "Acme"}, {"kind": "product", "text": "x"}, {"kind": "person", "text": "Bob"}, {"kind": "person", "text": "Zed"}]}"#,
        ) else {
            panic!()
        };
        let starts: Vec<usize> = entities.iter().map(|e| e.start).collect();
        assert_eq!(starts, vec![0, 10]);
    }

    #[test]
    fn schemas_require_every_field() {
        let (_, schema) = prompt(&Operation::Classify { labels: labels() });
        let (name, schema) = schema.unwrap();
        assert_eq!(name, "classification");
        assert_eq!(
            schema["properties"]["label"]["enum"],
            json!(["invoice", "contract"])
        );
        assert_eq!(
            schema["properties"]["scores"]["required"],
            json!(["invoice", "contract"])
        );
        assert_eq!(schema["additionalProperties"], false);
        assert!(prompt(&Operation::Summarize { max_words: 3 }).1.is_none());
    }
}
