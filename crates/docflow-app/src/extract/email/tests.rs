//! Tests of the e-mail extraction, on messages written here.

use std::time::Duration;

use base64::Engine;

use super::*;
use crate::extract::docx::tests::{docx_with_body, zip_of};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn read(message: &str) -> Extraction {
    let extraction = extract(message.as_bytes(), deadline(), 0).expect("the e-mail is read");
    assert_eq!(extraction.method, ExtractionMethod::Email);
    extraction
}

/// Base64 in lines of 76 characters, as mailers write it.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn multipart_alternative_gives_the_plain_text() {
    let message = "From: Alice Example <alice@example.com>\r\n\
        To: bob@example.com, \"Carol C.\" <carol@example.com>\r\n\
        Cc: dave@example.com\r\n\
        Subject: Quarterly\r\n numbers\r\n\
        Date: Mon, 20 Jan 2025 14:03:00 +0100\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
        \r\n\
        --b1\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        \r\n\
        Hi Bob,\r\nthe numbers are in.\r\n\
        --b1\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        \r\n\
        <p>Hi Bob,</p><p>the <b>HTML</b> numbers are in.</p>\r\n\
        --b1--\r\n";
    let extraction = read(message);
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    assert_eq!(
        extraction.text,
        "Subject: Quarterly numbers\n\
         From: Alice Example <alice@example.com>\n\
         To: bob@example.com, Carol C. <carol@example.com>\n\
         Cc: dave@example.com\n\
         Date: 2025-01-20T14:03:00+01:00\n\n\
         Hi Bob,\nthe numbers are in."
    );
}

#[test]
fn an_html_only_message_goes_through_the_html_extractor() {
    let message = "From: shop@example.com\n\
        To: me@example.com\n\
        Subject: Your order\n\
        Content-Type: text/html; charset=utf-8\n\
        \n\
        <html><head><style>p{color:red}</style></head><body>\
        <p>Thanks for your <a href=\"https://example.com/o/1\">order #1</a>.</p>\
        <ul><li>Router</li><li>Cable</li></ul><script>track()</script></body></html>\n";
    let extraction = read(message);
    assert_eq!(
        extraction.text,
        "Subject: Your order\nFrom: shop@example.com\nTo: me@example.com\n\n\
         Thanks for your order #1.\n\n- Router\n- Cable"
    );
}

#[test]
fn encoded_words_quoted_printable_and_charsets_are_decoded() {
    let message = "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>\r\n\
        To: team@example.de\r\n\
        Subject: =?UTF-8?B?R3LDvMOfZSBhdXMg?= =?UTF-8?Q?M=C3=BCnchen?=\r\n\
        Content-Type: text/plain; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Sch=F6ne Gr=FC=DFe, und ein sehr langer Satz, der umbrochen wird, weil er =\r\n\
        zu lang ist.\r\n";
    let extraction = read(message);
    assert_eq!(
        extraction.text,
        "Subject: Grüße aus München\n\
         From: Jörg Müller <joerg@example.de>\n\
         To: team@example.de\n\n\
         Schöne Grüße, und ein sehr langer Satz, der umbrochen wird, weil er zu lang ist."
    );
}

