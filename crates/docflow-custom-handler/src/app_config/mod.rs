//! Reads a Functions app as the host does: `host.json`, every `*/function.json`, and the values of
//! `local.settings.json`. Anything the Functions host (and docflow's local host) cannot honour
//! is refused with the file and the field named. Used by the local host and by packaging.
//!
//! - `host`: `host.json`.
//! - `function`: one `function.json`.

mod function;
mod host;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

#[cfg(test)]
use self::function::expand;
use self::function::function_def;
use self::host::host_settings;

/// An app the local host refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct AppError {
    /// The file, relative to the app root.
    pub file: String,
    /// The field, as a JSON path.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn app_error(file: &str, field: &str, problem: impl Into<String>) -> AppError {
    AppError {
        file: file.into(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// `host.json`, resolved.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// `functionTimeout` (`None`: unbounded).
    pub function_timeout: Option<Duration>,
    /// `customHandler.description.defaultExecutablePath`.
    pub executable: String,
    /// `customHandler.description.arguments`.
    pub arguments: Vec<String>,
    /// `customHandler.description.workingDirectory`, relative to the app root.
    pub working_directory: Option<String>,
    /// `customHandler.enableForwardingHttpRequest`.
    pub forward_http: bool,
    /// `customHandler.initializationTimeout`.
    pub initialization_timeout: Duration,
    /// `extensions.http.routePrefix`.
    pub route_prefix: String,
    /// `extensions.serviceBus.autoCompleteMessages`.
    pub auto_complete: bool,
    /// `extensions.serviceBus.maxAutoLockRenewalDuration` (`None`: infinite).
    pub max_lock_renewal: Option<Duration>,
    /// `extensions.serviceBus.maxConcurrentCalls`.
    pub max_concurrent_calls: usize,
    /// `extensions.serviceBus.maxConcurrentSessions`.
    pub max_concurrent_sessions: usize,
    /// `extensions.serviceBus.maxConcurrentCallsPerSession`.
    pub max_calls_per_session: usize,
    /// `extensions.serviceBus.maxMessageBatchSize`.
    pub max_batch_size: usize,
}

/// The trigger of a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `serviceBusTrigger`.
    ServiceBus(ServiceBusTrigger),
    /// `httpTrigger`.
    Http(HttpTrigger),
}

/// A Service Bus trigger binding.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceBusTrigger {
    /// Binding name (the key in `Data`).
    pub name: String,
    /// Queue name, or `topic/subscriptions/sub`.
    pub entity: String,
    /// Connection setting name.
    pub connection: String,
    /// `isSessionsEnabled`.
    pub sessions: bool,
    /// `cardinality: many`.
    pub many: bool,
    /// `dataType`: `None`, `string` or `binary`.
    pub data_type: Option<String>,
    /// `autoCompleteMessages` (trigger value, else host.json).
    pub auto_complete: bool,
    /// `maxMessageBatchSize` (trigger value, else host.json).
    pub max_batch_size: usize,
}

/// An HTTP trigger binding.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTrigger {
    /// Binding name (`req`).
    pub name: String,
    /// Allowed methods, upper case; empty means all.
    pub methods: Vec<String>,
    /// Route template, without the route prefix.
    pub route: String,
}

/// An output binding.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `serviceBus` out: a queue or topic.
    ServiceBus {
        /// Binding name.
        name: String,
        /// Queue or topic.
        entity: String,
    },
    /// `blob` out.
    Blob {
        /// Binding name.
        name: String,
        /// `container/blob` with binding expressions.
        path: String,
        /// `dataType: binary`.
        binary: bool,
    },
    /// `http` out.
    Http {
        /// Binding name (`res` or `$return`).
        name: String,
    },
}

impl Output {
    /// The binding name.
    pub fn name(&self) -> &str {
        match self {
            Output::ServiceBus { name, .. } | Output::Blob { name, .. } | Output::Http { name } => {
                name
            }
        }
    }
}

