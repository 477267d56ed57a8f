//! Documents as users have them, built by the tests themselves: a Word file, a web page and an
//! e-mail with an attachment.

use std::io::Write as _;

use base64::Engine as _;

/// A `.docx` with a heading and paragraphs, a table, a header, a footer and a footnote.
pub fn docx(paragraphs: &[&str], table: &[[&str; 2]]) -> Vec<u8> {
    let w = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;
    let mut body = String::new();
    for text in paragraphs {
        body.push_str(&format!(
            r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#,
            escape(text)
        ));
    }
    body.push_str(r#"<w:p><w:r><w:t>See the note.</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r></w:p>"#);
    body.push_str("<w:tbl>");
    for row in table {
        body.push_str("<w:tr>");
        for cell in row {
            body.push_str(&format!(
                "<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>",
                escape(cell)
            ));
        }
        body.push_str("</w:tr>");
    }
    body.push_str("</w:tbl>");
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {w}><w:body>{body}<w:sectPr><w:headerReference w:type="default" r:id="rIdH"/><w:footerReference w:type="default" r:id="rIdF"/></w:sectPr></w:body></w:document>"#
    );
    let header = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:hdr {w}><w:p><w:r><w:t>Contoso Confidential Header</w:t></w:r></w:p></w:hdr>"#
    );
    let footer = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:ftr {w}><w:p><w:r><w:t>Footer of Contoso Ltd</w:t></w:r></w:p></w:ftr>"#
    );
    let footnotes = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:footnotes {w}><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r><w:t>Footnote about the warranty period.</w:t></w:r></w:p></w:footnote></w:footnotes>"#
    );
    let rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rIdH" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/><Relationship Id="rIdF" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer" Target="footer1.xml"/><Relationship Id="rIdN" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/></Relationships>"#;
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let root_rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in [
        ("[Content_Types].xml", types.to_string()),
        ("_rels/.rels", root_rels.to_string()),
        ("word/document.xml", document),
        ("word/_rels/document.xml.rels", rels.to_string()),
        ("word/header1.xml", header),
        ("word/footer1.xml", footer),
        ("word/footnotes.xml", footnotes),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A web page: navigation, a script and a style around an article with a link and a list.
pub fn html(title: &str, paragraphs: &[&str]) -> Vec<u8> {
    let mut article = String::new();
    for text in paragraphs {
        article.push_str(&format!("<p>{}</p>\n", escape(text)));
    }
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: sans-serif }} .secret {{ color: red }}</style>
<script>var tracking = "SCRIPT-SHOULD-NOT-APPEAR";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/products">NAVIGATION-SHOULD-NOT-APPEAR</a></nav>
<article>
<h1>{title}</h1>
{article}<p>Read the <a href="https://example.com/terms">full terms of service</a> before signing.</p>
<ul><li>First delivery in April</li><li>Second delivery in May</li></ul>
</article>
</body></html>"#
    )
    .into_bytes()
}

/// An e-mail with a plain-text body and one attachment.
pub fn eml(subject: &str, body: &str, attachment: (&str, &str, &[u8])) -> Vec<u8> {
    let (name, content_type, bytes) = attachment;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "From: Alice Buyer <alice@contoso.example>\r\n\
         To: Support <support@fabrikam.example>\r\n\
         Subject: {subject}\r\n\
         Date: Tue, 4 Mar 2025 09:15:00 +0100\r\n\
         Message-ID: <test-1@contoso.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mixed-boundary\"\r\n\
         \r\n\
         --mixed-boundary\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         {body}\r\n\
         --mixed-boundary\r\n\
         Content-Type: {content_type}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {}\r\n\
         --mixed-boundary--\r\n",
        wrapped.join("\r\n")
    )
    .into_bytes()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
