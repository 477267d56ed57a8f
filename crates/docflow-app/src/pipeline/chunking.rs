//! Splitting a long document into chunks that fit a provider's context budget, on paragraph
//! and sentence boundaries. Pure.
//!
//! Tokens are estimated at [`CHARS_PER_TOKEN`] characters each, the usual rule of thumb for
//! English with OpenAI-family tokenizers; the budget leaves room for the prompt around it.

use super::events::Span;

/// Characters per token assumed when estimating.
pub const CHARS_PER_TOKEN: usize = 4;

/// Estimated tokens of a text.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(CHARS_PER_TOKEN)
}

/// Splits `text` into contiguous spans (byte offsets) of at most about `budget_tokens` each.
/// The spans cover the whole text in order; a text within the budget is one span.
pub fn chunk(text: &str, budget_tokens: usize) -> Vec<Span> {
    let budget = budget_tokens.max(1) * CHARS_PER_TOKEN;
    if text.chars().count() <= budget {
        return vec![Span {
            start: 0,
            end: text.len(),
        }];
    }
    let mut units = Vec::new();
    for paragraph in split_after(text, 0, text.len(), is_paragraph_end) {
        if chars(text, paragraph) <= budget {
            units.push(paragraph);
            continue;
        }
        for sentence in split_after(text, paragraph.start, paragraph.end, is_sentence_end) {
            if chars(text, sentence) <= budget {
                units.push(sentence);
            } else {
                units.extend(hard_split(text, sentence, budget));
            }
        }
    }
    let mut chunks: Vec<Span> = Vec::new();
    let mut current: Option<Span> = None;
    for unit in units {
        current = match current {
            Some(c)
                if chars(
                    text,
                    Span {
                        start: c.start,
                        end: unit.end,
                    },
                ) <= budget =>
            {
                Some(Span {
                    start: c.start,
                    end: unit.end,
                })
            }
            Some(c) => {
                chunks.push(c);
                Some(unit)
            }
            None => Some(unit),
        };
    }
    chunks.extend(current);
    chunks
}

fn chars(text: &str, span: Span) -> usize {
    text[span.start..span.end].chars().count()
}

/// Byte offset just past a paragraph break (a line break followed by a blank line, and the
/// whitespace after it) starting at `i`, if there is one.
fn is_paragraph_end(text: &str, i: usize) -> Option<usize> {
    let rest = text[i..].strip_prefix('\n')?;
    let run = rest.len() - rest.trim_start().len();
    rest[..run].contains('\n').then_some(i + 1 + run)
}

/// Byte offset just past a sentence end (`.`, `!`, `?` then whitespace, or a line break).
fn is_sentence_end(text: &str, i: usize) -> Option<usize> {
    let rest = &text[i..];
    let mut it = rest.char_indices();
    let (_, c) = it.next()?;
    if c == '\n' {
        return Some(i + 1);
    }
    if matches!(c, '.' | '!' | '?') {
        let next = rest[1..].chars().next()?;
        if next.is_whitespace() {
            return Some(i + 1 + next.len_utf8());
        }
    }
    None
}

fn split_after(
    text: &str,
    start: usize,
    end: usize,
    boundary: fn(&str, usize) -> Option<usize>,
) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut from = start;
    let mut i = start;
    while i < end {
        if let Some(next) = boundary(&text[..end], i).filter(|&n| n <= end) {
            spans.push(Span {
                start: from,
                end: next,
            });
            from = next;
            i = next;
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if from < end {
        spans.push(Span { start: from, end });
    }
    spans
}

/// Splits a span longer than `budget` characters at whitespace (or anywhere, for text without
/// any) into pieces of at most `budget` characters.
fn hard_split(text: &str, span: Span, budget: usize) -> Vec<Span> {
    let mut pieces = Vec::new();
    let mut start = span.start;
    while start < span.end {
        let mut end = start;
        let mut last_space = None;
        for (count, (offset, c)) in text[start..span.end].char_indices().enumerate() {
            if count == budget {
                break;
            }
            end = start + offset + c.len_utf8();
            if c.is_whitespace() {
                last_space = Some(end);
            }
        }
        if end < span.end
            && let Some(space) = last_space
        {
            end = space;
        }
        pieces.push(Span { start, end });
        start = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, spans: &[Span]) -> Vec<&'a str> {
        spans.iter().map(|s| &text[s.start..s.end]).collect()
    }

    fn assert_covers(text: &str, spans: &[Span]) {
        assert_eq!(spans.first().unwrap().start, 0);
        assert_eq!(spans.last().unwrap().end, text.len());
        for pair in spans.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk("Hello.", 100), vec![Span { start: 0, end: 6 }]);
    }

    #[test]
    fn paragraphs_are_kept_whole_when_they_fit() {
        let text = "First paragraph here.\n\nSecond paragraph here.\n\nThird one.";
        let spans = chunk(text, 7);
        assert_covers(text, &spans);
        assert_eq!(
            texts(text, &spans),
            vec![
                "First paragraph here.\n\n",
                "Second paragraph here.\n\n",
                "Third one."
            ]
        );
    }

    #[test]
    fn long_paragraphs_split_at_sentences_then_words() {
        let text = "One two three. Four five six! Seven eight nine? Ten.";
        let spans = chunk(text, 4);
        assert_covers(text, &spans);
        assert!(texts(text, &spans)[0].ends_with(". "), "{spans:?}");
        let words = "abcdefgh ".repeat(20);
        let spans = chunk(&words, 5);
        assert_covers(&words, &spans);
        assert!(
            spans
                .iter()
                .all(|s| words[s.start..s.end].chars().count() <= 20)
        );
        let unbroken = "é".repeat(50);
        let spans = chunk(&unbroken, 2);
        assert_covers(&unbroken, &spans);
        assert!(
            spans
                .iter()
                .all(|s| unbroken[s.start..s.end].chars().count() <= 8)
        );
    }

    #[test]
    fn estimates_tokens() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
