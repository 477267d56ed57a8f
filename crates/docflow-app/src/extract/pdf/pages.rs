//! The whole document's text from its pages' lines: running headers and footers kept once,
//! words hyphenated at a line end joined, pages separated by a blank line.

use std::collections::{HashMap, HashSet};

use super::layout::Line;
use crate::extract::{PageSpan, PageText};

/// Lines at the top and at the bottom of a page that may be a running header or footer.
const EDGE_LINES: usize = 2;

/// Pages a line must open or close (ignoring digits) to count as a running header or footer.
const MIN_REPEATS: usize = 3;

/// Which edge of a page a line is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edge {
    Top,
    Bottom,
}

/// A running header or footer kept only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunningLine {
    /// Its text where it was kept.
    pub(super) text: String,
    /// How many other pages it was removed from.
    pub(super) removed: usize,
}

/// The text and one span per page (pages numbered from 1), and the running headers and
/// footers removed (none when `keep_running_lines`).
pub(super) fn assemble(
    mut pages: Vec<Vec<Line>>,
    keep_running_lines: bool,
) -> (String, Vec<PageSpan>, Vec<RunningLine>) {
    let running = if keep_running_lines {
        Vec::new()
    } else {
        drop_running_lines(&mut pages)
    };
    let mut joined = PageText::default();
    for (index, lines) in pages.iter().enumerate() {
        let page = u32::try_from(index + 1).unwrap_or(u32::MAX);
        joined.push(page, &join_lines(lines));
    }
    (joined.text, joined.spans, running)
}

