//! Where a Service Bus namespace is and how to authenticate, from Functions-style settings.
//!
//! A `connection` name in function.json resolves as the Functions host does (protocol doc §6.2):
//! a setting of exactly that name holding a connection string (`AzureWebJobs` prefix optional),
//! or `{name}__fullyQualifiedNamespace` for identity-based access (managed identity in Azure,
//! developer credentials locally; `{name}__credential` and `{name}__clientId` for a
//! user-assigned identity).

/// Port of the embedded broker when an emulator connection string names none.
pub const DEFAULT_EMULATOR_PORT: u16 = 7072;

/// The well-known key name of the Service Bus emulator.
pub const EMULATOR_KEY_NAME: &str = "RootManageSharedAccessKey";
/// The well-known key of the Service Bus emulator (a public development value, not a secret).
pub const EMULATOR_KEY: &str = "SAS_KEY_VALUE";

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A shared access key.
    SharedKey {
        /// Policy name.
        name: String,
        /// Key.
        key: String,
    },
    /// Microsoft Entra ID.
    Entra {
        /// `managedidentity` to force managed identity.
        credential: Option<String>,
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
    },
}

/// A namespace endpoint with its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// `https://{ns}.servicebus.windows.net` or `http://127.0.0.1:7072`.
    pub base_url: String,
    /// Authentication.
    pub credentials: Credentials,
    /// Whether this is a development emulator (the embedded broker).
    pub emulator: bool,
}

/// A connection setting docflow cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// Neither form of the setting exists.
    #[error(
        "Service Bus connection {name:?} is not configured: set {name} to a connection string or {name}__fullyQualifiedNamespace"
    )]
    NotConfigured {
        /// The connection name.
        name: String,
    },
    /// The connection string lacks a part.
    #[error("Service Bus connection string is invalid: {0}")]
    Invalid(String),
}

impl Namespace {
    /// Parses a connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`).
    pub fn from_connection_string(text: &str) -> Result<Self, ConnectionError> {
        let mut endpoint = None;
        let (mut key_name, mut key, mut emulator) = (None, None, false);
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ConnectionError::Invalid(format!("{part:?} is not key=value")))?;
            match k.to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(v.to_string()),
                "sharedaccesskeyname" => key_name = Some(v.to_string()),
                "sharedaccesskey" => key = Some(v.to_string()),
                "usedevelopmentemulator" => emulator = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let endpoint =
            endpoint.ok_or_else(|| ConnectionError::Invalid("Endpoint is missing".into()))?;
        let host = ["sb://", "https://", "http://"]
            .iter()
            .find_map(|p| endpoint.strip_prefix(p))
            .unwrap_or(&endpoint)
            .trim_end_matches('/');
        if host.is_empty() {
            return Err(ConnectionError::Invalid("Endpoint has no host".into()));
        }
        let base_url = if emulator {
            let with_port = if host.contains(':') {
                host.to_string()
            } else {
                format!("{host}:{DEFAULT_EMULATOR_PORT}")
            };
            format!("http://{with_port}")
        } else {
            format!("https://{host}")
        };
        let credentials = match (key_name, key) {
            (Some(name), Some(key)) => Credentials::SharedKey { name, key },
            _ => {
                return Err(ConnectionError::Invalid(
                    "SharedAccessKeyName and SharedAccessKey are required".into(),
                ));
            }
        };
        Ok(Self {
            base_url,
            credentials,
            emulator,
        })
    }

    /// Resolves a function.json `connection` name through `lookup` (the environment).
    pub fn from_setting(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectionError> {
        let name = if name.is_empty() {
            "AzureWebJobsServiceBus"
        } else {
            name
        };
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let prefixed = format!("AzureWebJobs{name}");
        if let Some(text) = get(name).or_else(|| get(&prefixed)) {
            return Self::from_connection_string(&text);
        }
        for base in [name, prefixed.as_str()] {
            if let Some(ns) = get(&format!("{base}__fullyQualifiedNamespace")) {
                let ns = ns.trim().trim_end_matches('/');
                let ns = ns
                    .strip_prefix("https://")
                    .or_else(|| ns.strip_prefix("sb://"))
                    .unwrap_or(ns);
                return Ok(Self {
                    base_url: format!("https://{ns}"),
                    credentials: Credentials::Entra {
                        credential: get(&format!("{base}__credential")),
                        client_id: get(&format!("{base}__clientId")),
                    },
                    emulator: false,
                });
            }
        }
        Err(ConnectionError::NotConfigured {
            name: name.to_string(),
        })
    }

    /// The emulator connection string for a broker on `127.0.0.1:port`.
    pub fn emulator_connection_string(port: u16) -> String {
        format!(
            "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName={EMULATOR_KEY_NAME};SharedAccessKey={EMULATOR_KEY};UseDevelopmentEmulator=true;"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn connection_strings() {
        let local = Namespace::from_connection_string(&Namespace::emulator_connection_string(7072))
            .unwrap();
        assert_eq!(local.base_url, "http://127.0.0.1:7072");
        assert!(local.emulator);
        let default_port = Namespace::from_connection_string(
            "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;",
        )
        .unwrap();
        assert_eq!(default_port.base_url, "http://localhost:7072");
        let azure = Namespace::from_connection_string("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc=").unwrap();
        assert_eq!(azure.base_url, "https://ns.servicebus.windows.net");
        assert_eq!(
            azure.credentials,
            Credentials::SharedKey {
                name: "send".into(),
                key: "abc=".into()
            }
        );
        assert!(Namespace::from_connection_string("SharedAccessKey=x").is_err());
    }

    #[test]
    fn settings_resolve_like_the_functions_host() {
        let env: HashMap<&str, &str> = [
            (
                "ServiceBusConnection__fullyQualifiedNamespace",
                "ns.servicebus.windows.net",
            ),
            ("ServiceBusConnection__clientId", "1234"),
            (
                "AzureWebJobsOther",
                "Endpoint=sb://o.servicebus.windows.net;SharedAccessKeyName=a;SharedAccessKey=b",
            ),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let ns = Namespace::from_setting("ServiceBusConnection", lookup).unwrap();
        assert_eq!(ns.base_url, "https://ns.servicebus.windows.net");
        assert_eq!(
            ns.credentials,
            Credentials::Entra {
                credential: None,
                client_id: Some("1234".into())
            }
        );
        assert_eq!(
            Namespace::from_setting("Other", lookup).unwrap().base_url,
            "https://o.servicebus.windows.net"
        );
        assert!(matches!(
            Namespace::from_setting("Missing", lookup),
            Err(ConnectionError::NotConfigured { .. })
        ));
    }
}
