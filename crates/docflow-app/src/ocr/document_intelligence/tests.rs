use super::*;
use reqwest::header::HeaderValue;

fn headers(retry_after: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = retry_after {
        h.insert("retry-after", HeaderValue::from_str(v).unwrap());
    }
    h
}

const INVALID_CONTENT: &str = r#"{"error": {"code": "InvalidRequest", "message": "Invalid request.",
        "innererror": {"code": "InvalidContent", "message": "The file is corrupted or format is unsupported."}}}"#;

#[test]
fn rate_limits_carry_the_wait() {
    match classify(StatusCode::TOO_MANY_REQUESTS, &headers(Some("7")), "", "x") {
        OcrError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    match classify(StatusCode::TOO_MANY_REQUESTS, &headers(None), "", "x") {
        OcrError::RateLimited { retry_after } => assert_eq!(retry_after, DEFAULT_RETRY_AFTER),
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[test]
fn a_refused_document_is_rejected_with_the_service_reason() {
    match classify(
        StatusCode::BAD_REQUEST,
        &headers(None),
        INVALID_CONTENT,
        "x",
    ) {
        OcrError::Rejected { code, message } => {
            assert_eq!(code, "OcrFailed");
            assert!(message.contains("InvalidContent"), "{message}");
            assert!(message.contains("corrupted"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn configuration_problems_keep_the_document() {
    let invalid_argument = r#"{"error": {"code": "InvalidArgument", "message": "Invalid argument.",
            "innererror": {"code": "InvalidParameter", "message": "The parameter api-version is invalid."}}}"#;
    for (status, body, hint) in [
        (StatusCode::UNAUTHORIZED, "", "credentials"),
        (StatusCode::FORBIDDEN, "", "Cognitive Services User"),
        (StatusCode::NOT_FOUND, "", "check the endpoint"),
        (StatusCode::BAD_REQUEST, invalid_argument, "api-version"),
        (StatusCode::SERVICE_UNAVAILABLE, "", "503"),
    ] {
        match classify(status, &headers(None), body, "the analysis request") {
            OcrError::Transient(message) => assert!(message.contains(hint), "{message}"),
            other => panic!("{status}: expected a transient failure, got {other:?}"),
        }
    }
}

#[test]
fn a_failed_analysis_is_rejected_unless_the_service_is_at_fault() {
    let parse = |json: &str| wire::parse::<ServiceError>(json).unwrap();
    match failed(Some(parse(
        r#"{"code": "InvalidRequest", "message": "Invalid request.",
                "innererror": {"code": "InvalidContent", "message": "The file is corrupted."}}"#,
    ))) {
        OcrError::Rejected { code, message } => {
            assert_eq!(code, "OcrFailed");
            assert!(
                message.contains("(InvalidContent)") && message.contains("corrupted"),
                "{message}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(matches!(
        failed(Some(parse(
            r#"{"code": "InternalServerError", "message": "An unexpected error occurred."}"#
        ))),
        OcrError::Transient(_)
    ));
    // The most severe code on top, a document problem in the details: the document's.
    assert!(matches!(
        failed(Some(parse(
            r#"{"code": "InternalServerError", "message": "An unexpected error occurred.",
                    "details": [{"code": "InvalidContentDimensions", "message": "out of range", "target": "2"}]}"#
        ))),
        OcrError::Rejected { .. }
    ));
    assert!(matches!(failed(None), OcrError::Rejected { .. }));
}

#[test]
fn the_result_must_live_on_the_endpoint() {
    let provider = DocumentIntelligenceProvider::new(
        DocumentIntelligenceOptions::new(
            "https://contoso.cognitiveservices.azure.com/",
            Auth::ApiKey("k".into()),
        ),
        Client::new(),
    );
    assert_eq!(
        provider.analyze_url(),
        "https://contoso.cognitiveservices.azure.com/documentintelligence/documentModels/prebuilt-read:analyze"
    );
    let same = "https://contoso.cognitiveservices.azure.com/documentintelligence/documentModels/prebuilt-read/analyzeResults/3b31320d?api-version=2024-11-30";
    assert_eq!(provider.check_location(same).unwrap().as_str(), same);
    let elsewhere = "https://attacker.example/documentintelligence/analyzeResults/1";
    match provider.check_location(elsewhere) {
        Err(OcrError::Transient(message)) => {
            assert!(message.contains("another host"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn auth_does_not_print_the_key() {
    assert_eq!(
        format!("{:?}", Auth::ApiKey("secret".into())),
        "ApiKey(***)"
    );
}
