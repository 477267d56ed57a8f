//! Classification by similarity between the text and each label.
//!
//! A label's raw score mixes two similarities:
//! - lexical: for each content stem of the label, how often the text uses it (or a word of the
//!   same family, by shared prefix), saturated as in BM25 and weighted by how specific the stem
//!   is to this label among all labels;
//! - semantic: the cosine of the hashed embeddings of label and text.
//!
//! A softmax turns raw scores into scores that sum to 1.

use std::collections::HashMap;

use super::embed::{cosine, embed};
use super::text::{content_stems, stem, tokens};
use crate::ai::LabelScore;

/// BM25's term-frequency saturation constant.
const SATURATION: f64 = 1.2;
/// Share of the lexical similarity in the raw score; the rest is the embedding cosine.
const LEXICAL_SHARE: f64 = 0.75;
/// Softmax sharpness: raw scores differ by tenths, so they are scaled up before exponentiating.
const SHARPNESS: f64 = 8.0;
/// Weight of thesaurus words relative to the label's own words.
const RELATED_SHARE: f64 = 0.9;
/// Occurrences of thesaurus words at which their evidence reaches about 63 %.
const RELATED_SCALE: f64 = 4.0;

/// Words that go with common document labels, by label word.
const THESAURUS: &[(&str, &[&str])] = &[
    (
        "contract",
        &[
            "agreement",
            "party",
            "parties",
            "clause",
            "terminate",
            "breach",
            "governed",
            "obligations",
            "hereby",
            "signed",
            "liability",
            "warranty",
            "schedule",
        ],
    ),
    (
        "agreement",
        &[
            "contract",
            "party",
            "parties",
            "clause",
            "terminate",
            "breach",
            "governed",
            "obligations",
            "hereby",
            "signed",
        ],
    ),
    (
        "invoice",
        &[
            "total", "amount", "due", "quantity", "payment", "bill", "billing", "price", "tax",
            "vat", "transfer", "account",
        ],
    ),
    (
        "complaint",
        &[
            "unacceptable",
            "disappointed",
            "refund",
            "late",
            "broken",
            "damaged",
            "terrible",
            "frustrated",
            "angry",
            "poor",
            "worst",
            "cancel",
        ],
    ),
    (
        "support",
        &[
            "help", "issue", "problem", "please", "order", "question", "assist", "ticket", "error",
            "fix", "tracking", "arrive",
        ],
    ),
    (
        "request",
        &["please", "could", "would", "need", "help", "asking"],
    ),
    (
        "thank",
        &[
            "thanks",
            "grateful",
            "appreciate",
            "wonderful",
            "recommend",
            "pleased",
            "happy",
            "helpful",
            "great",
        ],
    ),
    (
        "termination",
        &[
            "terminate",
            "breach",
            "cure",
            "notice",
            "material",
            "default",
        ],
    ),
    (
        "breach",
        &["terminate", "cure", "material", "default", "violation"],
    ),
    (
        "payment",
        &[
            "pay", "fee", "invoice", "due", "interest", "days", "late", "amount",
        ],
    ),
    (
        "confidentiality",
        &[
            "confidential",
            "secret",
            "disclose",
            "disclosure",
            "information",
        ],
    ),
    (
        "law",
        &["governed", "laws", "jurisdiction", "courts", "state"],
    ),
];