/// One function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    /// Folder name = function name.
    pub name: String,
    /// Its trigger.
    pub trigger: Trigger,
    /// Its outputs.
    pub outputs: Vec<Output>,
}

impl FunctionDef {
    /// An HTTP-only function (one httpTrigger in, one http out): forwarded when forwarding is on.
    pub fn is_http_only(&self) -> bool {
        matches!(self.trigger, Trigger::Http(_))
            && self.outputs.len() == 1
            && matches!(self.outputs[0], Output::Http { .. })
    }
}

/// A whole app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The app root.
    pub root: PathBuf,
    /// host.json.
    pub host: HostSettings,
    /// Functions by name.
    pub functions: Vec<FunctionDef>,
    /// `local.settings.json` `Values`, each overridden by an environment variable of the same
    /// name when there is one (as Azure Functions Core Tools does).
    pub settings: BTreeMap<String, String>,
}

impl HostSettings {
    /// `host.json` of the app at `root`, on its own (no function folders, no local settings).
    pub fn load(root: &Path) -> Result<Self, AppError> {
        host_settings(&read_json(root, "host.json")?)
    }
}

impl AppConfig {
    /// Loads the app at `root`.
    pub fn load(root: &Path) -> Result<Self, AppError> {
        Self::load_with(root, &[])
    }

