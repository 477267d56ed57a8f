//! Entity extraction by patterns.
//!
//! - money: currency symbols or ISO codes around a number (`$1,200.00`, `EUR 300`, `5 million USD`);
//! - dates: `March 3, 2025`, `3 March 2025`, `2025-03-03`, `03/03/2025`;
//! - organisations: capitalised spans ending in a legal suffix (Inc, Ltd, LLC, GmbH, …);
//! - locations: a gazetteer of countries, states and large cities, and street addresses;
//! - people: a courtesy title followed by capitalised words, or a known first name followed by
//!   a capitalised surname.
//!
//! Where spans overlap, the longer one wins, then the earlier kind in that list.

use std::sync::LazyLock;

use regex::Regex;

use crate::ai::{Entity, EntityKind};

const MONTHS: &str = "January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";

static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    let number = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?";
    let scale = r"(?:\s?(?:million|billion|thousand|[mMbBkK]\b))?";
    let codes = r"USD|EUR|GBP|CHF|JPY|CAD|AUD|CNY|INR|SEK|NOK|DKK";
    Regex::new(&format!(
        r"(?:[$€£¥]\s?(?:{number}){scale})|(?:\b(?:{codes})\s?(?:{number}){scale})|(?:\b(?:{number}){scale}\s?(?:{codes}|dollars|euros|pounds)\b)"
    ))
    .expect("money pattern compiles")
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?:(?:{MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{MONTHS})\.?,?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})\b"
    ))
    .expect("date pattern compiles")
});

static ORGANIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:[A-Z][\w&'\-]*\s+){0,4}?[A-Z][\w&'\-]*,?\s+(?:Inc\.?|Incorporated|Ltd\.?|Limited|LLC|L\.L\.C\.|LLP|GmbH|AG|PLC|plc|Corp\.?|Corporation|S\.A\.|SA|SAS|B\.V\.|BV|N\.V\.|Pty Ltd|Co\.)(?:\s|$|[,;:)])",
    )
    .expect("organisation pattern compiles")
});

static STREET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.|Avenue|Ave\.|Road|Rd\.|Boulevard|Blvd\.|Lane|Drive|Way)\b")
        .expect("street pattern compiles")
});

static TITLED_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:Mr|Mrs|Ms|Dr|Prof)\.?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?\b")
        .expect("person pattern compiles")
});

static CAPITALISED_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z][a-z]+\s+(?:[A-Z]\.\s+)?[A-Z][a-z]+(?:-[A-Z][a-z]+)?\b")
        .expect("name pattern compiles")
});

/// Capitalised words that start sentences but never organisation names.
const LEADING_NOISE: &[&str] = &[
    "And", "Between", "By", "Dear", "For", "From", "Hi", "If", "In", "On", "Our", "Please", "The",
    "This", "To", "We", "With",
];

/// Places common in business documents.
const PLACES: &[&str] = &[
    "Amsterdam",
    "Argentina",
    "Atlanta",
    "Australia",
    "Austin",
    "Austria",
    "Belgium",
    "Berlin",
    "Boston",
    "Brazil",
    "Brussels",
    "California",
    "Canada",
    "Chicago",
    "China",
    "Colorado",
    "Delaware",
    "Denmark",
    "Dublin",
    "England",
    "Finland",
    "Florida",
    "France",
    "Frankfurt",
    "Georgia",
    "Germany",
    "Hamburg",
    "Hong Kong",
    "India",
    "Ireland",
    "Italy",
    "Japan",
    "London",
    "Los Angeles",
    "Madrid",
    "Manchester",
    "Massachusetts",
    "Mexico",
    "Milan",
    "Munich",
    "Netherlands",
    "New Jersey",
    "New York",
    "Norway",
    "Ohio",
    "Oregon",
    "Paris",
    "Poland",
    "Portugal",
    "Rome",
    "San Francisco",
    "Scotland",
    "Seattle",
    "Singapore",
    "Spain",
    "Stockholm",
    "Sweden",
    "Switzerland",
    "Sydney",
    "Texas",
    "Tokyo",
    "Toronto",
    "United Kingdom",
    "United States",
    "Vienna",
    "Virginia",
    "Washington",
    "Zurich",
];

