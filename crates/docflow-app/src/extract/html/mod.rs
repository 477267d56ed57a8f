//! Web pages: the readable text.
//!
//! The bytes are decoded (module `charset`: a byte order mark, the transport charset, a
//! `<meta>` declaration, else UTF-8 with a Windows-1252 fallback), tokenized by html5ever's
//! tokenizer (the standard one: entities, raw-text elements, comments) and turned into text
//! (module `readable`): the title first, then the body as a browser lays it out, without scripts,
//! styles, navigation, embedded frames and graphics, form controls and hidden elements.
//! Block elements start new lines (paragraphs, headings and tables a blank line), whitespace
//! collapses as in a browser except in `<pre>`, list items start with `- `, and the cells of a
//! table row are joined with ` | `. The work is linear in the size of the page, however
//! deeply its elements nest.

mod charset;
mod elements;
mod output;
mod readable;

use super::{ExtractError, Extraction, ExtractionMethod};

/// The share of control characters (other than whitespace) above which the bytes are taken
/// for binary data. Undecodable bytes do not count: a page in another charset than it
/// declares is still a page.
const MAX_CONTROL_SHARE: f64 = 0.02;

/// How many characters at the start are looked at to tell binary data from a page.
const SNIFFED_CHARACTERS: usize = 64 * 1024;

/// The readable text of an HTML page; `charset` from its Content-Type, when given. A page
/// without any text gives an empty text: refusing it is the caller's decision.
pub fn extract(bytes: &[u8], charset: Option<&str>) -> Result<Extraction, ExtractError> {
    let page = charset::decode(bytes, charset)?;
    if looks_binary(&page) {
        return Err(unreadable(
            "reading the page failed: it holds binary data (control characters), not HTML",
        ));
    }
    Ok(Extraction::plain(
        readable::readable_text(&page),
        ExtractionMethod::Html,
    ))
}

fn unreadable(message: impl Into<String>) -> ExtractError {
    ExtractError::new("UnreadableHtml", message)
}