    /// Loads the app at `root`; host.json is overridden by `AzureFunctionsJobHost__…` settings
    /// from `local.settings.json`, then the environment, then `env` (later ones win).
    pub fn load_with(root: &Path, env: &[(String, String)]) -> Result<Self, AppError> {
        let settings = local_settings(root)?;
        let mut host_json = read_json(root, "host.json")?;
        let process_env: Vec<(String, String)> = std::env::vars().collect();
        crate::host_json_overrides::apply(
            &mut host_json,
            settings
                .iter()
                .chain(process_env.iter().map(|(k, v)| (k, v)))
                .chain(env.iter().map(|(k, v)| (k, v)))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let host = host_settings(&host_json)?;
        let mut functions = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| app_error(".", "$", format!("cannot read the app root: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("function.json").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let file = format!("{name}/function.json");
            let json = read_json(root, &file)?;
            if json.get("disabled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            functions.push(function_def(&name, &file, &json, &host, &settings)?);
        }
        Ok(Self {
            root: root.to_path_buf(),
            host,
            functions,
            settings,
        })
    }

    /// A function by name.
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }
}

fn read_json(root: &Path, file: &str) -> Result<Value, AppError> {
    let text = std::fs::read_to_string(root.join(file))
        .map_err(|e| app_error(file, "$", format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        app_error(
            file,
            &format!("$ (line {}, column {})", e.line(), e.column()),
            e.to_string(),
        )
    })
}

/// `local.settings.json` as Core Tools reads it; only `Values` matters here.
#[derive(serde::Deserialize)]
struct LocalSettingsFile {
    #[serde(rename = "Values", default)]
    values: serde_json::Map<String, Value>,
}

/// The `Values` of `local.settings.json` at `root` (none when the file is absent), each
/// overridden by an environment variable of the same name. The one parse of that file.
pub fn local_settings(root: &Path) -> Result<BTreeMap<String, String>, AppError> {
    let file = "local.settings.json";
    let text = match std::fs::read_to_string(root.join(file)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(app_error(file, "$", format!("cannot read: {e}"))),
    };
    let mut json = serde_json::Deserializer::from_str(&text);
    let parsed: LocalSettingsFile = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if inner.is_syntax() || inner.is_eof() || path == "." {
            format!("$ (line {}, column {})", inner.line(), inner.column())
        } else {
            format!("$.{path}")
        };
        app_error(file, &field, inner.to_string())
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in parsed.values {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(app_error(
                    file,
                    &format!("$.Values.{k}"),
                    "must be a string",
                ));
            }
        };
        let text = std::env::var(&k).unwrap_or(text);
        out.insert(k, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn local_settings_problems_name_their_json_path() {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |text: &str| std::fs::write(dir.path().join("local.settings.json"), text).unwrap();
        write(r#"{"Values": 5}"#);
        assert_eq!(local_settings(dir.path()).unwrap_err().field, "$.Values");
        write(r#"{"Values": {"A": [1]}}"#);
        assert_eq!(local_settings(dir.path()).unwrap_err().field, "$.Values.A");
        write(r#"{"Values": "#);
        assert!(
            local_settings(dir.path())
                .unwrap_err()
                .field
                .starts_with("$ (line 1")
        );
        write(r#"{"IsEncrypted": false, "Values": {"A": "x", "N": 3, "B": true}}"#);
        let values = local_settings(dir.path()).unwrap();
        assert_eq!(values["N"], "3");
        assert_eq!(values["B"], "true");
    }

    use super::*;

    #[test]
    fn the_project_app_loads() {
        // The repository root is docflow's Functions app root.
        let app = AppConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
        assert_eq!(app.host.executable, "docflow");
        assert_eq!(app.host.arguments, vec!["serve"]);
        assert_eq!(app.host.function_timeout, Some(Duration::from_secs(600)));
        let f = app.function("ProcessDocument").unwrap();
        assert!(matches!(&f.trigger, Trigger::ServiceBus(t) if t.entity == "ai-tasks" && !t.many));
        assert_eq!(
            f.outputs,
            vec![Output::ServiceBus {
                name: "outcome".into(),
                entity: "task-results".into()
            }]
        );
        assert_eq!(app.settings["FUNCTIONS_WORKER_RUNTIME"], "custom");
    }

    #[test]
    fn host_json_is_overridden_by_settings_local_then_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("host.json"),
            r#"{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "x"}},
            "extensions": {"serviceBus": {"maxConcurrentCalls": 4, "maxConcurrentSessions": 4}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("local.settings.json"),
            r#"{"IsEncrypted": false, "Values": {
                "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls": "2",
                "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentSessions": "3"}}"#,
        )
        .unwrap();
        let app = AppConfig::load(dir.path()).unwrap();
        assert_eq!(app.host.max_concurrent_calls, 2);
        assert_eq!(app.host.max_concurrent_sessions, 3);
        let given = [(
            "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls".to_string(),
            "1".to_string(),
        )];
        let app = AppConfig::load_with(dir.path(), &given).unwrap();
        assert_eq!(app.host.max_concurrent_calls, 1);
        assert_eq!(app.host.max_concurrent_sessions, 3);
        // A bad override is named like a bad host.json.
        let bad = [(
            "AzureFunctionsJobHost__functionTimeout".to_string(),
            "soon".to_string(),
        )];
        let err = AppConfig::load_with(dir.path(), &bad).unwrap_err();
        assert_eq!(err.field, "$.functionTimeout");
    }

    #[test]
    fn unsupported_bindings_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("host.json"), r#"{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "x"}}}"#).unwrap();
        std::fs::create_dir(dir.path().join("Timer")).unwrap();
        std::fs::write(
            dir.path().join("Timer/function.json"),
            r#"{"bindings": [{"name": "t", "type": "timerTrigger", "direction": "in", "schedule": "0 * * * * *"}]}"#,
        )
        .unwrap();
        let err = AppConfig::load(dir.path()).unwrap_err();
        assert_eq!(
            (err.file.as_str(), err.field.as_str()),
            ("Timer/function.json", "$.bindings[0].type")
        );
        std::fs::write(dir.path().join("host.json"), r#"{"version": "2.0"}"#).unwrap();
        assert_eq!(
            AppConfig::load(dir.path()).unwrap_err().field,
            "$.customHandler"
        );
    }

    #[test]
    fn settings_expand_in_entity_names() {
        let settings: BTreeMap<String, String> = [("Q".to_string(), "work".to_string())].into();
        assert_eq!(expand("%Q%-x", &settings, "f", "g").unwrap(), "work-x");
        assert!(expand("%MISSING_SETTING_X%", &settings, "f", "g").is_err());
    }
}
