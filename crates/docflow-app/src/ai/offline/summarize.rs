//! Extractive summary by sentence scoring.
//!
//! Each sentence scores the mean document frequency of its content stems (sentences about what
//! the document is mostly about score high), with a small bonus for coming early (documents
//! state their purpose first). The best sentences that fit `max_words` are kept in their
//! original order; near-duplicates of a sentence already kept are skipped.

use std::collections::{HashMap, HashSet};

use super::text::{content_stems, sentences, tokens};

/// Jaccard similarity above which a sentence counts as repeating one already chosen.
const DUPLICATE_SIMILARITY: f64 = 0.7;

/// Sentences shorter than this (headings, list labels, sign-offs) are chosen only when nothing
/// longer fits.
const MIN_SENTENCE_WORDS: usize = 5;

/// Weight of the position bonus relative to the content score.
const POSITION_WEIGHT: f64 = 0.15;

/// The summary of `text` in at most `max_words` words, made of sentences of the text.
///
/// When not even one sentence fits, the summary is the first `max_words` words of the best one.
pub fn summarize(text: &str, max_words: u32) -> String {
    let max_words = max_words as usize;
    let spans = sentences(text);
    if spans.is_empty() || max_words == 0 {
        return String::new();
    }
    let stems: Vec<Vec<String>> = spans
        .iter()
        .map(|&(s, e)| content_stems(&text[s..e]))
        .collect();
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for sentence in &stems {
        for stem in sentence {
            *frequency.entry(stem.as_str()).or_default() += 1;
        }
    }
    let top = frequency.values().copied().max().unwrap_or(1) as f64;
    let count = spans.len() as f64;
    let mut ranked: Vec<(usize, f64)> = stems
        .iter()
        .enumerate()
        .map(|(i, sentence)| {
            let content = if sentence.is_empty() {
                0.0
            } else {
                sentence
                    .iter()
                    .map(|s| frequency[s.as_str()] as f64 / top)
                    .sum::<f64>()
                    / (sentence.len() as f64).sqrt()
            };
            let position = 1.0 - i as f64 / count;
            (i, content + POSITION_WEIGHT * position)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

    let word_count = |i: usize| tokens(&text[spans[i].0..spans[i].1]).len();
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0;
    let substantial = ranked
        .iter()
        .any(|&(i, _)| word_count(i) >= MIN_SENTENCE_WORDS);
    for &(i, _) in &ranked {
        let words = word_count(i);
        let too_short = substantial && words < MIN_SENTENCE_WORDS;
        if too_short || used + words > max_words || repeats(&stems[i], &chosen, &stems) {
            continue;
        }
        chosen.push(i);
        used += words;
    }
    if chosen.is_empty() {
        let best = ranked
            .iter()
            .find(|&&(i, _)| !substantial || word_count(i) >= MIN_SENTENCE_WORDS)
            .map_or(ranked[0].0, |&(i, _)| i);
        return first_words(&text[spans[best].0..spans[best].1], max_words);
    }
    chosen.sort_unstable();
    let mut summary = String::new();
    for &i in &chosen {
        if !summary.is_empty() {
            // A heading or table row has no full stop: keep it on a line of its own.
            let open = !summary.ends_with(['.', '!', '?', '"', ')']);
            summary.push(if open { '\n' } else { ' ' });
        }
        summary.push_str(
            &text[spans[i].0..spans[i].1]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    summary
}

fn repeats(candidate: &[String], chosen: &[usize], stems: &[Vec<String>]) -> bool {
    let a: HashSet<&String> = candidate.iter().collect();
    chosen.iter().any(|&j| {
        let b: HashSet<&String> = stems[j].iter().collect();
        let union = a.union(&b).count();
        union > 0 && a.intersection(&b).count() as f64 / union as f64 > DUPLICATE_SIMILARITY
    })
}

fn first_words(sentence: &str, max_words: usize) -> String {
    let words = tokens(sentence);
    match words.get(max_words) {
        Some(cut) => sentence[..cut.start].trim_end().to_string(),
        None => sentence.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_whole_sentences_within_the_word_budget() {
        let text = "The supplier delivers the software. The customer pays the supplier monthly. \
                    Lunch was nice. The supplier supports the software for two years.";
        let summary = summarize(text, 12);
        assert!(tokens(&summary).len() <= 12, "{summary}");
        for sentence in summary.split_inclusive('.') {
            assert!(text.contains(sentence.trim()), "{sentence}");
        }
        assert!(!summary.contains("Lunch"));
    }

    #[test]
    fn falls_back_to_a_prefix_when_nothing_fits() {
        let summary = summarize("One two three four five six seven.", 3);
        assert_eq!(summary, "One two three");
    }
}
