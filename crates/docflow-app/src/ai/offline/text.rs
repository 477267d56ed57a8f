//! Text primitives shared by the offline algorithms: tokens, stems, stop words, sentences.

/// A word of the text with its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The word as written.
    pub text: &'a str,
    /// Byte offset of its first byte.
    pub start: usize,
}

/// Splits text into words: runs of alphanumerics, keeping inner apostrophes (`don't`).
pub fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let inner_apostrophe = (c == '\'' || c == '’')
            && start.is_some()
            && chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push(Token {
                text: &text[s..i],
                start: s,
            });
        }
    }
    if let Some(s) = start {
        out.push(Token {
            text: &text[s..],
            start: s,
        });
    }
    out
}

/// English function words that carry no topic.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "either",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "per",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether a lower-cased word is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Suffixes removed by [`stem`], longest first, with what replaces them.
const SUFFIXES: &[(&str, &str)] = &[
    ("ational", "ate"),
    ("ations", ""),
    ("ation", ""),
    ("ments", ""),
    ("ment", ""),
    ("ness", ""),
    ("ating", ""),
    ("ated", ""),
    ("ates", ""),
    ("ate", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ed", ""),
    ("es", ""),
    ("ly", ""),
    ("s", ""),
];

/// A light suffix-stripping stemmer: `terminate`, `terminated` and `termination` share `termin`.
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if lower.chars().count() <= 4 || lower.ends_with("ss") {
        return lower;
    }
    for (suffix, replacement) in SUFFIXES {
        if let Some(base) = lower.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return format!("{base}{replacement}");
        }
    }
    lower
}

/// The stems of the content words of `text`, in order.
pub fn content_stems(text: &str) -> Vec<String> {
    tokens(text)
        .into_iter()
        .map(|t| t.text.to_lowercase())
        .filter(|w| !is_stop_word(w) && w.chars().any(char::is_alphabetic))
        .map(|w| stem(&w))
        .collect()
}

/// Words that end with a period without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "co", "corp", "dept", "dr", "e.g", "etc", "i.e", "inc", "jr", "ltd", "mr", "mrs", "ms", "no",
    "p", "pp", "prof", "sec", "sr", "st", "u.s", "vs",
];

/// Splits text into sentences, as byte ranges with surrounding white space trimmed.
///
/// A sentence ends at `.`, `!` or `?` followed by white space (not after a known abbreviation
/// or a single initial), or at a blank line.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let end_here = match b {
            b'.' | b'!' | b'?' => {
                let next_is_space = bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
                next_is_space && !(b == b'.' && ends_with_abbreviation(&text[start..i]))
            }
            b'\n' => {
                bytes.get(i + 1) == Some(&b'\n')
                    || next_line_is_blank(&text[i + 1..])
                    || line_break_ends_sentence(&text[start..i], &text[i + 1..])
            }
            _ => false,
        };
        if end_here {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

/// A line break ends a sentence when the next line starts like a new one (capital or digit)
/// and this line does not read as continuing (`,`, `;`, `-` or a lower-case word next).
/// Headings, list items and table rows become sentences of their own this way.
fn line_break_ends_sentence(line: &str, rest: &str) -> bool {
    let ends_open = line.trim_end().ends_with([',', ';', '-', '(']);
    let next_starts_new = rest
        .trim_start_matches([' ', '\t'])
        .chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
    !line.trim().is_empty() && !ends_open && next_starts_new
}

fn next_line_is_blank(rest: &str) -> bool {
    rest.lines().next().is_some_and(|l| l.trim().is_empty()) && !rest.is_empty()
}

fn ends_with_abbreviation(before: &str) -> bool {
    let last = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    // List numbering ("1. Services") is not a sentence of its own.
    if !last.is_empty()
        && last.len() <= 3
        && last.bytes().all(|b| b.is_ascii_digit())
        && before.trim() == last
    {
        return true;
    }
    let lower = last.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
        || (last.chars().count() == 1 && last.chars().all(char::is_uppercase))
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if piece.trim().chars().any(char::is_alphanumeric) {
        out.push((start + lead, end - trail));
    }
}

/// Estimated tokens of a text: four characters per token, the usual rule for English.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// FNV-1a, 64 bit: a stable hash, identical on every platform and release.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stems_group_word_families() {
        assert_eq!(stem("termination"), stem("terminate"));
        assert_eq!(stem("terminated"), stem("terminate"));
        assert_eq!(stem("breaches"), stem("breach"));
        assert_eq!(stem("payments"), stem("payment"));
        assert_eq!(stem("business"), "business");
    }

    #[test]
    fn sentences_skip_abbreviations_and_decimals() {
        let text =
            "Acme Inc. will pay $1,200.00 by March 3. Mr. Smith agrees! Is that so?\n\nNew part";
        let got: Vec<&str> = sentences(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            got,
            vec![
                "Acme Inc. will pay $1,200.00 by March 3.",
                "Mr. Smith agrees!",
                "Is that so?",
                "New part"
            ]
        );
    }

    #[test]
    fn tokens_keep_inner_apostrophes() {
        let words: Vec<&str> = tokens("We don't pay.").iter().map(|t| t.text).collect();
        assert_eq!(words, vec!["We", "don't", "pay"]);
    }
}
