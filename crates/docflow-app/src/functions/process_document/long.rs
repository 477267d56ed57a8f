//! Documents longer than the context budget: a summary goes to the refine chain on
//! `summary-chunks`, an embedding is the mean of its chunks' vectors, and the other kinds run on
//! the first chunk.

use tracing::info;

use super::{ProcessDocument, Stop};
use crate::ai::{AiOutput, EmbeddedChunk, Operation, TaskOutput, TokenUsage};
use crate::functions::context::SUMMARY_CHUNKS_QUEUE;
use crate::pipeline::chunking::chunk;
use crate::pipeline::events::{CHUNK_STEP_SCHEMA, ChunkStep};
use crate::task::{AiTask, TaskInput};
use docflow_servicebus::{Message, MessageSender};

impl ProcessDocument {
    /// A document longer than the context budget. `None`: the summary went to the refine chain.
    pub(super) async fn long_document(
        &self,
        task: &AiTask,
        operation: &Operation,
        text: &str,
    ) -> Result<Option<(AiOutput, bool)>, Stop> {
        let spans = chunk(text, self.options.context_tokens);
        match operation {
            Operation::Summarize { max_words } => {
                if let (Some(bus), TaskInput::ContentRef(content)) = (&self.bus, &task.input) {
                    let step = ChunkStep {
                        schema: CHUNK_STEP_SCHEMA.into(),
                        task_id: task.task_id.clone(),
                        document_id: task.document_id.clone(),
                        correlation_id: task.correlation_id.clone(),
                        content: content.clone(),
                        chunks: spans.clone(),
                        index: 0,
                        running_summary: String::new(),
                        max_words: *max_words,
                        usage: TokenUsage::default(),
                        trace: crate::telemetry::messaging::for_message(
                            crate::functions::context::SUMMARY_CHUNKS_QUEUE,
                        ),
                    };
                    send_step(bus.as_ref(), &step)
                        .await
                        .map_err(|e| Stop::Transient {
                            reason: "ServiceBusUnavailable",
                            description: e,
                        })?;
                    info!(
                        chunks = spans.len(),
                        "long document; refine summary started"
                    );
                    return Ok(None);
                }
                let first = &text[spans[0].start..spans[0].end];
                Ok(Some((
                    self.call_provider(operation.clone(), first.into()).await?,
                    true,
                )))
            }
            Operation::Embed => {
                let mut chunks = Vec::with_capacity(spans.len());
                let mut usage = TokenUsage::default();
                let mut model = String::new();
                for span in &spans {
                    let answer = self
                        .call_provider(Operation::Embed, text[span.start..span.end].into())
                        .await?;
                    usage = usage.plus(answer.usage);
                    model = answer.model;
                    if let TaskOutput::Embed { vector, .. } = answer.output {
                        chunks.push(EmbeddedChunk {
                            start: span.start,
                            end: span.end,
                            vector,
                        });
                    }
                }
                let vector = mean_vector(&chunks);
                Ok(Some((
                    AiOutput {
                        model,
                        usage,
                        output: TaskOutput::Embed {
                            dimensions: vector.len(),
                            vector,
                            chunks,
                            pooling: None,
                        },
                    },
                    false,
                )))
            }
            other => {
                let first = &text[spans[0].start..spans[0].end];
                Ok(Some((
                    self.call_provider(other.clone(), first.into()).await?,
                    true,
                )))
            }
        }
    }
}

/// Sends one refine step to `summary-chunks` (`SessionId` = document id).
pub async fn send_step(bus: &dyn MessageSender, step: &ChunkStep) -> Result<(), String> {
    let message = Message::new(serde_json::to_vec(step).expect("a step serializes"));
    let mut message = crate::telemetry::stamp(message, step.trace.as_ref())
        .with_message_id(format!("{}:chunk:{}", step.task_id, step.index))
        .with_session_id(&step.document_id)
        .with_content_type("application/json");
    message.correlation_id = step.correlation_id.clone();
    bus.send(SUMMARY_CHUNKS_QUEUE, &message)
        .await
        .map_err(|e| e.to_string())
}

/// The normalised mean of the chunks' vectors.
pub(super) fn mean_vector(chunks: &[EmbeddedChunk]) -> Vec<f32> {
    let Some(first) = chunks.first() else {
        return Vec::new();
    };
    let mut sum = vec![0f32; first.vector.len()];
    for c in chunks {
        for (s, v) in sum.iter_mut().zip(&c.vector) {
            *s += v;
        }
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|v| *v /= norm);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::EmbeddedChunk;

    #[test]
    fn mean_of_chunk_vectors_is_normalised() {
        let chunk = |v: Vec<f32>| EmbeddedChunk {
            start: 0,
            end: 1,
            vector: v,
        };
        let mean = mean_vector(&[chunk(vec![1.0, 0.0]), chunk(vec![0.0, 1.0])]);
        assert!((mean[0] - mean[1]).abs() < 1e-6);
        assert!((mean.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(mean_vector(&[]).is_empty());
    }
}
