//! Where docflow's blobs live, from Functions-style connection settings:
//! `DOCFLOW_BLOB_CONNECTION` names a connection, and that name is either a connection string
//! (`UseDevelopmentStorage=true`, `AccountName=…;AccountKey=…`, `BlobEndpoint=…;SharedAccessSignature=…`)
//! or, for identity-based access, `NAME__blobServiceUri` / `NAME__serviceUri` (with
//! `NAME__clientId` for a user-assigned managed identity, `NAME__credential`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's well-known development account.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public; not a secret).
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Service version the account SAS is signed for.
pub const SAS_VERSION: &str = "2021-08-06";

/// How to reach a blob service.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobConnection {
    /// A shared key: docflow signs an account SAS with it.
    SharedKey {
        /// `https://{account}.blob.core.windows.net` or Azurite's `http://127.0.0.1:10000/{account}`.
        endpoint: String,
        /// Account name.
        account: String,
        /// Base64 key.
        key: String,
    },
    /// A SAS token given in the connection string.
    Sas {
        /// Blob endpoint.
        endpoint: String,
        /// The token (without `?`).
        token: String,
    },
    /// Microsoft Entra ID (managed identity in Azure, developer tools locally).
    Identity {
        /// Blob endpoint.
        endpoint: String,
        /// `managedidentity` or `developer`.
        credential: Option<String>,
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
    },
}

/// A connection setting docflow cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("blob connection {name}: {problem}")]
pub struct BlobConnectionError {
    /// The connection name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

impl BlobConnection {
    /// Reads connection `name` through `lookup` (the app settings).
    pub fn from_setting(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BlobConnectionError> {
        let err = |problem: &str| BlobConnectionError {
            name: name.to_string(),
            problem: problem.to_string(),
        };
        if let Some(text) = lookup(name).filter(|t| !t.trim().is_empty()) {
            return Self::from_connection_string(&text).map_err(|p| err(&p));
        }
        let endpoint = lookup(&format!("{name}__blobServiceUri"))
            .or_else(|| lookup(&format!("{name}__serviceUri")))
            .ok_or_else(|| {
                err(&format!(
                    "is not configured: set {name} to a connection string, or {name}__blobServiceUri for identity-based access"
                ))
            })?;
        Ok(Self::Identity {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            credential: lookup(&format!("{name}__credential")),
            client_id: lookup(&format!("{name}__clientId")),
        })
    }

    /// Parses a storage connection string.
    pub fn from_connection_string(text: &str) -> Result<Self, String> {
        let mut parts = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not Key=Value"))?;
            parts.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let get = |k: &str| parts.get(k).cloned();
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let proxy = get("developmentstorageproxyuri")
                .unwrap_or_else(|| "http://127.0.0.1:10000".into());
            return Ok(Self::SharedKey {
                endpoint: format!("{}/{DEV_ACCOUNT}", proxy.trim_end_matches('/')),
                account: DEV_ACCOUNT.into(),
                key: DEV_KEY.into(),
            });
        }
        let account = get("accountname");
        let endpoint = match (get("blobendpoint"), &account) {
            (Some(e), _) => e.trim_end_matches('/').to_string(),
            (None, Some(account)) => format!(
                "{}://{account}.blob.{}",
                get("defaultendpointsprotocol").unwrap_or_else(|| "https".into()),
                get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into())
            ),
            (None, None) => return Err("needs AccountName or BlobEndpoint".into()),
        };
        if let Some(token) = get("sharedaccesssignature") {
            return Ok(Self::Sas {
                endpoint,
                token: token.trim_start_matches('?').to_string(),
            });
        }
        match (account, get("accountkey")) {
            (Some(account), Some(key)) => {
                base64::engine::general_purpose::STANDARD
                    .decode(&key)
                    .map_err(|_| "AccountKey is not base64".to_string())?;
                Ok(Self::SharedKey {
                    endpoint,
                    account,
                    key,
                })
            }
            _ => Err("needs AccountName and AccountKey, or SharedAccessSignature".into()),
        }
    }

    /// The blob endpoint.
    pub fn endpoint(&self) -> &str {
        match self {
            Self::SharedKey { endpoint, .. }
            | Self::Sas { endpoint, .. }
            | Self::Identity { endpoint, .. } => endpoint,
        }
    }
}

/// An account SAS for the blob service (containers and objects: read, add, create, write,
/// delete, list), valid until `expiry` (RFC 3339, seconds, `Z`).
pub fn account_sas(account: &str, key: &str, expiry: &str) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| "the account key is not base64".to_string())?;
    let permissions = "racwdl";
    let string_to_sign =
        format!("{account}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{SAS_VERSION}\n\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Ok(format!(
        "sv={SAS_VERSION}&ss=b&srt=sco&sp={permissions}&se={}&spr=https,http&sig={}",
        encode(expiry),
        encode(&signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let dev = BlobConnection::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(dev.endpoint(), "http://127.0.0.1:10000/devstoreaccount1");
        let key = BlobConnection::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(key.endpoint(), "https://contoso.blob.core.windows.net");
        let sas = BlobConnection::from_connection_string(
            "BlobEndpoint=https://contoso.blob.core.windows.net/;SharedAccessSignature=?sv=1&sig=x",
        )
        .unwrap();
        assert_eq!(
            sas,
            BlobConnection::Sas {
                endpoint: "https://contoso.blob.core.windows.net".into(),
                token: "sv=1&sig=x".into()
            }
        );
        assert!(BlobConnection::from_connection_string("AccountName=x").is_err());
        assert!(BlobConnection::from_connection_string("garbage").is_err());
    }

    #[test]
    fn identity_settings() {
        let lookup = |k: &str| match k {
            "Store__blobServiceUri" => Some("https://contoso.blob.core.windows.net/".to_string()),
            "Store__clientId" => Some("abc".to_string()),
            _ => None,
        };
        let c = BlobConnection::from_setting("Store", lookup).unwrap();
        assert_eq!(
            c,
            BlobConnection::Identity {
                endpoint: "https://contoso.blob.core.windows.net".into(),
                credential: None,
                client_id: Some("abc".into())
            }
        );
        assert!(BlobConnection::from_setting("Missing", |_| None).is_err());
    }

    #[test]
    fn sas_is_signed_over_the_documented_fields() {
        let token = account_sas(DEV_ACCOUNT, DEV_KEY, "2030-01-01T00:00:00Z").unwrap();
        assert!(
            token.starts_with("sv=2021-08-06&ss=b&srt=sco&sp=racwdl&se=2030"),
            "{token}"
        );
        let expiry = token
            .split('&')
            .find_map(|p| p.strip_prefix("se="))
            .unwrap();
        assert_eq!(
            percent_encoding::percent_decode_str(expiry)
                .decode_utf8()
                .unwrap(),
            "2030-01-01T00:00:00Z"
        );
        assert!(token.contains("&spr=https,http&sig="));
    }
}
