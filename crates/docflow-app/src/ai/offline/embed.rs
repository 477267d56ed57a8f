//! Embeddings by feature hashing.
//!
//! Features are content-word stems (weight 1), adjacent stem pairs (0.5) and character
//! trigrams of each stem (0.15, so that related word forms still meet). Each feature is hashed
//! (FNV-1a) to one of [`DIMENSIONS`] buckets with a hash-derived sign, counts are damped
//! (1 + ln tf) and the vector is L2-normalised, so the dot product of two vectors is their
//! cosine similarity.

use std::collections::BTreeMap;

use super::text::{content_stems, fnv1a};

/// Vector length: large enough that unrelated short texts rarely collide, small enough to store
/// one vector per document cheaply.
pub const DIMENSIONS: usize = 512;

const STEM_WEIGHT: f32 = 1.0;
const PAIR_WEIGHT: f32 = 0.5;
const TRIGRAM_WEIGHT: f32 = 0.15;

/// The unit-length embedding of `text` (all zeros for a text without content words).
pub fn embed(text: &str) -> Vec<f32> {
    let stems = content_stems(text);
    let mut features: BTreeMap<String, f32> = BTreeMap::new();
    for stem in &stems {
        *features.entry(format!("w:{stem}")).or_default() += STEM_WEIGHT;
        let padded: Vec<char> = format!("^{stem}$").chars().collect();
        for gram in padded.windows(3) {
            let gram: String = gram.iter().collect();
            *features.entry(format!("c:{gram}")).or_default() += TRIGRAM_WEIGHT;
        }
    }
    for pair in stems.windows(2) {
        *features
            .entry(format!("p:{} {}", pair[0], pair[1]))
            .or_default() += PAIR_WEIGHT;
    }
    let mut vector = vec![0.0f32; DIMENSIONS];
    for (feature, weight) in features {
        let h = fnv1a(feature.as_bytes());
        let bucket = (h % DIMENSIONS as u64) as usize;
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        vector[bucket] += sign * damp(weight);
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// Sub-linear weighting: repeating a feature helps, but less and less.
fn damp(weight: f32) -> f32 {
    if weight > 1.0 {
        1.0 + weight.ln()
    } else {
        weight
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let v = embed("The invoice is overdue.");
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(v, embed("The invoice is overdue."));
        assert!(embed("the of and").iter().all(|x| *x == 0.0));
    }
}
