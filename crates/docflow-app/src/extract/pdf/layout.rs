//! From characters at positions to lines of text in reading order.
//!
//! Characters become words the way poppler's `pdftotext` groups them (a new word where the
//! gap after the previous character exceeds a tenth of the font size, where the baseline
//! moves, where a character is drawn over the previous one); words on one baseline become a
//! line, left to right, with a space where the gap between them is wide enough; lines are
//! ordered top to bottom. Text in other directions (rotated, vertical) is laid out the same
//! way along its own baseline, after the page's main direction.

use std::time::Instant;

use super::interpret::TextChar;
use crate::extract::{ExtractError, check_deadline};

/// A line of a page.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    /// Its text, words separated by single spaces.
    pub(super) text: String,
    /// Whether a paragraph break (a wider gap than the line spacing) comes before it.
    pub(super) gap_before: bool,
}

/// Gap after a character, in font sizes, past which a new word starts.
const WORD_BREAK_GAP: f64 = 0.1;
/// Overlap with the previous character, in font sizes, past which a new word starts.
const OVERLAP_BREAK: f64 = 0.2;
/// How near (in font sizes) a character drawn at the previous one's place must be to count
/// as the same character drawn twice (fake bold, shadows).
const DUPLICATE_PRIMARY: f64 = 0.1;
const DUPLICATE_SECONDARY: f64 = 0.2;
/// Baseline shift (in user space units) that ends a word.
const BASELINE_BREAK: f64 = 0.5;
/// Baseline difference (in font sizes) within which words are on one line.
const SAME_LINE: f64 = 0.5;
/// Horizontal overlap (in font sizes) that keeps words on near baselines on separate lines.
const OVERLAP_SAME_LINE: f64 = 0.3;
/// Gap between words (in font sizes) from which a space separates them.
const SPACE_GAP: f64 = 0.03;
/// For lines of single letters set apart (letter-spaced titles): a space where the gap is
/// this much wider than the narrowest one, and at most [`WIDE_SPACE_GAP`] font sizes.
const LETTER_SPACED_FACTOR: f64 = 1.3;
const WIDE_SPACE_GAP: f64 = 0.4;
/// Line spacing (in font sizes) past which a blank line marks a new paragraph.
const PARAGRAPH_GAP: f64 = 1.9;
/// Characters laid out between two looks at the clock.
const CHARS_PER_DEADLINE_CHECK: usize = 1 << 16;

/// A word: characters that touch, along one baseline.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    dir: u8,
    /// Along the baseline: where it starts and ends.
    start: f64,
    end: f64,
    /// Across the baseline, growing down the page in reading order.
    base: f64,
    size: f64,
    /// Where the last character started (to find characters drawn twice).
    last_start: f64,
}

/// Coordinates of a point along and across a baseline of direction `dir`: `(primary,
/// secondary)`, where the primary grows in reading direction and the secondary from one line
/// to the next.
fn frame(dir: u8, x: f64, y: f64) -> (f64, f64) {
    match dir {
        0 => (x, -y),
        1 => (y, x),
        2 => (-x, y),
        _ => (-y, -x),
    }
}

/// The lines of a page's characters. Characters outside `page_box` (`[x0, y0, x1, y1]`) are
/// not on the page and are left out, as viewers do.
pub(super) fn lines(
    chars: &[TextChar],
    page_box: Option<[f64; 4]>,
    deadline: Instant,
) -> Result<Vec<Line>, ExtractError> {
    let words = words(chars, page_box, deadline)?;
    let mut counts = [0usize; 4];
    for word in &words {
        counts[usize::from(word.dir)] += word.text.len();
    }
    let mut dirs: Vec<u8> = (0..4u8).filter(|d| counts[usize::from(*d)] > 0).collect();
    dirs.sort_by_key(|d| (std::cmp::Reverse(counts[usize::from(*d)]), *d));
    let mut out = Vec::new();
    for dir in dirs {
        let mut group: Vec<&Word> = words.iter().filter(|w| w.dir == dir).collect();
        group.sort_by(|a, b| a.base.total_cmp(&b.base).then(a.start.total_cmp(&b.start)));
        let mut first = true;
        let mut previous: Option<(f64, f64)> = None;
        for line in cluster_lines(&group) {
            check_deadline(deadline)?;
            let base = line[0].base;
            let size = line.iter().map(|w| w.size).fold(0.0, f64::max);
            let gap_before = match previous {
                Some((previous_base, previous_size)) => {
                    base - previous_base > PARAGRAPH_GAP * previous_size.max(size)
                }
                None => !out.is_empty() && first,
            };
            first = false;
            previous = Some((base, size));
            let text = line_text(line);
            if !text.trim().is_empty() {
                out.push(Line { text, gap_before });
            }
        }
    }
    Ok(out)
}