/// Whether the decoded start of the page is binary data: a NUL, or more than a few control
/// characters other than whitespace.
fn looks_binary(page: &str) -> bool {
    let mut characters = 0usize;
    let mut controls = 0usize;
    for character in page.chars().take(SNIFFED_CHARACTERS) {
        characters += 1;
        match character {
            '\0' => return true,
            '\t' | '\n' | '\r' | '\x0c' => {}
            '\u{1}'..='\u{1f}' | '\u{7f}' | '\u{80}'..='\u{9f}' => controls += 1,
            _ => {}
        }
    }
    characters > 0 && controls as f64 > characters as f64 * MAX_CONTROL_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        let extraction = extract(html.as_bytes(), None).expect("the page is read");
        assert_eq!(extraction.method, ExtractionMethod::Html);
        extraction.text
    }

    #[test]
    fn title_first_then_the_body_without_scripts_styles_and_navigation() {
        let page = r#"<!DOCTYPE html>
<html><head>
  <meta charset="utf-8">
  <title>  Quarterly   report </title>
  <style>body { color: red }</style>
  <script>var x = "<p>not text</p>";</script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/about">About</a></nav>
  <h1>Results</h1>
  <p>Revenue grew by <b>12%</b> in Q3, see the
     <a href="/details">detailed figures</a> for more.</p>
  <noscript>Enable JavaScript</noscript>
  <template><p>template text</p></template>
  <svg><text>chart label</text></svg>
  <iframe src="ad.html">frame text</iframe>
  <form><label>Name</label> <input name="n"> <select><option>One</option></select>
    <textarea>typed</textarea> <button>Send</button></form>
  <p>Closing   words.</p>
</body></html>"#;
        assert_eq!(
            text(page),
            "Quarterly report\n\nResults\n\nRevenue grew by 12% in Q3, see the detailed \
             figures for more.\n\nName\n\nClosing words."
        );
    }

    #[test]
    fn hidden_elements_are_dropped() {
        let page = r#"<p>shown</p><div hidden>secret</div><span aria-hidden="true">icon</span>
            <p style="display: none">gone</p><p style="visibility:hidden">gone too</p>
            <div aria-hidden="false">visible</div>"#;
        assert_eq!(text(page), "shown\n\nvisible");
    }

    #[test]
    fn lists_tables_and_entities() {
        let page = "<ul><li>first &amp; foremost</li><li>second&nbsp;item\
            <ul><li>nested</li></ul></li></ul>\
            <table><tr><th>Name</th><th>Price</th></tr>\
            <tr><td>Caf&eacute;</td><td>&euro;3 &lt;each&gt;</td></tr>\
            <tr><td></td><td>&#169; &#x263A;</td></tr></table>\
            <p>after</p>";
        assert_eq!(
            text(page),
            "- first & foremost\n- second item\n  - nested\n\n\
             Name | Price\nCafé | €3 <each>\n| © ☺\n\nafter"
        );
        // Tag soup: lists straight in lists are no level deeper, even under an item.
        assert_eq!(text("<li><ul><ol><li>text"), "- text");
        assert_eq!(text("<ul><li>a<ul><ol><li>b"), "- a\n  - b");
    }

    #[test]
    fn implied_end_tags_as_in_browsers() {
        // Unclosed paragraphs, list items and cells, a stray </p>, line breaks.
        let page = "<p>one<p>two<ul><li>a<li>b</ul><table><tr><td>x<td>y<tr><td>z</table>\
            three<br>four<br><br><br>five</p>six</span>";
        assert_eq!(
            text(page),
            "one\n\ntwo\n\n- a\n- b\n\nx | y\nz\n\nthree\nfour\n\nfive\n\nsix"
        );
    }

    #[test]
    fn whitespace_collapses_except_in_pre() {
        let page = "<div>  a \n\t b  </div><pre>\n  code  line\n    indented\n</pre>\
            <div>c<span> d </span>e</div>";
        assert_eq!(text(page), "a b\n\n  code  line\n    indented\n\nc d e");
    }

    #[test]
    fn blocks_inside_table_cells_stay_on_the_row() {
        let page = "<table><tr><td><p>first</p><p>para</p></td><td>b<br>c</td></tr></table>";
        assert_eq!(text(page), "first para | b c");
    }

    #[test]
    fn text_after_a_missing_head_end_is_body_text() {
        let page = "<html><head><title>T</title><meta name=x>Hello <b>world</b></html>";
        assert_eq!(text(page), "T\n\nHello world");
    }

    #[test]
    fn a_title_repeated_as_the_first_line_is_not_doubled() {
        let page = "<title>Welcome</title><h1>Welcome</h1><p>Body</p>";
        assert_eq!(text(page), "Welcome\n\nBody");
    }

    #[test]
    fn svg_content_and_math_and_integration_points() {
        let page = "<p>before<svg><foreignObject><div>inside svg</div></foreignObject>\
            <circle/><title>svg title</title></svg> after</p>\
            <p><math><mi>x</mi><mo>=</mo><mn>2</mn></math></p>\
            <svg><g><p>breaks out</p></g></svg>";
        assert_eq!(text(page), "before after\n\nx=2\n\nbreaks out");
    }

    #[test]
    fn latin1_page_declared_by_meta_charset() {
        let mut page = b"<html><head><meta http-equiv=\"Content-Type\" \
            content=\"text/html; charset=ISO-8859-1\"></head><body><p>Gr"
            .to_vec();
        page.extend_from_slice(&[0xFC, 0xDF, 0x65, b' ', 0xE0, b' ', 0x80]);
        page.extend_from_slice(b"</p></body></html>");
        let extraction = extract(&page, None).expect("the page is read");
        // ISO-8859-1 is Windows-1252 for the web: 0x80 is the euro sign.
        assert_eq!(extraction.text, "Grüße à €");
    }

    #[test]
    fn meta_charset_attribute_and_comments_before_it() {
        let mut page = b"<!-- <meta charset=\"koi8-r\"> --><meta charset=iso-8859-15><p>".to_vec();
        page.push(0xA4);
        assert_eq!(extract(&page, None).expect("read").text, "€");
    }

    #[test]
    fn the_transport_charset_wins_over_meta_and_a_bom_wins_over_both() {
        let mut page = b"<meta charset=\"utf-8\"><p>caf".to_vec();
        page.push(0xE9);
        assert_eq!(
            extract(&page, Some("windows-1252")).expect("read").text,
            "café"
        );
        let mut bom_page = vec![0xEF, 0xBB, 0xBF];
        bom_page.extend_from_slice("<p>naïve".as_bytes());
        assert_eq!(
            extract(&bom_page, Some("iso-8859-1")).expect("read").text,
            "naïve"
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<p>hi</p>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(extract(&utf16, None).expect("read").text, "hi");
    }

    #[test]
    fn undeclared_bytes_are_utf8_else_windows_1252() {
        assert_eq!(text("<p>Zürich</p>"), "Zürich");
        let latin = b"<p>Z\xFCrich \x93quoted\x94</p>";
        assert_eq!(
            extract(latin, None).expect("read").text,
            "Zürich \u{201c}quoted\u{201d}"
        );
    }

    #[test]
    fn a_page_in_another_charset_than_declared_is_still_read() {
        // Latin-1 bytes declared as UTF-8: every umlaut is undecodable, the page is not binary.
        let page = b"<meta charset=utf-8><p>\xC4rger \xFCber \xF6de \xDF\xFC\xE4\xF6</p>";
        let extraction = extract(page, None).expect("read");
        assert_eq!(
            extraction.text,
            "\u{fffd}rger \u{fffd}ber \u{fffd}de \u{fffd}\u{fffd}\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn an_unknown_transport_charset_is_refused() {
        let error = extract(b"<p>x</p>", Some("klingon-8")).expect_err("refused");
        assert_eq!(error.code, "UnreadableHtml");
        assert!(error.message.contains("klingon-8"), "{}", error.message);
    }

    #[test]
    fn an_unknown_meta_charset_is_ignored() {
        assert_eq!(text("<meta charset=nonsense><p>ok</p>"), "ok");
    }

    #[test]
    fn random_bytes_are_refused() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let error = extract(&bytes, None).expect_err("binary data is not a page");
        assert_eq!(error.code, "UnreadableHtml");
    }

    #[test]
    fn empty_and_tag_only_pages_give_empty_text() {
        assert_eq!(text(""), "");
        assert_eq!(text("<html><body><div></div></body></html>"), "");
    }

    #[test]
    fn malformed_markup_does_not_panic() {
        let pages = [
            "<",
            "</",
            "<!",
            "<!--",
            "&",
            "&#",
            "&#x",
            "&#xFFFFFFFF;",
            "<a href='",
            "<p <p <p",
            "</p></p></li></td></tr></table></html></body>",
            "<table><td>a</table></td>b",
            "<svg><p>x</svg></p>",
            "<math><mi><svg><desc><p>x",
            "<pre>",
            "<plaintext><b>x",
            "<select><option>a<optgroup>b</select>c",
            "<head><head><body><head>x",
            "<title>a</title><title>b</title>",
            "<script>unterminated",
        ];
        for page in pages {
            let _ = extract(page.as_bytes(), None).expect("markup is text, whatever its state");
        }
    }

    #[test]
    fn deep_nesting_is_linear_and_does_not_overflow_the_stack() {
        let depth = 100_000;
        let mut page = "<div>".repeat(depth);
        page.push_str("deep text");
        page.push_str(&"</div>".repeat(depth));
        page.push_str(&"<span><b><i>".repeat(depth / 3));
        page.push_str("inline");
        let started = std::time::Instant::now();
        assert_eq!(text(&page), "deep text\ninline");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const PIECES: &[&str] = &[
            "<p>",
            "</p>",
            "<div>",
            "</div>",
            "<span>",
            "</span>",
            "<b>",
            "</b>",
            "<a href=x>",
            "</a>",
            "<ul>",
            "</ul>",
            "<ol>",
            "<li>",
            "</li>",
            "<table>",
            "</table>",
            "<tr>",
            "</tr>",
            "<td>",
            "</td>",
            "<th>",
            "<tbody>",
            "<caption>",
            "<br>",
            "</br>",
            "<hr>",
            "<h1>",
            "</h2>",
            "<dl>",
            "<dt>",
            "<dd>",
            "<svg>",
            "</svg>",
            "<math>",
            "<mi>",
            "<foreignObject>",
            "<desc>",
            "<title>",
            "</title>",
            "<head>",
            "</head>",
            "<body>",
            "<html>",
            "<script>",
            "</script>",
            "<style>",
            "</style>",
            "<nav>",
            "</nav>",
            "<template>",
            "</template>",
            "<select>",
            "<option>",
            "<button>",
            "</button>",
            "<div hidden>",
            "<span aria-hidden=true>",
            "<p style='display:none'>",
            "<!-- c -->",
            "<!DOCTYPE html>",
            "text",
            "more words",
            " ",
            "\n",
            "\t",
            "&amp;",
            "&nbsp;",
            "&lt;",
            "&#0;",
            "<",
            ">",
            "</",
            "&",
            "<b/>",
            "<img alt=x>",
            "\u{a0}",
            "é",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any mix of tags gives text without blank-line runs or stray whitespace.
            #[test]
            fn tag_soup_gives_tidy_text(
                pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..120)
            ) {
                let page = pieces.concat();
                let text = extract(page.as_bytes(), None).expect("markup is always read").text;
                prop_assert!(!text.contains("\n\n\n"), "{page:?} gave {text:?}");
                prop_assert_eq!(text.trim(), text.as_str(), "{:?}", page);
                for line in text.lines() {
                    prop_assert_eq!(line.trim_end(), line, "{:?} gave {:?}", page, text);
                }
            }

            /// Arbitrary bytes are read or refused as `UnreadableHtml`, never a panic.
            #[test]
            fn arbitrary_bytes_are_read_or_refused(
                bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                charset in proptest::option::of(proptest::sample::select(
                    &["utf-8", "latin1", "shift_jis", "utf-16", "bogus"][..]
                )),
            ) {
                if let Err(error) = extract(&bytes, charset) {
                    prop_assert_eq!(error.code, "UnreadableHtml");
                }
            }
        }
    }
}