#[test]
fn attachments_are_listed_and_their_text_appended() {
    let docx = docx_with_body(
        "<w:p><w:r><w:t>The contract terms.</w:t></w:r></w:p>\
         <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Fee</w:t></w:r></w:p></w:tc>\
         <w:tc><w:p><w:r><w:t>100</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
    );
    let message = format!(
        "From: legal@example.com\r\n\
         To: ops@example.com\r\n\
         Subject: Contract\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
         \r\n\
         --outer\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Please find the contract attached.\r\n\
         --outer\r\n\
         Content-Type: {docx_type}; name=\"contract.docx\"\r\n\
         Content-Disposition: attachment; filename=\"contract.docx\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {encoded}\r\n\
         --outer\r\n\
         Content-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"copy.docx\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {encoded}\r\n\
         --outer\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
         \r\n\
         Remember the deadline.\r\n\
         --outer\r\n\
         Content-Type: image/png\r\n\
         Content-Disposition: attachment; filename=\"logo.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         iVBORw0KGgo=\r\n\
         --outer--\r\n",
        docx_type = crate::extract::DOCX_CONTENT_TYPE,
        encoded = base64_lines(&docx),
    );
    let extraction = read(&message);
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    let expected = format!(
        "Subject: Contract\nFrom: legal@example.com\nTo: ops@example.com\n\n\
         Please find the contract attached.\n\n\
         Attachments:\n\
         - contract.docx ({docx_type}, {size} bytes)\n\
         - copy.docx (application/octet-stream, {size} bytes)\n\
         - notes.txt (text/plain, 22 bytes)\n\
         - logo.png (image/png, 8 bytes)\n\n\
         --- Attachment: contract.docx ---\n\
         The contract terms.\n\nFee | 100\n\n\
         --- Attachment: copy.docx ---\n\
         The contract terms.\n\nFee | 100\n\n\
         --- Attachment: notes.txt ---\n\
         Remember the deadline.",
        docx_type = crate::extract::DOCX_CONTENT_TYPE,
        size = docx.len(),
    );
    assert_eq!(extraction.text, expected);
}

#[test]
fn an_unreadable_attachment_is_a_warning() {
    let message = format!(
        "From: a@example.com\nSubject: Broken\n\
         Content-Type: multipart/mixed; boundary=x\n\n\
         --x\nContent-Type: text/plain\n\nBody text.\n\
         --x\nContent-Type: {}\nContent-Disposition: attachment; filename=broken.docx\n\
         Content-Transfer-Encoding: base64\n\n{}\n--x--\n",
        crate::extract::DOCX_CONTENT_TYPE,
        base64_lines(b"this is not a zip"),
    );
    let extraction = read(&message);
    assert!(
        extraction.text.contains("Body text."),
        "{}",
        extraction.text
    );
    assert!(
        extraction.text.contains("- broken.docx ("),
        "{}",
        extraction.text
    );
    assert!(
        !extraction.text.contains("--- Attachment"),
        "{}",
        extraction.text
    );
    assert_eq!(extraction.warnings.len(), 1);
    assert_eq!(extraction.warnings[0].code, "AttachmentNotRead");
    assert!(
        extraction.warnings[0]
            .message
            .starts_with("broken.docx: reading the .docx failed"),
        "{}",
        extraction.warnings[0].message
    );
}

#[test]
fn attached_messages_are_read_recursively_up_to_the_nesting_limit() {
    let mut message = "From: innermost@example.com\nSubject: Level 4\n\nDeepest body.\n".to_owned();
    for level in (0..4).rev() {
        message = format!(
            "From: level{level}@example.com\nSubject: Level {level}\n\
             Content-Type: multipart/mixed; boundary=\"b{level}\"\n\n\
             --b{level}\nContent-Type: text/plain\n\nBody {level}.\n\
             --b{level}\nContent-Type: message/rfc822\n\n{message}\n--b{level}--\n"
        );
    }
    let extraction = read(&message);
    for level in 0..4 {
        assert!(
            extraction.text.contains(&format!("Body {level}.")),
            "level {level}: {}",
            extraction.text
        );
    }
    assert!(
        extraction
            .text
            .contains("--- Attachment: Level 1.eml ---\nSubject: Level 1"),
        "{}",
        extraction.text
    );
    // Depth 0 is the e-mail itself; levels 1 to 3 are followed, level 4 is not.
    assert!(
        !extraction.text.contains("Deepest body."),
        "{}",
        extraction.text
    );
    assert_eq!(extraction.warnings.len(), 1, "{:?}", extraction.warnings);
    assert_eq!(extraction.warnings[0].code, "AttachmentNotRead");
    // The warning names the path to the attachment.
    assert!(
        extraction.warnings[0].message.starts_with(
            "Level 1.eml: Level 2.eml: Level 3.eml: Level 4.eml: attachments are followed"
        ),
        "{}",
        extraction.warnings[0].message
    );
}