/// Thesaurus stems for a label, from each of its words.
fn related_stems(label: &str) -> Vec<String> {
    let own: Vec<String> = label_terms(label);
    let mut out: Vec<String> = Vec::new();
    for word in label.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
        let key = stem(word);
        for (entry, words) in THESAURUS {
            if stem(entry) == key {
                out.extend(words.iter().map(|w| stem(w)).filter(|s| !own.contains(s)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Shortest common prefix for two stems to count as one word family.
const FAMILY_PREFIX: usize = 6;

/// Every label with its score, best first (ties keep the caller's order).
pub fn classify(text: &str, labels: &[String]) -> Vec<LabelScore> {
    let mut doc_tf: HashMap<String, usize> = HashMap::new();
    for stem in content_stems(text) {
        *doc_tf.entry(stem).or_default() += 1;
    }
    let label_stems: Vec<Vec<String>> = labels.iter().map(|l| label_terms(l)).collect();
    let mut labels_with: HashMap<&str, usize> = HashMap::new();
    for stems in &label_stems {
        for stem in stems {
            *labels_with.entry(stem.as_str()).or_default() += 1;
        }
    }
    let text_vector = embed(text);
    let raw: Vec<f64> = labels
        .iter()
        .zip(&label_stems)
        .map(|(label, stems)| {
            let (mut matched, mut total) = (0.0, 0.0);
            for stem in stems {
                let weight = 1.0 / labels_with[stem.as_str()] as f64;
                let tf = family_frequency(stem, &doc_tf) as f64;
                matched += weight * tf / (tf + SATURATION);
                total += weight;
            }
            let own = if total > 0.0 { matched / total } else { 0.0 };
            // Words that go with the label (a small thesaurus) count almost as much as the
            // label's own words: a contract rarely says "contract", but says "agreement",
            // "party" and "terminate" a lot.
            let related: f64 = related_stems(label)
                .iter()
                .map(|s| family_frequency(s, &doc_tf) as f64)
                .sum();
            let lexical = own.max(RELATED_SHARE * (1.0 - (-related / RELATED_SCALE).exp()));
            let semantic = f64::from(cosine(&embed(label), &text_vector).max(0.0));
            LEXICAL_SHARE * lexical + (1.0 - LEXICAL_SHARE) * semantic
        })
        .collect();
    let max = raw.iter().copied().fold(f64::MIN, f64::max);
    let exp: Vec<f64> = raw.iter().map(|r| ((r - max) * SHARPNESS).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let mut scores: Vec<(usize, LabelScore)> = labels
        .iter()
        .zip(exp)
        .enumerate()
        .map(|(i, (label, e))| {
            let score = (e / sum * 10_000.0).round() / 10_000.0;
            (
                i,
                LabelScore {
                    label: label.clone(),
                    score,
                },
            )
        })
        .collect();
    scores.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    scores.into_iter().map(|(_, s)| s).collect()
}

/// The stems a label is about; a label made only of stop words keeps its words.
fn label_terms(label: &str) -> Vec<String> {
    let stems = content_stems(&label.replace(['_', '-'], " "));
    if stems.is_empty() {
        tokens(label)
            .iter()
            .map(|t| t.text.to_lowercase())
            .collect()
    } else {
        stems
    }
}

/// Occurrences in the text of `stem` or of a stem of the same family.
fn family_frequency(stem: &str, doc_tf: &HashMap<String, usize>) -> usize {
    doc_tf
        .iter()
        .filter(|(d, _)| *d == stem || same_family(stem, d))
        .map(|(_, n)| n)
        .sum()
}

fn same_family(a: &str, b: &str) -> bool {
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shorter = a.chars().count().min(b.chars().count());
    common >= FAMILY_PREFIX && common * 5 >= shorter * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_sum_to_one_and_are_sorted() {
        let labels: Vec<String> = ["invoice", "complaint", "contract"]
            .map(String::from)
            .to_vec();
        let scores = classify(
            "Please find the invoice attached; the invoice total is due.",
            &labels,
        );
        assert_eq!(scores[0].label, "invoice");
        let sum: f64 = scores.iter().map(|s| s.score).sum();
        assert!((sum - 1.0).abs() < 1e-3);
        assert!(scores.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn word_families_match() {
        let labels: Vec<String> = ["confidentiality", "payment"].map(String::from).to_vec();
        let scores = classify("All information shared stays confidential.", &labels);
        assert_eq!(scores[0].label, "confidentiality");
    }
}
