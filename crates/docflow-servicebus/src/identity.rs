//! Microsoft Entra credentials, chosen as Azure Functions does for identity-based connections:
//! managed identity where the platform provides one (`IDENTITY_ENDPOINT`), developer tools
//! (Azure CLI, Azure Developer CLI) elsewhere, unless the setting's `credential` names one;
//! `clientId` selects a user-assigned managed identity.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};

/// The credential for a connection's `credential` and `clientId` settings.
pub fn entra_credential(
    credential: Option<&str>,
    client_id: Option<&str>,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let on_azure = std::env::var_os("IDENTITY_ENDPOINT").is_some()
        || std::env::var_os("MSI_ENDPOINT").is_some();
    let managed = credential.map_or(on_azure, |c| c.eq_ignore_ascii_case("managedidentity"));
    if managed {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_string())),
            ..Default::default()
        };
        Ok(ManagedIdentityCredential::new(Some(options))?)
    } else {
        Ok(DeveloperToolsCredential::new(None)?)
    }
}
