//! Tests of the `.docx` extraction, on packages built here.

use std::io::Write;
use std::time::Duration;

use zip::write::SimpleFileOptions;

use super::*;

const W: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
    xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// A zip of the given parts (name, content), deflated.
pub(crate) fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in parts {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start a zip entry");
        writer.write_all(content).expect("write a zip entry");
    }
    writer.finish().expect("finish the zip").into_inner()
}

/// A `.docx` whose body is `body` (the inside of `w:body`).
pub(crate) fn docx_with_body(body: &str) -> Vec<u8> {
    zip_of(&[("word/document.xml", document(body).as_bytes())])
}

fn document(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <w:document {W}><w:body>{body}</w:body></w:document>"
    )
}

fn paragraph(text: &str) -> String {
    format!("<w:p><w:r><w:t>{text}</w:t></w:r></w:p>")
}

#[test]
fn a_full_document() {
    let body = format!(
        "<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/><w:tabs><w:tab w:val=\"left\" w:pos=\"720\"/></w:tabs></w:pPr>\
           <w:r><w:t>Services Agreement</w:t></w:r></w:p>\
         <w:p><w:r><w:t xml:space=\"preserve\">This agreement </w:t></w:r>\
           <w:del w:id=\"1\" w:author=\"A\"><w:r><w:delText>was never </w:delText></w:r></w:del>\
           <w:ins w:id=\"2\" w:author=\"A\"><w:r><w:t xml:space=\"preserve\">is </w:t></w:r></w:ins>\
           <w:r><w:t>binding</w:t><w:footnoteReference w:id=\"2\"/><w:t>.</w:t></w:r></w:p>\
         <w:p><w:r><w:t>Name:</w:t><w:tab/><w:t>Contoso</w:t><w:br/><w:t>Munich &amp; Berlin</w:t></w:r></w:p>\
         <w:p><w:hyperlink r:id=\"rId5\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
           <w:r><w:t>our website</w:t></w:r></w:hyperlink></w:p>\
         <w:tbl><w:tblPr/><w:tr><w:tc><w:p><w:r><w:t>Item</w:t></w:r></w:p></w:tc>\
           <w:tc><w:p><w:r><w:t>Price</w:t></w:r></w:p></w:tc></w:tr>\
           <w:tr><w:tc><w:p><w:r><w:t>Support</w:t></w:r></w:p><w:p><w:r><w:t>(yearly)</w:t></w:r></w:p></w:tc>\
           <w:tc><w:p><w:r><w:t>1&#160;200 EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>\
         <w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"3\"/></w:numPr></w:pPr><w:r><w:t>first item</w:t></w:r></w:p>\
         <w:p><w:pPr><w:numPr><w:ilvl w:val=\"1\"/><w:numId w:val=\"3\"/></w:numPr></w:pPr><w:r><w:t>sub item</w:t></w:r></w:p>\
         {}<w:p/><w:sectPr/>",
        paragraph("The end.")
    );
    let header = format!(
        "<w:hdr {W}>{}</w:hdr>",
        paragraph("Contoso Ltd — Confidential")
    );
    let footer = format!(
        "<w:ftr {W}><w:p><w:r><w:t xml:space=\"preserve\">Page </w:t></w:r>\
         <w:r><w:fldChar w:fldCharType=\"begin\"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>\
         <w:r><w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>1</w:t></w:r>\
         <w:r><w:fldChar w:fldCharType=\"end\"/></w:r></w:p></w:ftr>"
    );
    let footnotes = format!(
        "<w:footnotes {W}>\
         <w:footnote w:type=\"separator\" w:id=\"-1\"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>\
         <w:footnote w:type=\"continuationSeparator\" w:id=\"0\"><w:p><w:r><w:t>sep</w:t></w:r></w:p></w:footnote>\
         <w:footnote w:id=\"2\">{}</w:footnote></w:footnotes>",
        paragraph("Signed in Munich.")
    );
    let endnotes = format!(
        "<w:endnotes {W}><w:endnote w:id=\"1\">{}</w:endnote></w:endnotes>",
        paragraph("See annex B.")
    );
    let docx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", document(&body).as_bytes()),
        ("word/header1.xml", header.as_bytes()),
        // The first-page header repeats the default one: read once.
        ("word/header2.xml", header.as_bytes()),
        ("word/footer1.xml", footer.as_bytes()),
        ("word/footnotes.xml", footnotes.as_bytes()),
        ("word/endnotes.xml", endnotes.as_bytes()),
    ]);
    let extraction = extract(&docx, deadline()).expect("the document is read");
    assert_eq!(extraction.method, ExtractionMethod::Wordprocessing);
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    assert_eq!(
        extraction.text,
        "Header: Contoso Ltd — Confidential\n\n\
         Services Agreement\n\
         This agreement is binding.\n\
         Name:\tContoso\nMunich & Berlin\n\
         our website\n\n\
         Item | Price\n\
         Support (yearly) | 1 200 EUR\n\n\
         - first item\n  - sub item\n\
         The end.\n\n\
         Footnotes: Signed in Munich.\n\n\
         Endnotes: See annex B.\n\n\
         Footer: Page 1"
    );
}

