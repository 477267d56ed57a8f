//! Whole-document tests on small PDFs written here, byte by byte.

use std::time::{Duration, Instant};

use super::extract;

/// An object of a hand-written PDF: a dictionary (or any object) or a stream.
enum Obj {
    Plain(String),
    Stream(String, Vec<u8>),
}

fn plain(text: &str) -> Obj {
    Obj::Plain(text.into())
}

fn stream(dict: &str, data: &[u8]) -> Obj {
    Obj::Stream(dict.into(), data.to_vec())
}

/// A PDF of `objects` (numbered from 1; the first is the catalog) with a correct
/// cross-reference table.
fn pdf(objects: &[Obj]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        match object {
            Obj::Plain(text) => out.extend_from_slice(text.as_bytes()),
            Obj::Stream(dict, data) => {
                out.extend_from_slice(
                    format!("<< {dict} /Length {} >>\nstream\n", data.len()).as_bytes(),
                );
                out.extend_from_slice(data);
                out.extend_from_slice(b"\nendstream");
            }
        }
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A document of pages, each drawn by its content stream, with Helvetica (no widths) as
/// `/F1` and Times-Roman (no widths) as `/F2`.
fn document(contents: &[&[u8]]) -> Vec<u8> {
    let count = contents.len();
    let kids: Vec<String> = (0..count).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    let mut objects = vec![
        plain("<< /Type /Catalog /Pages 2 0 R >>"),
        plain(&format!(
            "<< /Type /Pages /Kids [{}] /Count {count} /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>",
            kids.join(" ")
        )),
        plain("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"),
        plain("<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman >>"),
    ];
    for (i, content) in contents.iter().enumerate() {
        objects.push(plain(&format!(
            "<< /Type /Page /Parent 2 0 R /Contents {} 0 R >>",
            6 + 2 * i
        )));
        objects.push(stream("", content));
    }
    pdf(&objects)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn text_of(bytes: &[u8]) -> String {
    extract(bytes, far()).expect("the PDF is read").text
}

#[test]
fn reads_the_quote_operators() {
    let text = text_of(&document(&[
        b"BT /F1 12 Tf 14 TL 72 700 Td (First line) Tj (Second line) ' 2 0 (Third line) \" ET",
    ]));
    assert_eq!(text, "First line\nSecond line\nThird line");
}

#[test]
fn standard_fonts_without_widths_are_measured() {
    // "Hel" and "lo" are two strings: only the font's metrics place "lo" right after "Hel".
    // "World" starts a word's space after "Hello" (Helvetica: H 722, e 556, l 222, o 556).
    let text = text_of(&document(&[
        b"BT /F1 10 Tf 100 700 Td (Hel) Tj (lo) Tj ET BT /F1 10 Tf 125.6 700 Td (World) Tj ET\n\
          BT /F2 10 Tf 100 688 Td (Ti) Tj (mes) Tj ET",
    ]));
    assert_eq!(text, "Hello World\nTimes");
}

#[test]
fn words_hyphenated_at_line_ends_are_joined() {
    let text = text_of(&document(&[
        b"BT /F1 10 Tf 12 TL 72 700 Td (An exam-) Tj (ple of self-) ' (Control.) ' ET",
    ]));
    assert_eq!(text, "An example of self-\nControl.");
}

#[test]
fn running_headers_and_footers_are_kept_once_and_pages_spanned() {
    let page = |n: u32, body: &str| {
        format!(
            "BT /F1 9 Tf 72 760 Td (Contoso quarterly report) Tj ET \
             BT /F1 11 Tf 72 600 Td ({body}) Tj ET \
             BT /F1 9 Tf 290 30 Td (Page {n} of 4) Tj ET"
        )
        .into_bytes()
    };
    let (one, two, four) = (
        page(1, "Revenue grew."),
        page(2, "Costs fell."),
        page(4, "Outlook."),
    );
    let bytes = document(&[&one, &two, b"", &four]);
    let extraction = extract(&bytes, far()).unwrap();
    assert_eq!(
        extraction.text,
        "Contoso quarterly report\n\nRevenue grew.\n\nPage 1 of 4\n\nCosts fell.\n\nOutlook."
    );
    let spans: Vec<(u32, &str)> = extraction
        .pages
        .iter()
        .map(|s| (s.page, &extraction.text[s.offset..s.offset + s.length]))
        .collect();
    assert_eq!(
        spans,
        [
            (
                1,
                "Contoso quarterly report\n\nRevenue grew.\n\nPage 1 of 4"
            ),
            (2, "Costs fell."),
            (3, ""),
            (4, "Outlook."),
        ]
    );
    let warnings: Vec<(&str, Option<u32>)> = extraction
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.page))
        .collect();
    assert_eq!(
        warnings,
        [("PageWithoutText", Some(3)), ("RunningLinesRemoved", None)]
    );
    assert!(
        extraction.warnings[1]
            .message
            .contains("\"Contoso quarterly report\" (removed from 2 pages)"),
        "{}",
        extraction.warnings[1].message
    );
    let kept = super::extract_with(
        &bytes,
        far(),
        &super::Options {
            keep_running_lines: true,
        },
    )
    .unwrap();
    assert_eq!(kept.text.matches("Contoso quarterly report").count(), 3);
}

