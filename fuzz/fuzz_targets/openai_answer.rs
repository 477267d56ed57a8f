//! OpenAI-compatible answers (chat completions and embeddings), read for every operation.
#![no_main]

use docflow::ai::Operation;
use docflow::ai::openai::{parse_chat_answer, parse_embedding_answer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = "Globex GmbH will pay $1,200.00 to Jane Doe on March 3, 2025. Ünïcødé ✓ text.";
    for operation in [
        Operation::Summarize { max_words: 20 },
        Operation::Classify {
            labels: vec!["contract".into(), "invoice".into()],
        },
        Operation::ExtractEntities,
        Operation::Sentiment,
    ] {
        let _ = parse_chat_answer(&operation, text, data);
    }
    let _ = parse_embedding_answer(data);
});
