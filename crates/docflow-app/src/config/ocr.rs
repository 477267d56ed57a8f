//! The OCR settings: which provider reads scans, and its plain settings.

use std::time::Duration;

use super::{ConfigError, number};

/// The OCR service's rate budget in this process: requests per minute and calls at once, with
/// the same rules as the AI budget (a `429` halves the window, successes grow it back).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OcrBudgetSettings {
    /// Requests per minute (`None`: unlimited, one call at a time until the first answer).
    pub rpm: Option<u64>,
    /// Most OCR calls at once.
    pub max_concurrency: usize,
}

impl OcrBudgetSettings {
    /// Reads `DOCFLOW_OCR_RPM` and `DOCFLOW_OCR_MAX_CONCURRENCY` (default 4).
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rpm = match get("DOCFLOW_OCR_RPM") {
            None => None,
            Some(_) => Some(number(get, "DOCFLOW_OCR_RPM", 0)?),
        };
        Ok(Self {
            rpm,
            max_concurrency: number(get, "DOCFLOW_OCR_MAX_CONCURRENCY", 4)?.max(1) as usize,
        })
    }
}

/// Which OCR provider reads scans and images, and its plain settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum OcrSettings {
    /// No OCR: a scan is refused with a `422` at submission.
    #[default]
    None,
    /// Azure AI Document Intelligence.
    DocumentIntelligence {
        /// `https://{resource}.cognitiveservices.azure.com`.
        endpoint: String,
        /// Key authentication; when absent, Microsoft Entra ID is used.
        api_key: Option<String>,
        /// `managedidentity` or `developer` (as for Azure OpenAI).
        credential: Option<String>,
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
        /// `prebuilt-read` or `prebuilt-layout`.
        model: String,
        /// REST `api-version`.
        api_version: String,
        /// Longest wait for one document's analysis.
        max_wait: Duration,
    },
    /// Tesseract on this machine (`tesseract`, and `pdftoppm` for PDFs).
    Tesseract {
        /// Tesseract's languages (`eng`, `eng+deu`).
        languages: String,
        /// Longest run for one document.
        timeout: Duration,
    },
}

impl OcrSettings {
    /// The provider's name, as the document's status shows it; `None` without OCR.
    pub fn provider_name(&self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::DocumentIntelligence { .. } => Some("azure-document-intelligence"),
            Self::Tesseract { .. } => Some("tesseract"),
        }
    }

    /// Which provider and endpoint, for people (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Self::None => "no OCR (scans are refused)".into(),
            Self::DocumentIntelligence {
                endpoint,
                model,
                api_key,
                ..
            } => format!(
                "azure-document-intelligence {endpoint}, model {model}, {}",
                if api_key.is_some() {
                    "api key"
                } else {
                    "Microsoft Entra ID"
                }
            ),
            Self::Tesseract { languages, .. } => format!("tesseract (languages {languages})"),
        }
    }

    /// Reads `DOCFLOW_OCR_PROVIDER` (`azure-document-intelligence`, `tesseract` or `none`;
    /// default: Document Intelligence when its endpoint is set, else none) and its settings.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoint = get("AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT");
        let provider = get("DOCFLOW_OCR_PROVIDER").map(|v| v.to_ascii_lowercase());
        let provider = provider.as_deref().unwrap_or(if endpoint.is_some() {
            "azure-document-intelligence"
        } else {
            "none"
        });
        Ok(match provider {
            "none" => Self::None,
            "azure-document-intelligence" | "document-intelligence" | "azure" => {
                Self::DocumentIntelligence {
                    endpoint: endpoint
                        .ok_or(ConfigError::Missing {
                            name: "AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT",
                            when: "when DOCFLOW_OCR_PROVIDER is azure-document-intelligence",
                        })?
                        .trim_end_matches('/')
                        .to_string(),
                    api_key: get("AZURE_DOCUMENT_INTELLIGENCE_KEY"),
                    credential: get("AZURE_DOCUMENT_INTELLIGENCE_CREDENTIAL"),
                    client_id: get("AZURE_DOCUMENT_INTELLIGENCE_CLIENT_ID"),
                    model: get("DOCFLOW_OCR_MODEL").unwrap_or_else(|| "prebuilt-read".into()),
                    api_version: get("DOCFLOW_OCR_API_VERSION")
                        .unwrap_or_else(|| "2024-11-30".into()),
                    max_wait: Duration::from_secs(number(get, "DOCFLOW_OCR_MAX_WAIT_SECS", 300)?),
                }
            }
            "tesseract" => Self::Tesseract {
                languages: get("DOCFLOW_OCR_LANGUAGES").unwrap_or_else(|| "eng".into()),
                timeout: Duration::from_secs(number(get, "DOCFLOW_OCR_MAX_WAIT_SECS", 300)?),
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "DOCFLOW_OCR_PROVIDER",
                    value: other.to_string(),
                    expected: "azure-document-intelligence, tesseract or none",
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<OcrSettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OcrSettings::from_lookup(&|name: &str| map.get(name).cloned())
    }

    #[test]
    fn none_by_default_and_document_intelligence_from_its_endpoint() {
        assert_eq!(read(&[]).unwrap(), OcrSettings::None);
        let settings = read(&[
            (
                "AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT",
                "https://contoso.cognitiveservices.azure.com/",
            ),
            ("AZURE_DOCUMENT_INTELLIGENCE_KEY", "k"),
        ])
        .unwrap();
        assert!(matches!(
            settings,
            OcrSettings::DocumentIntelligence { ref endpoint, ref model, .. }
                if endpoint == "https://contoso.cognitiveservices.azure.com" && model == "prebuilt-read"
        ));
        assert_eq!(
            settings.provider_name(),
            Some("azure-document-intelligence")
        );
        assert!(!settings.describe().contains('k') || !settings.describe().contains("\"k\""));
    }

    #[test]
    fn tesseract_and_refusals() {
        assert!(matches!(
            read(&[("DOCFLOW_OCR_PROVIDER", "tesseract")]).unwrap(),
            OcrSettings::Tesseract { ref languages, .. } if languages == "eng"
        ));
        assert!(matches!(
            read(&[("DOCFLOW_OCR_PROVIDER", "azure-document-intelligence")]),
            Err(ConfigError::Missing { .. })
        ));
        assert!(matches!(
            read(&[("DOCFLOW_OCR_PROVIDER", "abbyy")]),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