/// Groups characters into words, in drawing order.
fn words(
    chars: &[TextChar],
    page_box: Option<[f64; 4]>,
    deadline: Instant,
) -> Result<Vec<Word>, ExtractError> {
    let mut words: Vec<Word> = Vec::new();
    let mut current: Option<Word> = None;
    let mut last_overlap = false;
    for (index, c) in chars.iter().enumerate() {
        if index % CHARS_PER_DEADLINE_CHECK == CHARS_PER_DEADLINE_CHECK - 1 {
            check_deadline(deadline)?;
        }
        if let Some([x0, y0, x1, y1]) = page_box {
            let (min_x, max_x) = (c.x.min(c.x + c.dx), c.x.max(c.x + c.dx));
            let (min_y, max_y) = (c.y.min(c.y + c.dy), c.y.max(c.y + c.dy));
            if max_x < x0 || min_x > x1 || max_y < y0 || min_y > y1 {
                continue;
            }
        }
        if !c.text.is_empty() && c.text.chars().all(char::is_whitespace) {
            words.extend(current.take());
            continue;
        }
        if c.text == "\0" {
            continue;
        }
        // A combining mark (an accent, a Thai vowel sign) belongs to the letter before it,
        // wherever its glyph is placed.
        if let Some(word) = current.as_mut().filter(|w| w.dir == c.dir)
            && !c.text.is_empty()
            && c.text.chars().all(is_combining)
        {
            word.text.push_str(&c.text);
            continue;
        }
        let (mut start, base) = frame(c.dir, c.x, c.y);
        let advance = frame(c.dir, c.x + c.dx, c.y + c.dy).0 - start;
        if let Some(word) = &current {
            let gap = start - word.end;
            let shift = (base - word.base).abs();
            let overlap = (start - word.last_start).abs() < DUPLICATE_PRIMARY * word.size
                && shift < DUPLICATE_SECONDARY * word.size;
            if word.dir != c.dir
                || overlap
                || last_overlap
                || gap < -OVERLAP_BREAK * word.size
                || gap > WORD_BREAK_GAP * word.size
                || shift > BASELINE_BREAK
                || (c.size - word.size).abs() > 1e-3 * word.size.max(1.0)
            {
                words.extend(current.take());
            }
            last_overlap = overlap;
        } else {
            last_overlap = false;
        }
        if c.text.is_empty() {
            continue;
        }
        let mut advance = advance;
        if advance < 0.0 {
            // Drawn against its direction (a mirrored matrix): a word of its own.
            words.extend(current.take());
            start += advance;
            advance = -advance;
        }
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            dir: c.dir,
            start,
            end: start,
            base,
            size: c.size,
            last_start: start,
        });
        push_text(&mut word.text, &c.text);
        word.end = start + advance;
        word.last_start = start;
    }
    words.extend(current);
    Ok(words)
}

/// Appends a character's text, with ligatures written out (`ﬁ` → `fi`).
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// Splits words sorted by baseline into lines (each sorted left to right). A word joins the
/// line above it when their baselines are near and it does not overlap the line's words (a
/// word overlapping on the very same baseline is the same text drawn twice, and joins).
fn cluster_lines<'a>(sorted: &[&'a Word]) -> Vec<Vec<&'a Word>> {
    let mut lines: Vec<Vec<&Word>> = Vec::new();
    for word in sorted {
        if let Some(line) = lines.last_mut() {
            let size = line[0].size.max(word.size).max(f64::MIN_POSITIVE);
            let shift = (word.base - line[0].base).abs();
            let overlaps = || {
                line.iter().any(|other| {
                    word.end.min(other.end) - word.start.max(other.start)
                        > OVERLAP_SAME_LINE * word.size.min(other.size)
                })
            };
            if shift <= SAME_LINE * size && (shift < DUPLICATE_SECONDARY * size || !overlaps()) {
                line.push(word);
                continue;
            }
        }
        lines.push(vec![word]);
    }
    for line in &mut lines {
        line.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    lines
}