#[test]
fn text_boxes_are_read_once_and_placeholders_and_moves_skipped() {
    let body = "<w:p><w:r><w:t>Anchor</w:t></w:r><w:r><mc:AlternateContent>\
          <mc:Choice Requires=\"wps\"><w:drawing><w:txbxContent><w:p><w:r><w:t>Boxed</w:t></w:r></w:p>\
          </w:txbxContent></w:drawing></mc:Choice>\
          <mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Boxed</w:t></w:r></w:p></w:txbxContent>\
          </w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>\
        <w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>\
          <w:p><w:r><w:t>Click here to enter text.</w:t></w:r></w:p></w:sdtContent></w:sdt>\
        <w:sdt><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>Filled in</w:t></w:r></w:p></w:sdtContent></w:sdt>\
        <w:p><w:moveFrom w:id=\"7\"><w:r><w:t>old place</w:t></w:r></w:moveFrom>\
          <w:moveTo w:id=\"8\"><w:r><w:t>new place</w:t></w:r></w:moveTo></w:p>";
    let extraction = extract(&docx_with_body(body), deadline()).expect("read");
    assert_eq!(extraction.text, "Boxed\nAnchor\nFilled in\nnew place");
}

#[test]
fn nested_tables_stay_inside_their_cell() {
    let inner = "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc>\
        <w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>";
    let body = format!(
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>outer</w:t></w:r></w:p></w:tc>\
         <w:tc>{inner}<w:p/></w:tc></w:tr></w:tbl>"
    );
    let extraction = extract(&docx_with_body(&body), deadline()).expect("read");
    assert_eq!(extraction.text, "outer | a | b");
}

#[test]
fn main_part_named_by_the_package_relationships() {
    let rels = "<?xml version=\"1.0\"?><Relationships \
        xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" \
        Target=\"/word/document2.xml\"/></Relationships>";
    let docx = zip_of(&[
        ("_rels/.rels", rels.as_bytes()),
        (
            "word/document2.xml",
            document(&paragraph("Moved main part")).as_bytes(),
        ),
    ]);
    assert_eq!(
        extract(&docx, deadline()).expect("read").text,
        "Moved main part"
    );
}

#[test]
fn elements_are_matched_whatever_their_prefix() {
    let xml = "<document xmlns=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
        <body><p><r><t>Default</t></r></p><x:p xmlns:x=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
        <x:r><x:t>namespace</x:t></x:r></x:p></body></document>";
    let docx = zip_of(&[("word/document.xml", xml.as_bytes())]);
    assert_eq!(
        extract(&docx, deadline()).expect("read").text,
        "Default\nnamespace"
    );
}

#[test]
fn a_document_without_text_is_empty() {
    let extraction = extract(&docx_with_body("<w:p/><w:sectPr/>"), deadline()).expect("read");
    assert_eq!(extraction.text, "");
}