/// A line as compared for repetition: lowercase, without digits and spaces (`Page 3 of 9`
/// and `Page 4 of 9` are the same footer).
fn repetition_key(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_numeric() && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The `(edge, position from that edge)` of a page's lines that may be headers or footers.
fn edge_lines(count: usize) -> impl Iterator<Item = (Edge, usize)> {
    let top = (0..count.min(EDGE_LINES)).map(|i| (Edge::Top, i));
    let bottom = (count.saturating_sub(EDGE_LINES)..count)
        .filter(move |i| *i >= EDGE_LINES.min(count))
        .map(|i| (Edge::Bottom, i));
    top.chain(bottom)
}

/// Removes running headers and footers (a line at the same edge of at least three pages, or
/// of both pages of a two-page document, digits ignored; a bare page number needs three
/// pages) from every page but the first one that has it, so that the text keeps one copy.
fn drop_running_lines(pages: &mut [Vec<Line>]) -> Vec<RunningLine> {
    let needed = |key: &(Edge, String)| {
        if pages.len() == 2 && !key.1.is_empty() {
            2
        } else {
            MIN_REPEATS
        }
    };
    let mut seen: HashMap<(Edge, String), usize> = HashMap::new();
    for lines in pages.iter() {
        let keys: HashSet<(Edge, String)> = edge_lines(lines.len())
            .map(|(edge, i)| (edge, repetition_key(&lines[i].text)))
            .collect();
        for key in keys {
            *seen.entry(key).or_default() += 1;
        }
    }
    let running: HashSet<(Edge, String)> = seen
        .into_iter()
        .filter(|(key, count)| *count >= needed(key))
        .map(|(key, _)| key)
        .collect();
    let mut removed: Vec<RunningLine> = Vec::new();
    if running.is_empty() {
        return removed;
    }
    let mut kept: HashMap<(Edge, String), usize> = HashMap::new();
    for lines in pages.iter_mut() {
        let mut drop = HashSet::new();
        for (edge, i) in edge_lines(lines.len()) {
            let key = (edge, repetition_key(&lines[i].text));
            if !running.contains(&key) {
                continue;
            }
            match kept.get(&key) {
                Some(index) => {
                    drop.insert(i);
                    removed[*index].removed += 1;
                }
                None => {
                    kept.insert(key, removed.len());
                    removed.push(RunningLine {
                        text: lines[i].text.clone(),
                        removed: 0,
                    });
                }
            }
        }
        let mut index = 0;
        lines.retain(|_| {
            index += 1;
            !drop.contains(&(index - 1))
        });
    }
    removed.retain(|line| line.removed > 0);
    removed
}

/// A page's lines as text: one line per line, a blank line before a paragraph, a word
/// hyphenated at a line end joined (`exam-` + `ple` → `example`).
fn join_lines(lines: &[Line]) -> String {
    let mut text = String::new();
    for line in lines {
        let line_text = line.text.trim();
        if text.is_empty() {
            text.push_str(line_text);
            continue;
        }
        if !line.gap_before && ends_hyphenated(&text) && starts_lowercase(line_text) {
            text.pop();
            text.push_str(line_text);
            continue;
        }
        text.push_str(if line.gap_before { "\n\n" } else { "\n" });
        text.push_str(line_text);
    }
    text
}

/// Whether text ends with a hyphen (or soft hyphen) right after a letter.
fn ends_hyphenated(text: &str) -> bool {
    let mut end = text.chars().rev();
    matches!(end.next(), Some('-' | '\u{00ad}' | '\u{2010}'))
        && end.next().is_some_and(char::is_alphabetic)
}

/// Whether text starts with a lowercase letter.
fn starts_lowercase(text: &str) -> bool {
    text.chars().next().is_some_and(char::is_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lines: &[&str]) -> Vec<Line> {
        lines
            .iter()
            .map(|text| Line {
                text: (*text).into(),
                gap_before: false,
            })
            .collect()
    }

    #[test]
    fn joins_words_hyphenated_at_line_ends() {
        let text = join_lines(&page(&[
            "an exam-",
            "ple of well-",
            "Known x-",
            "9 and co-",
            "operation",
        ]));
        assert_eq!(text, "an example of well-\nKnown x-\n9 and cooperation");
        assert_eq!(
            join_lines(&page(&["the 2020-", "after"])),
            "the 2020-\nafter"
        );
    }

    #[test]
    fn running_headers_and_footers_are_kept_once() {
        let mut pages = vec![
            page(&["ACME Corp annual report", "Intro text", "Page 1 of 3"]),
            page(&["ACME Corp annual report", "Middle text", "Page 2 of 3"]),
            page(&["ACME Corp annual report", "Final text", "Page 3 of 3"]),
        ];
        let removed = drop_running_lines(&mut pages);
        assert_eq!(
            removed,
            [
                RunningLine {
                    text: "ACME Corp annual report".into(),
                    removed: 2
                },
                RunningLine {
                    text: "Page 1 of 3".into(),
                    removed: 2
                },
            ]
        );
        let texts: Vec<Vec<&str>> = pages
            .iter()
            .map(|p| p.iter().map(|l| l.text.as_str()).collect())
            .collect();
        assert_eq!(
            texts,
            [
                vec!["ACME Corp annual report", "Intro text", "Page 1 of 3"],
                vec!["Middle text"],
                vec!["Final text"],
            ]
        );
    }

    #[test]
    fn lines_repeated_on_too_few_pages_stay() {
        let mut pages = vec![
            page(&["Same", "a"]),
            page(&["Same", "b"]),
            page(&["Other", "c"]),
            page(&["Another", "d"]),
        ];
        assert!(drop_running_lines(&mut pages).is_empty());
        assert_eq!(pages[1][0].text, "Same");
        let mut numbered = vec![page(&["1"]), page(&["2"])];
        assert!(drop_running_lines(&mut numbered).is_empty());
        let mut two = vec![page(&["Letterhead", "a"]), page(&["Letterhead", "b"])];
        assert_eq!(drop_running_lines(&mut two).len(), 1);
        assert_eq!(two[1].len(), 1);
    }

    #[test]
    fn spans_point_at_each_page() {
        let (text, spans, _) = assemble(
            vec![page(&["one"]), Vec::new(), page(&["three", "more"])],
            false,
        );
        assert_eq!(text, "one\n\nthree\nmore");
        assert_eq!(
            spans[0],
            PageSpan {
                page: 1,
                offset: 0,
                length: 3
            }
        );
        assert_eq!(
            spans[1],
            PageSpan {
                page: 2,
                offset: 3,
                length: 0
            }
        );
        assert_eq!(
            spans[2],
            PageSpan {
                page: 3,
                offset: 5,
                length: 10
            }
        );
        assert_eq!(&text[5..15], "three\nmore");
    }
}