/// Common given names, so that a capitalised pair starting with one reads as a person.
const FIRST_NAMES: &[&str] = &[
    "Adam",
    "Alice",
    "Amanda",
    "Amy",
    "Andrew",
    "Anna",
    "Anne",
    "Ben",
    "Brian",
    "Carlos",
    "Caroline",
    "Charles",
    "Chris",
    "Christopher",
    "Claire",
    "Daniel",
    "David",
    "Debra",
    "Diana",
    "Elena",
    "Elizabeth",
    "Emily",
    "Emma",
    "Eric",
    "Frank",
    "George",
    "Hannah",
    "Helen",
    "Jack",
    "James",
    "Jane",
    "Jason",
    "Jennifer",
    "Jessica",
    "John",
    "Jonathan",
    "Joseph",
    "Julia",
    "Karen",
    "Kate",
    "Kevin",
    "Laura",
    "Linda",
    "Lisa",
    "Maria",
    "Mark",
    "Martin",
    "Mary",
    "Matthew",
    "Michael",
    "Michelle",
    "Nancy",
    "Nicole",
    "Olivia",
    "Patricia",
    "Paul",
    "Peter",
    "Priya",
    "Rachel",
    "Richard",
    "Robert",
    "Sarah",
    "Sophie",
    "Stephen",
    "Steven",
    "Susan",
    "Thomas",
    "Tom",
    "William",
];

/// Every entity found in `text`, in order of appearance, offsets in Unicode scalar values.
pub fn extract_entities(text: &str) -> Vec<Entity> {
    let mut spans: Vec<(usize, usize, EntityKind)> = Vec::new();
    let mut add = |re: &Regex, kind: EntityKind| {
        for m in re.find_iter(text) {
            let matched = m
                .as_str()
                .trim_end_matches([' ', ',', ';', ':', ')', '\n', '\t']);
            spans.push((m.start(), m.start() + matched.len(), kind));
        }
    };
    add(&MONEY, EntityKind::Money);
    add(&DATE, EntityKind::Date);
    add(&STREET, EntityKind::Location);
    add(&TITLED_PERSON, EntityKind::Person);
    for m in ORGANIZATION.find_iter(text) {
        let matched = m
            .as_str()
            .trim_end_matches([' ', ',', ';', ':', ')', '\n', '\t']);
        let mut start = m.start();
        let mut rest = matched;
        // Sentence-initial words are capitalised too: drop the ones that cannot begin a name.
        while let Some((first, tail)) = rest.split_once(char::is_whitespace) {
            if !LEADING_NOISE.contains(&first) {
                break;
            }
            start += first.len() + (rest.len() - first.len() - tail.len());
            rest = tail;
        }
        spans.push((start, m.start() + matched.len(), EntityKind::Organization));
    }
    for place in PLACES {
        for (start, _) in text.match_indices(place) {
            let end = start + place.len();
            if is_word_boundary(text, start, end) {
                spans.push((start, end, EntityKind::Location));
            }
        }
    }
    for m in CAPITALISED_PAIR.find_iter(text) {
        let first = m.as_str().split_whitespace().next().unwrap_or("");
        if FIRST_NAMES.contains(&first) {
            spans.push((m.start(), m.end(), EntityKind::Person));
        }
    }
    // Longest first, then by kind priority, then position; keep spans that overlap nothing kept.
    spans.sort_by(|a, b| {
        (b.1 - b.0)
            .cmp(&(a.1 - a.0))
            .then(a.2.cmp(&b.2))
            .then(a.0.cmp(&b.0))
    });
    let mut kept: Vec<(usize, usize, EntityKind)> = Vec::new();
    for span in spans {
        if !kept.iter().any(|k| span.0 < k.1 && k.0 < span.1) {
            kept.push(span);
        }
    }
    kept.sort_by_key(|k| k.0);
    kept.into_iter()
        .map(|(start, end, kind)| Entity {
            kind,
            text: text[start..end].to_string(),
            start: text[..start].chars().count(),
            end: text[..end].chars().count(),
        })
        .collect()
}

fn is_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(entities: &[Entity], kind: EntityKind) -> Vec<&str> {
        entities
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.text.as_str())
            .collect()
    }

    #[test]
    fn finds_each_kind() {
        let text = "On March 3, 2025, Acme Widgets Inc. agreed to pay Dr. Jane Roe $1,200.00 \
                    in London; John Smith signed for Globex GmbH on 2025-04-01 (EUR 300).";
        let entities = extract_entities(text);
        assert_eq!(
            find(&entities, EntityKind::Date),
            vec!["March 3, 2025", "2025-04-01"]
        );
        assert_eq!(
            find(&entities, EntityKind::Money),
            vec!["$1,200.00", "EUR 300"]
        );
        assert_eq!(
            find(&entities, EntityKind::Organization),
            vec!["Acme Widgets Inc.", "Globex GmbH"]
        );
        assert_eq!(find(&entities, EntityKind::Location), vec!["London"]);
        assert_eq!(
            find(&entities, EntityKind::Person),
            vec!["Dr. Jane Roe", "John Smith"]
        );
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "Café owner paid €50 on 2025-01-02.";
        let entities = extract_entities(text);
        let chars: Vec<char> = text.chars().collect();
        for e in &entities {
            assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.text);
        }
        assert_eq!(find(&entities, EntityKind::Money), vec!["€50"]);
    }
}
