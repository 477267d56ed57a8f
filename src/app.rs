//! Wiring: turns [`Settings`] into the running pieces. The only place that chooses between the
//! implementations of a seam; nothing else branches on where docflow runs.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};

use crate::ai::AiProvider;
use crate::ai::offline::OfflineProvider;
use crate::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
use crate::blob::{BlobStore, LocalFolderStore};
use crate::config::{AiSettings, Settings};
use crate::functions::{ProcessDocument, Registry};

/// Errors building the app from valid settings (credentials, HTTP clients).
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A Microsoft Entra credential could not be created.
    #[error("cannot create the Microsoft Entra credential: {0}")]
    Credential(String),
    /// The HTTP client could not be created.
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The AI provider the settings ask for.
pub fn ai_provider(settings: &AiSettings) -> Result<Arc<dyn AiProvider>, WiringError> {
    Ok(match settings {
        AiSettings::Offline => Arc::new(OfflineProvider),
        AiSettings::OpenAi {
            base_url,
            api_key,
            chat_model,
            embedding_model,
            timeout,
        } => Arc::new(OpenAiProvider::new(OpenAiOptions {
            endpoint: Endpoint::OpenAi {
                base_url: base_url.clone(),
            },
            auth: api_key.clone().map_or(Auth::None, Auth::BearerKey),
            chat_model: chat_model.clone(),
            embedding_model: embedding_model.clone(),
            timeout: *timeout,
        })?),
        AiSettings::AzureOpenAi {
            endpoint,
            api_version,
            api_key,
            credential,
            client_id,
            chat_deployment,
            embedding_deployment,
            timeout,
        } => {
            let auth = match api_key {
                Some(key) => Auth::AzureApiKey(key.clone()),
                None => Auth::Entra(entra_credential(
                    credential.as_deref(),
                    client_id.as_deref(),
                )?),
            };
            Arc::new(OpenAiProvider::new(OpenAiOptions {
                endpoint: Endpoint::Azure {
                    endpoint: endpoint.clone(),
                    api_version: api_version.clone(),
                },
                auth,
                chat_model: chat_deployment.clone(),
                embedding_model: embedding_deployment.clone(),
                timeout: *timeout,
            })?)
        }
    })
}

/// Managed identity in Azure (the platform sets `IDENTITY_ENDPOINT`), developer tools (Azure
/// CLI, Azure Developer CLI) elsewhere, unless `credential` names one.
fn entra_credential(
    credential: Option<&str>,
    client_id: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, WiringError> {
    let on_azure = std::env::var_os("IDENTITY_ENDPOINT").is_some()
        || std::env::var_os("MSI_ENDPOINT").is_some();
    let managed = match credential.map(str::to_ascii_lowercase).as_deref() {
        Some("managedidentity") => true,
        Some(_) => false,
        None => on_azure,
    };
    let err = |e: azure_core::Error| WiringError::Credential(e.to_string());
    if managed {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_string())),
            ..Default::default()
        };
        Ok(ManagedIdentityCredential::new(Some(options)).map_err(err)?)
    } else {
        Ok(DeveloperToolsCredential::new(None).map_err(err)?)
    }
}

/// The functions served by `docflow serve`, built from settings.
pub fn registry(settings: &Settings) -> Result<Registry, WiringError> {
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalFolderStore::new(&settings.blob_dir));
    let ai = ai_provider(&settings.ai)?;
    Ok(Registry::new().with(Arc::new(ProcessDocument::new(
        blobs,
        ai,
        settings.process.clone(),
    ))))
}