/// A line's text: words left to right, a space where the gap is wide, the same word drawn
/// twice at one place kept once. Right-to-left script (Arabic, Hebrew), drawn left to right
/// like everything else, is put back in reading order.
fn line_text(line: Vec<&Word>) -> String {
    let size = line[0].size;
    let letter_spaced = line.len() > 1 && line.iter().all(|w| w.text.chars().count() == 1);
    let min_gap = line
        .windows(2)
        .map(|pair| pair[1].start - pair[0].end)
        .fold(f64::INFINITY, f64::min);
    let space = if letter_spaced && min_gap > 0.0 {
        (LETTER_SPACED_FACTOR * min_gap).min(WIDE_SPACE_GAP * size)
    } else {
        SPACE_GAP * size
    };
    // The line's words: runs of text with a space between them.
    let mut words: Vec<String> = Vec::new();
    let mut previous: Option<&Word> = None;
    for word in line {
        let spaced = match previous {
            Some(before) => {
                if before.text == word.text
                    && (before.start - word.start).abs() < 0.5 * size.max(word.size)
                {
                    continue;
                }
                word.start - before.end >= space
            }
            None => true,
        };
        match words.last_mut() {
            Some(text) if !spaced => text.push_str(&word.text),
            _ => words.push(word.text.clone()),
        }
        previous = Some(word);
    }
    reading_order(words).join(" ")
}

/// Words of a line, given left to right, in reading order: right-to-left words are reversed
/// (letters and, within a run of them, the words), and a line mostly in right-to-left script
/// reads from its right end.
fn reading_order(words: Vec<String>) -> Vec<String> {
    let rtl: Vec<bool> = words.iter().map(|w| is_right_to_left(w)).collect();
    if !rtl.contains(&true) {
        return words;
    }
    // Runs of neighbouring words of one direction.
    let mut runs: Vec<(bool, Vec<String>)> = Vec::new();
    for (word, rtl) in words.into_iter().zip(&rtl) {
        let word = if *rtl { reverse_letters(&word) } else { word };
        match runs.last_mut() {
            Some((direction, run)) if direction == rtl => run.push(word),
            _ => runs.push((*rtl, vec![word])),
        }
    }
    for (direction, run) in &mut runs {
        if *direction {
            run.reverse();
        }
    }
    let mostly_rtl = rtl.iter().filter(|r| **r).count() * 2 > rtl.len();
    if mostly_rtl {
        runs.reverse();
    }
    runs.into_iter().flat_map(|(_, run)| run).collect()
}

/// Whether a word is written in a right-to-left script.
fn is_right_to_left(word: &str) -> bool {
    let strong_rtl = word
        .chars()
        .filter(|c| matches!(u32::from(*c), 0x0590..=0x08ff | 0xfb1d..=0xfdff | 0xfe70..=0xfeff))
        .count();
    let strong_ltr = word.chars().filter(|c| c.is_alphabetic()).count() - strong_rtl;
    strong_rtl > strong_ltr
}

/// A right-to-left word's letters from visual to logical order, combining marks kept after
/// their letter.
fn reverse_letters(word: &str) -> String {
    let mut clusters: Vec<String> = Vec::new();
    // Visual order puts a mark next to its letter on either side; a mark that precedes its
    // letter (in drawing order) belongs to the letter after it.
    let mut pending_marks = String::new();
    for c in word.chars() {
        if is_combining_mark(c) {
            match clusters.last_mut() {
                Some(cluster) if pending_marks.is_empty() => cluster.push(c),
                _ => pending_marks.push(c),
            }
        } else {
            let mut cluster = c.to_string();
            cluster.push_str(&pending_marks);
            pending_marks.clear();
            clusters.push(cluster);
        }
    }
    clusters.reverse();
    let mut out: String = clusters.concat();
    out.push_str(&pending_marks);
    out
}

/// Combining marks of the common scripts: diacritics, and the marks of Hebrew, Arabic,
/// Devanagari and Thai.
fn is_combining(c: char) -> bool {
    is_combining_mark(c)
        || matches!(
            u32::from(c),
            0x0300..=0x036f
                | 0x0483..=0x0489
                | 0x0900..=0x0903
                | 0x093a..=0x094f
                | 0x0951..=0x0957
                | 0x0962..=0x0963
                | 0x0e31
                | 0x0e34..=0x0e3a
                | 0x0e47..=0x0e4e
                | 0x1ab0..=0x1aff
                | 0x1dc0..=0x1dff
                | 0x20d0..=0x20ff
                | 0xfe20..=0xfe2f
        )
}

