use super::*;

fn input(content_type: &str, body: &[u8]) -> HttpInput {
    HttpInput {
        query: vec![],
        headers: vec![("Content-Type".into(), content_type.into())],
        body: Bytes::copy_from_slice(body),
    }
}

async fn read(input: HttpInput) -> Result<Submission, SubmitError> {
    read_submission(&input, 1000).await
}

#[tokio::test]
async fn plain_text_with_defaults() {
    let s = read(input("text/plain", b"Hello there.")).await.unwrap();
    assert_eq!(s.payload, Payload::Text("Hello there.".into()));
    assert_eq!(s.options.analyses.len(), 5);
    assert_eq!(s.options.max_words, DEFAULT_MAX_WORDS);
    assert_eq!(s.content_type, "text/plain");
}

#[tokio::test]
async fn options_from_query_and_json_body() {
    let mut i = input("text/markdown; charset=utf-8", b"# Title\n\nBody.");
    i.query = vec![
        ("analyses".into(), "sentiment,summarize".into()),
        ("maxWords".into(), "20".into()),
    ];
    let s = read(i).await.unwrap();
    assert_eq!(s.options.analyses, vec!["summarize", "sentiment"]);
    assert_eq!(s.options.max_words, 20);

    let body = br#"{"text":"Hi.","analyses":["classify"],"labels":["a","b"],"maxWords":5,"callbackUrl":"https://example.com/hook"}"#;
    let s = read(input("application/json", body)).await.unwrap();
    assert_eq!(s.options.labels, vec!["a", "b"]);
    assert_eq!(s.callback_url.as_deref(), Some("https://example.com/hook"));
}

#[tokio::test]
async fn refusals_name_the_field() {
    let cases: Vec<(HttpInput, u16, &str)> = vec![
        (input("text/plain", b""), 400, "body"),
        (input("text/plain", b"  \n"), 400, "body"),
        (input("application/x-tar", b"x"), 415, "Content-Type"),
        (input("image/png", b""), 400, "body"),
        (input("", b"x"), 415, "Content-Type"),
        (input("text/plain", b"caf\xe9"), 400, "body"),
        (
            input("text/plain; charset=koi8-r", b"x"),
            415,
            "Content-Type",
        ),
        (input("text/plain", &[b'a'; 1001]), 413, "body"),
        (input("application/json", b"{\"text\": 5}"), 400, "text"),
        (input("application/json", b"{\"txt\": \"a\"}"), 400, "body"),
        (
            input("application/json", br#"{"text":"a","maxWords":0}"#),
            400,
            "maxWords",
        ),
        (
            input("application/json", br#"{"text":"a","labels":["x","X"]}"#),
            400,
            "labels",
        ),
        (
            input(
                "application/json",
                br#"{"text":"a","analyses":"translate"}"#,
            ),
            400,
            "analyses",
        ),
        (
            input(
                "application/json",
                br#"{"text":"a","callbackUrl":"ftp://x"}"#,
            ),
            400,
            "callbackUrl",
        ),
    ];
    for (i, status, field) in cases {
        let e = read(i).await.unwrap_err();
        assert_eq!((e.status, e.field.as_str()), (status, field), "{e:?}");
    }
    let mut i = input("text/plain", b"a");
    i.query = vec![("colour".into(), "red".into())];
    assert_eq!(read(i).await.unwrap_err().field, "colour");
}

#[tokio::test]
async fn latin1_is_accepted_when_declared() {
    let s = read(input("text/plain; charset=ISO-8859-1", b"caf\xe9"))
        .await
        .unwrap();
    assert_eq!(s.payload, Payload::Text("café".into()));
    let s = read(input("text/plain; charset=windows-1252", b"\x93hi\x94"))
        .await
        .unwrap();
    assert_eq!(s.payload, Payload::Text("“hi”".into()));
}

#[tokio::test]
async fn multipart_file_and_fields() {
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.md\"\r\n\r\n# Note\n\nText.\r\n--XyZ\r\nContent-Disposition: form-data; name=\"analyses\"\r\n\r\nsummarize\r\n--XyZ--\r\n";
    let s = read(input("multipart/form-data; boundary=XyZ", body.as_bytes()))
        .await
        .unwrap();
    assert_eq!(s.payload, Payload::Text("# Note\n\nText.".into()));
    assert_eq!(s.content_type, "text/markdown");
    assert_eq!(s.filename.as_deref(), Some("note.md"));
    assert_eq!(s.options.analyses, vec!["summarize"]);
    let none = "--XyZ\r\nContent-Disposition: form-data; name=\"analyses\"\r\n\r\nsummarize\r\n--XyZ--\r\n";
    let e = read(input("multipart/form-data; boundary=XyZ", none.as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(e.field, "file");
}

#[tokio::test]
async fn files_by_type_and_by_extension() {
    let s = read(input("application/pdf", b"%PDF-1.4")).await.unwrap();
    assert!(matches!(
        s.payload,
        Payload::File {
            kind: DocumentKind::Pdf,
            ..
        }
    ));
    let s = read(input("text/html; charset=ISO-8859-1", b"<p>x</p>"))
        .await
        .unwrap();
    assert!(matches!(
        s.payload,
        Payload::File { kind: DocumentKind::Html, charset: Some(ref c), .. } if c == "iso-8859-1"
    ));
    let s = read(input("image/jpg", b"\xff\xd8")).await.unwrap();
    assert!(
        matches!(s.payload, Payload::Image { ref content_type, .. } if content_type == "image/jpeg")
    );
    assert_eq!(
        guess_type(Some("Report.DOCX")).as_deref(),
        Some(crate::extract::DOCX_CONTENT_TYPE)
    );
    assert_eq!(
        guess_type(Some("mail.eml")).as_deref(),
        Some("message/rfc822")
    );
    assert_eq!(guess_type(Some("page.htm")).as_deref(), Some("text/html"));
    let e = read(input("application/zip", b"PK")).await.unwrap_err();
    assert_eq!(e.status, 415);
    assert!(e.message.contains("message/rfc822"), "{}", e.message);
}