#[test]
fn unreadable_packages_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"just some text, not a zip".to_vec(), "not a valid zip"),
        (
            vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0],
            "OLE compound file",
        ),
        (zip_of(&[("content.xml", b"<x/>")]), "no word/document.xml"),
        (
            zip_of(&[("word/document.xml", b"<w:document><w:body><w:p></w:body>")]),
            "not valid XML",
        ),
    ];
    for (bytes, expected) in cases {
        let error = extract(&bytes, deadline()).expect_err("refused");
        assert_eq!(error.code, "UnreadableDocx", "{}", error.message);
        assert!(error.message.contains(expected), "{}", error.message);
    }
}

#[test]
fn a_broken_header_is_a_warning() {
    let docx = zip_of(&[
        ("word/document.xml", document(&paragraph("Body")).as_bytes()),
        ("word/header1.xml", b"<w:hdr><w:p></w:hdr>"),
    ]);
    let extraction = extract(&docx, deadline()).expect("read");
    assert_eq!(extraction.text, "Body");
    assert_eq!(extraction.warnings.len(), 1);
    assert_eq!(extraction.warnings[0].code, "PartNotRead");
    assert!(extraction.warnings[0].message.contains("word/header1.xml"));
}

#[test]
fn truncated_and_random_bytes_do_not_panic() {
    let docx = docx_with_body(&paragraph("Some text that is long enough to be deflated."));
    for length in (0..docx.len()).step_by(7) {
        let result = extract(&docx[..length], deadline());
        assert_eq!(result.expect_err("truncated").code, "UnreadableDocx");
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for length in [1, 22, 100, 4096] {
        let mut bytes: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert_eq!(
            extract(&bytes, deadline()).expect_err("garbage").code,
            "UnreadableDocx"
        );
        // Garbage behind a zip signature.
        bytes.splice(0..0, *b"PK\x03\x04");
        assert_eq!(
            extract(&bytes, deadline()).expect_err("garbage").code,
            "UnreadableDocx"
        );
    }
}

#[test]
fn a_zip_bomb_is_refused() {
    // 65 MiB of XML deflates to well under a megabyte.
    let mut xml = document("").into_bytes();
    let filler = vec![b' '; 65 * 1024 * 1024];
    xml.splice(
        xml.len() - "</w:document>".len()..xml.len() - "</w:document>".len(),
        filler,
    );
    let docx = zip_of(&[("word/document.xml", &xml)]);
    assert!(docx.len() < 2 * 1024 * 1024, "{} bytes", docx.len());
    let error = extract(&docx, deadline()).expect_err("refused");
    assert_eq!(error.code, "DocumentTooLarge");
}

#[test]
fn the_deadline_is_kept() {
    let body = paragraph("x").repeat(10_000);
    let error = extract(&docx_with_body(&body), Instant::now()).expect_err("timed out");
    assert_eq!(error.code, "ExtractionTimedOut");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A damaged `.docx` is read or refused with a docx error, never a panic.
        #[test]
        fn damaged_packages_are_read_or_refused(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let mut bytes = docx_with_body(
                "<w:p><w:r><w:t>Damaged</w:t><w:tab/></w:r></w:p>\
                 <w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
            );
            for (position, byte) in flips {
                let position = position % bytes.len();
                bytes[position] ^= byte | 1;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Err(error) = extract(&bytes, deadline()) {
                prop_assert!(
                    matches!(error.code, "UnreadableDocx" | "DocumentTooLarge"),
                    "{}: {}", error.code, error.message
                );
            }
        }

        /// Damaged XML inside an intact zip is read or refused as `UnreadableDocx`.
        #[test]
        fn damaged_xml_is_read_or_refused(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut xml = document(
                "<w:p><w:r><w:t xml:space=\"preserve\">A &amp; B</w:t></w:r></w:p>\
                 <w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
            )
            .into_bytes();
            for (position, byte) in flips {
                let position = position % xml.len();
                xml[position] ^= byte | 1;
            }
            let docx = zip_of(&[("word/document.xml", &xml)]);
            if let Err(error) = extract(&docx, deadline()) {
                prop_assert_eq!(error.code, "UnreadableDocx", "{}", error.message);
            }
        }
    }
}
