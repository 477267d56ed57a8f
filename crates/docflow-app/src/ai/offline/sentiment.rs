//! Lexicon sentiment with negation and intensifiers.
//!
//! Each word found in the lexicon adds its valence. A negator (`not`, `never`, `no`, `n't`,
//! `without`) flips the valence of sentiment words in the next [`NEGATION_WINDOW`] words; an
//! intensifier (`very`, `extremely`) scales the next one. Words after `but`/`however` count
//! more, as the clause that follows usually carries the writer's point. The sum is squashed
//! into [-1, 1] as VADER does: `s / sqrt(s² + α)`.

use super::text::tokens;
use crate::ai::SentimentLabel;

/// How many following words a negator affects.
const NEGATION_WINDOW: usize = 3;
/// Normalisation constant from VADER: a sum of about 4 maps to 0.7.
const ALPHA: f64 = 15.0;
/// Scores with a smaller magnitude are neutral.
const NEUTRAL_BAND: f64 = 0.1;
/// Weight of words after a contrastive conjunction.
const CONTRAST_WEIGHT: f64 = 1.5;

const POSITIVE: &[(&str, f64)] = &[
    ("appreciate", 2.0),
    ("appreciated", 2.0),
    ("awesome", 3.0),
    ("benefit", 1.5),
    ("best", 2.5),
    ("better", 1.5),
    ("delighted", 3.0),
    ("easy", 1.5),
    ("effective", 1.5),
    ("efficient", 1.5),
    ("excellent", 3.0),
    ("fantastic", 3.0),
    ("fast", 1.0),
    ("fine", 1.0),
    ("fixed", 1.5),
    ("glad", 2.0),
    ("good", 2.0),
    ("grateful", 2.5),
    ("great", 2.5),
    ("happy", 2.5),
    ("helpful", 2.0),
    ("impressed", 2.5),
    ("improved", 1.5),
    ("love", 3.0),
    ("loved", 3.0),
    ("nice", 1.5),
    ("perfect", 3.0),
    ("pleased", 2.5),
    ("pleasure", 2.0),
    ("prompt", 1.0),
    ("quick", 1.0),
    ("recommend", 2.0),
    ("reliable", 2.0),
    ("resolved", 1.5),
    ("satisfied", 2.0),
    ("smooth", 1.5),
    ("success", 2.0),
    ("successful", 2.0),
    ("thank", 1.5),
    ("thanks", 1.5),
    ("welcome", 1.0),
    ("wonderful", 3.0),
    ("works", 1.0),
];

const NEGATIVE: &[(&str, f64)] = &[
    ("angry", -2.5),
    ("annoyed", -2.0),
    ("awful", -3.0),
    ("bad", -2.0),
    ("broken", -2.0),
    ("bug", -1.5),
    ("cancel", -1.0),
    ("complaint", -2.0),
    ("crash", -2.0),
    ("crashes", -2.0),
    ("damage", -2.0),
    ("damaged", -2.0),
    ("defective", -2.5),
    ("delay", -1.5),
    ("delayed", -1.5),
    ("disappointed", -2.5),
    ("disappointing", -2.5),
    ("error", -1.5),
    ("fail", -2.0),
    ("failed", -2.0),
    ("failure", -2.0),
    ("frustrated", -2.5),
    ("frustrating", -2.5),
    ("horrible", -3.0),
    ("late", -1.5),
    ("lost", -1.5),
    ("overdue", -1.5),
    ("poor", -2.0),
    ("problem", -1.5),
    ("refund", -1.0),
    ("slow", -1.5),
    ("terrible", -3.0),
    ("unacceptable", -3.0),
    ("unhappy", -2.5),
    ("unresolved", -2.0),
    ("upset", -2.0),
    ("useless", -2.5),
    ("worse", -2.0),
    ("worst", -3.0),
    ("wrong", -2.0),
];

const NEGATORS: &[&str] = &[
    "cannot", "never", "no", "none", "nor", "not", "nothing", "nowhere", "without",
];

const INTENSIFIERS: &[(&str, f64)] = &[
    ("absolutely", 1.5),
    ("completely", 1.5),
    ("extremely", 1.6),
    ("highly", 1.4),
    ("really", 1.3),
    ("so", 1.2),
    ("totally", 1.5),
    ("very", 1.4),
];

const CONTRASTS: &[&str] = &["but", "however", "although", "yet"];

fn lookup(table: &[(&str, f64)], word: &str) -> Option<f64> {
    table.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
}

/// The sentiment of `text`: a label and a score in [-1, 1].
pub fn sentiment(text: &str) -> (SentimentLabel, f64) {
    let mut sum = 0.0;
    let mut negate_left = 0usize;
    let mut boost = 1.0;
    let mut clause_weight = 1.0;
    for token in tokens(text) {
        let word = token.text.to_lowercase().replace('’', "'");
        if NEGATORS.contains(&word.as_str()) || word.ends_with("n't") {
            negate_left = NEGATION_WINDOW;
            continue;
        }
        if CONTRASTS.contains(&word.as_str()) {
            sum *= 1.0 / CONTRAST_WEIGHT;
            clause_weight = CONTRAST_WEIGHT;
            negate_left = 0;
            continue;
        }
        if let Some(factor) = lookup(INTENSIFIERS, &word) {
            boost = factor;
            continue;
        }
        let valence = lookup(POSITIVE, &word).or_else(|| lookup(NEGATIVE, &word));
        if let Some(valence) = valence {
            // A negated word flips, and loses some strength ("not bad" is mildly positive).
            let signed = if negate_left > 0 {
                -0.75 * valence
            } else {
                valence
            };
            sum += signed * boost * clause_weight;
        }
        boost = 1.0;
        negate_left = negate_left.saturating_sub(1);
    }
    let score = sum / (sum * sum + ALPHA).sqrt();
    let score = (score * 10_000.0).round() / 10_000.0;
    let label = if score >= NEUTRAL_BAND {
        SentimentLabel::Positive
    } else if score <= -NEUTRAL_BAND {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    (label, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polarity_and_negation() {
        assert_eq!(
            sentiment("The support team was great and very helpful.").0,
            SentimentLabel::Positive
        );
        assert_eq!(
            sentiment("The delivery was late and the box was damaged.").0,
            SentimentLabel::Negative
        );
        assert_eq!(
            sentiment("I am not happy with this.").0,
            SentimentLabel::Negative
        );
        assert_eq!(
            sentiment("The meeting is on Tuesday.").0,
            SentimentLabel::Neutral
        );
        let (_, score) = sentiment("terrible awful horrible worst");
        assert!((-1.0..=-0.5).contains(&score));
    }

    #[test]
    fn the_clause_after_but_weighs_more() {
        let (label, _) = sentiment("The product is good, but the service was terrible.");
        assert_eq!(label, SentimentLabel::Negative);
    }
}
