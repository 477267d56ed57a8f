//! The offline provider on real-looking documents: deterministic, and sensible.

use docflow::ai::offline::{
    OfflineProvider, classify, cosine, embed, extract_entities, sentiment, summarize,
};
use docflow::ai::{AiRequest, EntityKind, Operation, SentimentLabel};

fn sample(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(name),
    )
    .unwrap()
}

fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

const ALL_SAMPLES: [&str; 4] = [
    "services-agreement.txt",
    "invoice-2025-0117.txt",
    "support-email-late-delivery.txt",
    "support-email-thank-you.txt",
];

#[test]
fn outputs_are_deterministic_to_the_byte() {
    let text = sample("services-agreement.txt");
    let operations = [
        Operation::Summarize { max_words: 60 },
        Operation::Classify {
            labels: vec!["contract".into(), "invoice".into(), "complaint".into()],
        },
        Operation::ExtractEntities,
        Operation::Sentiment,
        Operation::Embed,
    ];
    for operation in operations {
        let request = AiRequest {
            operation,
            text: text.clone(),
        };
        let a = serde_json::to_vec(&OfflineProvider::run_blocking(&request)).unwrap();
        let b = serde_json::to_vec(&OfflineProvider::run_blocking(&request)).unwrap();
        assert_eq!(a, b, "{:?}", request.operation);
        let output = OfflineProvider::run_blocking(&request);
        assert!(output.model.starts_with("offline-"));
        assert!(output.usage.input_tokens > 0);
    }
}

#[test]
fn summaries_are_sentences_of_the_text_within_max_words() {
    for name in ALL_SAMPLES {
        let text = sample(name);
        for max_words in [15, 40, 80] {
            let summary = summarize(&text, max_words);
            assert!(!summary.is_empty(), "{name}");
            let words = summary.split_whitespace().count();
            assert!(
                words <= max_words as usize,
                "{name}: {words} words > {max_words}: {summary}"
            );
            assert!(made_of_sentences(&text, &summary), "{name}: {summary}");
        }
    }
}

/// The summary is a sequence of whole sentences of the text, in the text's order.
fn made_of_sentences(text: &str, summary: &str) -> bool {
    let sentences: Vec<String> = docflow::ai::offline::sentences(text)
        .into_iter()
        .map(|(s, e)| normalized(&text[s..e]))
        .collect();
    let mut rest = summary.trim();
    for sentence in &sentences {
        if let Some(after) = rest.strip_prefix(sentence.as_str()) {
            rest = after.trim_start();
        }
    }
    rest.is_empty()
}

#[test]
fn a_termination_for_breach_clause_classifies_as_such() {
    let clause = "Either party may terminate this Agreement by written notice if the other party commits \
                  a material breach and fails to cure the breach within thirty days of receiving notice of it.";
    let labels: Vec<String> = [
        "payment terms",
        "confidentiality",
        "termination for breach",
        "governing law",
    ]
    .map(String::from)
    .to_vec();
    let scores = classify(clause, &labels);
    assert_eq!(scores[0].label, "termination for breach", "{scores:?}");
    assert!(scores[0].score > scores[1].score);

    let payment =
        "Fabrikam shall pay a monthly fee of $1,200.00 within thirty days of each invoice.";
    assert_eq!(classify(payment, &labels)[0].label, "payment terms");
    let kinds: Vec<String> = [
        "contract",
        "invoice",
        "customer complaint",
        "thank you note",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        classify(&sample("invoice-2025-0117.txt"), &kinds)[0].label,
        "invoice"
    );
}

#[test]
fn money_dates_organisations_and_people_are_found() {
    let text = sample("services-agreement.txt");
    let entities = extract_entities(&text);
    let has =
        |kind: EntityKind, value: &str| entities.iter().any(|e| e.kind == kind && e.text == value);
    assert!(has(EntityKind::Money, "$1,200.00"), "{entities:?}");
    assert!(has(EntityKind::Date, "March 3, 2025"), "{entities:?}");
    assert!(
        has(EntityKind::Organization, "Northwind Analytics Ltd."),
        "{entities:?}"
    );
    assert!(
        has(EntityKind::Organization, "Fabrikam Logistics Inc."),
        "{entities:?}"
    );
    assert!(has(EntityKind::Person, "Sarah Mitchell"), "{entities:?}");
    assert!(has(EntityKind::Person, "Dr. Daniel Okafor"), "{entities:?}");
    assert!(has(EntityKind::Location, "England"), "{entities:?}");
    let chars: Vec<char> = text.chars().collect();
    for e in &entities {
        assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.text);
    }

    let invoice = extract_entities(&sample("invoice-2025-0117.txt"));
    let texts: Vec<&str> = invoice.iter().map(|e| e.text.as_str()).collect();
    for expected in [
        "EUR 4,580.00",
        "2025-02-14",
        "March 16, 2025",
        "Contoso Office Supplies GmbH",
        "Tailspin Toys LLC",
        "Munich",
    ] {
        assert!(texts.contains(&expected), "{expected} not in {texts:?}");
    }
}

#[test]
fn complaints_are_negative_and_thanks_positive() {
    assert_eq!(
        sentiment(&sample("support-email-late-delivery.txt")).0,
        SentimentLabel::Negative
    );
    assert_eq!(
        sentiment(&sample("support-email-thank-you.txt")).0,
        SentimentLabel::Positive
    );
}

#[test]
fn paraphrases_embed_closer_than_unrelated_texts() {
    let a = embed("The customer has not paid the invoice, which is now overdue.");
    let b = embed("The client still owes the overdue invoice payment.");
    let c = embed("Our team hiked through the mountains and watched the sunset.");
    assert!(
        cosine(&a, &b) > cosine(&a, &c),
        "{} vs {}",
        cosine(&a, &b),
        cosine(&a, &c)
    );
    assert_eq!(a.len(), docflow::ai::offline::EMBEDDING_DIMENSIONS);
    let d =
        embed("If the customer breaches the agreement, the supplier may terminate the contract.");
    let e =
        embed("The supplier can end the contract when the customer is in breach of the agreement.");
    let f = embed("Please ship ten ergonomic office chairs to our Munich warehouse.");
    assert!(
        cosine(&d, &e) > cosine(&d, &f),
        "{} vs {}",
        cosine(&d, &e),
        cosine(&d, &f)
    );
    assert!(
        cosine(&d, &e) > 0.3,
        "paraphrases share most of their content words"
    );
}