#[test]
fn composite_fonts_with_to_unicode_and_differences_are_decoded() {
    let to_unicode = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
        1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
        1 beginbfrange <0001> <0003> <0048> endbfrange\n\
        1 beginbfchar <0004> <00E9> endbfchar\n\
        endcmap end end";
    let bytes = pdf(&[
        plain("<< /Type /Catalog /Pages 2 0 R >>"),
        plain("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        plain(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /C0 5 0 R /T1 8 0 R >> >> >>",
        ),
        stream(
            "",
            b"BT /C0 12 Tf 72 700 Td <0001000200030004> Tj ET BT /T1 12 Tf 72 680 Td (\x01\x02\x03) Tj ET",
        ),
        plain(
            "<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Noto /Encoding /Identity-H \
             /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        ),
        plain(
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+Noto \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
             /DW 600 /W [1 [700 650] 3 4 500] >>",
        ),
        stream("", to_unicode),
        plain(
            "<< /Type /Font /Subtype /Type1 /BaseFont /Custom /FirstChar 1 /LastChar 3 \
             /Widths [500 500 500] /Encoding << /Differences [1 /c /a /f_f_i] >> >>",
        ),
    ]);
    assert_eq!(text_of(&bytes), "HIJé\ncaffi");
}

#[test]
fn damaged_files_are_repaired() {
    // Every offset in the cross-reference table is wrong: the objects are found by a scan.
    let good = document(&[b"BT /F1 12 Tf 72 700 Td (Repaired text) Tj ET"]);
    let shifted = {
        let xref = good.windows(5).rposition(|w| w == b"xref\n").unwrap();
        let mut bytes = good[..xref].to_vec();
        let table = String::from_utf8(good[xref..].to_vec()).unwrap();
        let table = table.replace("0000000", "0000001");
        bytes.extend_from_slice(table.as_bytes());
        bytes
    };
    assert_eq!(text_of(&shifted), "Repaired text");

    // A content stream without `endstream` (and a wrong length), and no table at all.
    let broken = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
        3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
        /Resources << /Font << /F1 5 0 R >> >> >> endobj\n\
        5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Courier >> endobj\n\
        4 0 obj << /Length 999 >>\nstream\nBT /F1 12 Tf 72 700 Td (Still readable) Tj ET\nendobj\n\
        trailer << /Root 1 0 R >>\n%%EOF\n";
    assert_eq!(text_of(broken), "Still readable");
}

#[test]
fn a_passed_deadline_times_out() {
    let bytes = document(&[b"BT /F1 12 Tf 72 700 Td (Late) Tj ET"]);
    let error = extract(&bytes, Instant::now() - Duration::from_millis(1)).unwrap_err();
    assert_eq!(error.code, "ExtractionTimedOut");
}

#[test]
fn garbage_is_unreadable_without_a_panic() {
    for bytes in [
        &b""[..],
        b"hello, world",
        b"%PDF-1.7\n\x00\x01\x02 garbage obj << /Root 9 0 R",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj trailer << /Root 1 0 R >>",
    ] {
        let error = extract(bytes, far()).unwrap_err();
        assert_eq!(error.code, "UnreadablePdf", "{error:?}");
    }
}

#[test]
fn a_pdf_without_text_has_empty_pages() {
    let extraction = extract(&document(&[b"0 0 m 100 100 l S", b""]), far()).unwrap();
    assert_eq!(extraction.text, "");
    assert_eq!(extraction.pages.len(), 2);
    assert_eq!(extraction.warnings.len(), 2);
    let refused =
        crate::extract::extract(crate::extract::DocumentKind::Pdf, &document(&[b""]), far());
    assert_eq!(refused.unwrap_err().code, "PdfHasNoText");
}

#[test]
fn a_hostile_file_stops_at_the_deadline() {
    // Each form draws the next one ten times, twelve levels deep: 10^12 runs of the last.
    let mut objects = vec![
        plain("<< /Type /Catalog /Pages 2 0 R >>"),
        plain("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        plain(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /XObject << /X 5 0 R >> /Font << /F1 18 0 R >> >> >>",
        ),
        stream("", b"/X Do"),
    ];
    let draws = b"/X Do ".repeat(10);
    for level in 0..12 {
        objects.push(stream(
            &format!(
                "/Type /XObject /Subtype /Form /BBox [0 0 612 792] \
                 /Resources << /XObject << /X {} 0 R >> /Font << /F1 18 0 R >> >>",
                6 + level
            ),
            &draws,
        ));
    }
    objects.push(stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 18 0 R >> >>",
        b"BT /F1 1 Tf (x) Tj ET",
    ));
    objects.push(plain(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ));
    let started = Instant::now();
    let error = extract(&pdf(&objects), started + Duration::from_millis(300)).unwrap_err();
    assert_eq!(error.code, "ExtractionTimedOut");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