#[test]
fn an_mbox_separator_line_is_skipped() {
    let message = "From alice@example.com Mon Jan 20 14:03:00 2025\n\
        From: alice@example.com\nSubject: From mbox\n\nHello.\n";
    assert_eq!(
        read(message).text,
        "Subject: From mbox\nFrom: alice@example.com\n\nHello."
    );
}

#[test]
fn a_message_without_subject_or_addresses_starts_with_its_body() {
    let message = "Content-Type: text/plain; charset=utf-8\r\n\r\nJust a body.\r\n";
    assert_eq!(read(message).text, "Just a body.");
}

#[test]
fn running_out_of_time_fails_the_whole_message() {
    let message = "From: a@example.com\nSubject: x\n\nbody\n";
    let error = extract(message.as_bytes(), Instant::now(), 0).expect_err("timed out");
    assert_eq!(error.code, "ExtractionTimedOut");
}

#[test]
fn things_that_are_not_e_mails_are_refused() {
    let mut state = 0x0123_4567_89ab_cdef_u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as u8
        })
        .collect();
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        random,
        b"Dear Bob,\n\nthis is a letter, not an e-mail.\n".to_vec(),
        b"Note: this looks like a header\n\nbut is not one.\n".to_vec(),
        b"Subject: headers only, no body".to_vec(),
        zip_of(&[("a.txt", b"zip")]),
    ];
    for bytes in cases {
        let error = extract(&bytes, deadline(), 0).expect_err("refused");
        assert_eq!(error.code, "UnreadableEmail", "{}", error.message);
    }
}

#[test]
fn malformed_mime_does_not_panic() {
    let messages = [
        "Subject: x\nContent-Type: multipart/mixed; boundary=z\n\n--z\n",
        "Subject: x\nContent-Type: multipart/mixed\n\nno boundary\n",
        "Subject: x\nContent-Type: message/rfc822\n\n",
        "Subject: x\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n!!!!\n",
        "Subject: =?utf-8?q?broken\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n",
        "Subject: x\nContent-Type: text/plain; charset=nonexistent\n\nbody\n",
        "Subject: x\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: multipart/mixed; boundary=b\n\n--b\n--a--\n",
    ];
    for message in messages {
        if let Err(error) = extract(message.as_bytes(), deadline(), 0) {
            assert_eq!(
                error.code, "UnreadableEmail",
                "{message}: {}",
                error.message
            );
        }
    }
    let deep = format!(
        "Subject: deep\nContent-Type: multipart/mixed; boundary=x0\n\n{}",
        (1..5000)
            .map(|level| format!(
                "--x{}\nContent-Type: multipart/mixed; boundary=x{level}\n\n",
                level - 1
            ))
            .collect::<String>()
    );
    let extraction = extract(deep.as_bytes(), deadline(), 0).expect("deep multipart is read");
    assert!(
        extraction.text.starts_with("Subject: deep\n"),
        "{}",
        extraction.text
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const MESSAGE: &str = "From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\n\
        To: a@example.com\r\nSubject: Test\r\n\
        Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
        --m\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n\
        --a\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n\
        --a\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n--a--\r\n\
        --m\r\nContent-Type: message/rfc822\r\n\r\n\
        Subject: inner\r\n\r\ninner body\r\n\
        --m\r\nContent-Type: application/octet-stream; name=x.html\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nPHA+aGk8L3A+\r\n--m--\r\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A damaged e-mail is read or refused as `UnreadableEmail`, never a panic.
        #[test]
        fn damaged_messages_are_read_or_refused(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let mut bytes = MESSAGE.as_bytes().to_vec();
            for (position, byte) in flips {
                let position = position % bytes.len();
                bytes[position] ^= byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Err(error) = extract(&bytes, deadline(), 0) {
                prop_assert_eq!(error.code, "UnreadableEmail", "{}", error.message);
            }
        }

        /// Arbitrary bytes are read or refused as `UnreadableEmail`.
        #[test]
        fn arbitrary_bytes_are_read_or_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        ) {
            if let Err(error) = extract(&bytes, deadline(), 0) {
                prop_assert_eq!(error.code, "UnreadableEmail", "{}", error.message);
            }
        }
    }
}
