//! Word recall against a reference text (poppler's `pdftotext`, or the text a test wrote):
//! lowercase alphanumeric tokens, counted as a multiset.

use std::collections::HashMap;

/// Lowercase alphanumeric tokens, counted.
pub fn words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Σ min(ours, reference) / Σ reference.
pub fn recall(ours: &HashMap<String, usize>, reference: &HashMap<String, usize>) -> f64 {
    let total: usize = reference.values().sum();
    let found: usize = reference
        .iter()
        .map(|(word, count)| (*count).min(ours.get(word).copied().unwrap_or(0)))
        .sum();
    found as f64 / total.max(1) as f64
}

/// [`recall`] of two texts.
pub fn recall_of(ours: &str, reference: &str) -> f64 {
    recall(&words(ours), &words(reference))
}