/// Arabic and Hebrew combining marks (vowel points, shadda, …).
fn is_combining_mark(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0591..=0x05bd | 0x05bf | 0x05c1..=0x05c2 | 0x05c4..=0x05c5 | 0x05c7
            | 0x0610..=0x061a | 0x064b..=0x065f | 0x0670 | 0x06d6..=0x06dc | 0x06df..=0x06e4
            | 0x06e7..=0x06e8 | 0x06ea..=0x06ed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, x: f64, y: f64, width: f64) -> TextChar {
        TextChar {
            text: text.into(),
            x,
            y,
            dx: width,
            dy: 0.0,
            size: 10.0,
            dir: 0,
        }
    }

    fn word(text: &str, x: f64, y: f64) -> Vec<TextChar> {
        text.chars()
            .enumerate()
            .map(|(i, c)| at(&c.to_string(), x + 5.0 * i as f64, y, 5.0))
            .collect()
    }

    fn texts(chars: &[TextChar]) -> Vec<String> {
        let far = Instant::now() + std::time::Duration::from_secs(60);
        lines(chars, None, far)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn orders_by_baseline_then_left_to_right() {
        let mut chars = word("world", 100.0, 700.0);
        chars.extend(word("Hello", 60.0, 700.5));
        chars.extend(word("second", 60.0, 680.0));
        chars.extend(word("Title", 60.0, 740.0));
        assert_eq!(texts(&chars), ["Title", "Hello world", "second"]);
    }

    #[test]
    fn spaces_follow_gaps_not_drawing_order() {
        // "ab" then "cd" right after it: one word; "ef" a space away.
        let mut chars = word("ab", 0.0, 0.0);
        chars.extend(word("cd", 10.0, 0.0));
        chars.extend(word("ef", 23.0, 0.0));
        assert_eq!(texts(&chars), ["abcd ef"]);
    }

    #[test]
    fn overlapping_words_on_near_baselines_are_separate_lines() {
        let mut chars = word("Group", 80.0, 518.8);
        chars.extend(word("Item", 90.0, 515.0));
        assert_eq!(texts(&chars), ["Group", "Item"]);
    }

    #[test]
    fn right_to_left_words_are_put_in_reading_order() {
        // "مرحبا بالعالم" drawn left to right: the last letter of the last word first.
        let visual = ["ملاعلاب", "ابحرم"].map(String::from).to_vec();
        assert_eq!(reading_order(visual), ["مرحبا", "بالعالم"]);
        let mixed = ["Hello", "ملاعلاب", "ابحرم", "2024"]
            .map(String::from)
            .to_vec();
        assert_eq!(reading_order(mixed), ["Hello", "مرحبا", "بالعالم", "2024"]);
        assert_eq!(
            reverse_letters("\u{5d1}\u{5b8}\u{5d0}"),
            "\u{5d0}\u{5d1}\u{5b8}"
        );
    }

    #[test]
    fn combining_marks_stay_with_their_letter() {
        // A Thai vowel sign drawn without width, left of where the next letter starts.
        let mut chars = word("\u{e2a}\u{e27}", 0.0, 0.0);
        chars.push(at("\u{e31}", 7.0, 0.0, 0.0));
        chars.extend(word("\u{e2a}\u{e14}", 10.0, 0.0));
        assert_eq!(texts(&chars), ["\u{e2a}\u{e27}\u{e31}\u{e2a}\u{e14}"]);
    }

    #[test]
    fn text_drawn_twice_is_kept_once() {
        let mut chars = word("Bold", 0.0, 0.0);
        chars.extend(word("Bold", 0.3, 0.0));
        assert_eq!(texts(&chars), ["Bold"]);
    }

    #[test]
    fn rotated_text_reads_along_its_baseline() {
        let up: Vec<TextChar> = "Up"
            .chars()
            .enumerate()
            .map(|(i, c)| TextChar {
                text: c.to_string(),
                x: 50.0,
                y: 100.0 + 5.0 * i as f64,
                dx: 0.0,
                dy: 5.0,
                size: 10.0,
                dir: 1,
            })
            .collect();
        let mut chars = word("Across", 0.0, 0.0);
        chars.extend(up);
        assert_eq!(texts(&chars), ["Across", "Up"]);
    }

    #[test]
    fn characters_off_the_page_are_left_out() {
        let mut chars = word("in", 10.0, 10.0);
        chars.extend(word("out", 900.0, 10.0));
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let got = lines(&chars, Some([0.0, 0.0, 612.0, 792.0]), far).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "in");
    }
}
