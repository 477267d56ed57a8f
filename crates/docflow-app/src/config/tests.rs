use super::*;
use std::collections::HashMap;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_are_offline_and_portless() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.port, None);
    assert_eq!(s.ai, AiSettings::Offline);
    assert_eq!(s.process.max_inline_retry_wait, Duration::from_secs(10));
}

#[test]
fn port_precedence_and_validation() {
    assert_eq!(
        settings(&[("FUNCTIONS_HTTPWORKER_PORT", "81")])
            .unwrap()
            .port,
        Some(81)
    );
    let both = settings(&[
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "80"),
        ("FUNCTIONS_HTTPWORKER_PORT", "81"),
    ]);
    assert_eq!(both.unwrap().port, Some(80));
    assert!(settings(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "http")]).is_err());
    assert!(settings(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "0")]).is_err());
}

#[test]
fn azure_openai_needs_endpoint_and_deployments() {
    let err = settings(&[("DOCFLOW_AI_PROVIDER", "azure-openai")]).unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Missing {
            name: "AZURE_OPENAI_ENDPOINT",
            ..
        }
    ));
    let ok = settings(&[
        ("DOCFLOW_AI_PROVIDER", "azure-openai"),
        ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"),
        ("AZURE_OPENAI_CHAT_DEPLOYMENT", "chat"),
        ("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", "embed"),
    ]);
    assert!(matches!(
        ok.unwrap().ai,
        AiSettings::AzureOpenAi { api_key: None, .. }
    ));
    assert!(settings(&[("DOCFLOW_AI_PROVIDER", "gpt")]).is_err());
}
