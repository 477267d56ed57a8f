//! The deployable app, as Azure Functions runs it: a zip with the custom handler's binary (at
//! the path `host.json` names, linked against glibc 2.28 so that it runs on every Functions
//! Linux image), `host.json`, every function folder's `function.json` and
//! `servicebus.config.json`. Nothing else goes in: `local.settings.json` holds local values
//! and secrets, `target/` is build output.
//!
//! The binary is built by `cargo-zigbuild`, which links with Zig against the glibc version
//! named in the target (`x86_64-unknown-linux-gnu.2.28`). Both tools come from PyPI, installed
//! by `scripts/install-package-tools.sh` into `.tools/zig-venv`.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use serde::Deserialize;
use zip::write::SimpleFileOptions;

use crate::app_config::{AppError, HostSettings};
use crate::topology::Topology;

/// The target the package is linked for: x86-64 Linux, glibc 2.28 (Debian 10, the oldest base
/// of the Functions Linux images).
pub const DEFAULT_TARGET: &str = "x86_64-unknown-linux-gnu.2.28";
/// Where the project's script installs `cargo-zigbuild` and Zig, relative to the app root.
pub const TOOLS_DIR: &str = ".tools/zig-venv/bin";
/// The script that installs them, relative to the app root.
pub const INSTALL_SCRIPT: &str = "scripts/install-package-tools.sh";
/// The topology file the package carries.
pub const TOPOLOGY_FILE: &str = "servicebus.config.json";
/// The Cargo binary that serves the functions.
const CARGO_BIN: &str = "docflow";

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// host.json is missing or invalid.
    #[error(transparent)]
    App(#[from] AppError),
    /// The app's files are not a deployable app.
    #[error("{0}")]
    Layout(String),
    /// The build tools are missing or the build failed.
    #[error("build: {0}")]
    Build(String),
    /// The binary needs a newer glibc than the target has.
    #[error("{binary}: needs GLIBC_{needed}, newer than the target's glibc {target}")]
    Glibc {
        /// The binary checked.
        binary: PathBuf,
        /// The newest glibc symbol version it needs.
        needed: GlibcVersion,
        /// The target's glibc.
        target: GlibcVersion,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A glibc symbol version, as in `GLIBC_2.28`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub u32, pub u32, pub u32);

impl GlibcVersion {
    /// The glibc a zigbuild target names (`x86_64-unknown-linux-gnu.2.28` → 2.28).
    pub fn of_target(target: &str) -> Option<Self> {
        let (triple, version) = target.split_once(".")?;
        triple.ends_with("-gnu").then_some(())?;
        version.parse().ok()
    }
}

impl FromStr for GlibcVersion {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().map_err(|_| ()));
        let major = parts.next().ok_or(())??;
        let minor = parts.next().ok_or(())??;
        let patch = parts.next().transpose()?.unwrap_or(0);
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Self(major, minor, patch))
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.2 {
            0 => write!(f, "{}.{}", self.0, self.1),
            patch => write!(f, "{}.{}.{patch}", self.0, self.1),
        }
    }
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its path in the zip (forward slashes).
    pub name: String,
    /// Where it is read from.
    pub source: PathBuf,
}

/// The app's files, as the package carries them.
#[derive(Debug, Clone)]
pub struct AppFiles {
    /// The binary's path in the zip: `customHandler.description.defaultExecutablePath`.
    pub executable: String,
    /// host.json, the topology and every function folder's function.json.
    pub entries: Vec<Entry>,
}

/// Reads the app at `root`: host.json's executable, the topology, the function folders. Each
/// file is checked to parse, so that a broken app is refused here rather than on Azure.
pub fn app_files(root: &Path) -> Result<AppFiles, PackageError> {
    let host = HostSettings::load(root)?;
    let executable = zip_path(&host.executable).ok_or_else(|| {
        PackageError::Layout(format!(
            "host.json: $.customHandler.description.defaultExecutablePath: {:?} is not a \
             relative path inside the app; the package puts the binary there",
            host.executable
        ))
    })?;
    let topology = root.join(TOPOLOGY_FILE);
    if !topology.is_file() {
        return Err(PackageError::Layout(format!(
            "{TOPOLOGY_FILE}: missing: the package carries the Service Bus topology the app \
             runs against"
        )));
    }
    Topology::load(&topology).map_err(|e| PackageError::Layout(e.to_string()))?;
    let mut entries = vec![
        Entry {
            name: "host.json".into(),
            source: root.join("host.json"),
        },
        Entry {
            name: TOPOLOGY_FILE.into(),
            source: topology,
        },
    ];
    let mut functions: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .map_err(io_error(root))?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.path().join("function.json"))
        })
        .collect();
    if functions.is_empty() {
        return Err(PackageError::Layout(format!(
            "{}: no function folders (folders with a function.json)",
            root.display()
        )));
    }
    functions.sort();
    for (name, source) in functions {
        let text = std::fs::read_to_string(&source).map_err(io_error(&source))?;
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
            PackageError::Layout(format!(
                "{name}/function.json: $ (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        entries.push(Entry {
            name: format!("{name}/function.json"),
            source,
        });
    }
    if entries.iter().any(|e| e.name == executable) {
        return Err(PackageError::Layout(format!(
            "host.json: $.customHandler.description.defaultExecutablePath: {executable:?} \
             collides with an app file"
        )));
    }
    Ok(AppFiles {
        executable,
        entries,
    })
}

/// `path` as a zip entry name, if it is relative and stays inside the app.
fn zip_path(path: &str) -> Option<String> {
    let parts: Vec<String> = Path::new(path)
        .components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(part) => part.to_str().map(str::to_string),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The newest `GLIBC_` symbol version in `objdump -T` output.
pub fn newest_glibc(objdump: &str) -> Option<GlibcVersion> {
    objdump
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| v.parse().ok())
        .max()
}

/// The newest glibc symbol version `binary` needs (`None`: no versioned glibc symbol, e.g. a
/// static binary), read with `objdump -T`.
pub fn glibc_needed(binary: &Path) -> Result<Option<GlibcVersion>, PackageError> {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PackageError::Build(format!("cannot run objdump (binutils): {e}")))?;
    if !output.status.success() {
        return Err(PackageError::Build(format!(
            "objdump -T {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(newest_glibc(&String::from_utf8_lossy(&output.stdout)))
}

/// Writes the zip: the binary at `files.executable` (mode 0755), then every entry (0644).
/// Files are streamed into the archive; the zip appears at `out` only once complete.
pub fn write_zip(files: &AppFiles, binary: &Path, out: &Path) -> Result<Vec<String>, PackageError> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let partial = out.with_extension("zip.partial");
    let written = write_entries(files, binary, &partial);
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let names = written?;
    std::fs::rename(&partial, out).map_err(io_error(out))?;
    Ok(names)
}

fn write_entries(
    files: &AppFiles,
    binary: &Path,
    partial: &Path,
) -> Result<Vec<String>, PackageError> {
    let zip_error = |e: zip::result::ZipError| PackageError::Io {
        path: partial.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let mut zip = zip::ZipWriter::new(File::create(partial).map_err(io_error(partial))?);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut names = Vec::new();
    let all = std::iter::once((files.executable.as_str(), binary, 0o755)).chain(
        files
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.source.as_path(), 0o644)),
    );
    for (name, source, mode) in all {
        let mut input = File::open(source).map_err(io_error(source))?;
        zip.start_file(name, options.unix_permissions(mode))
            .map_err(zip_error)?;
        std::io::copy(&mut input, &mut zip).map_err(io_error(source))?;
        names.push(name.to_string());
    }
    zip.finish()
        .map_err(zip_error)?
        .sync_all()
        .map_err(io_error(partial))?;
    Ok(names)
}

/// How to build the binary.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The app root, which is also the Cargo project.
    pub root: PathBuf,
    /// The Cargo profile (`release` for a deployment).
    pub profile: String,
    /// The zigbuild target, glibc version included.
    pub target: String,
}

/// One line of Cargo's `--message-format=json` output; only built artifacts matter.
#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    target: Option<CargoTarget>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct CargoTarget {
    name: String,
}

/// Builds the docflow binary for `options.target` with cargo-zigbuild and returns its path.
/// The tools are taken from the project's `.tools`, then from `PATH`; when neither has them,
/// the project's install script is run first.
pub fn build_binary(options: &BuildOptions) -> Result<PathBuf, PackageError> {
    let tools = zigbuild_tools(&options.root)?;
    let mut path = OsString::from(&tools);
    if let Some(current) = std::env::var_os("PATH") {
        path.push(":");
        path.push(current);
    }
    let zigbuild = tools.join("cargo-zigbuild");
    let zigbuild = if zigbuild.is_file() {
        zigbuild
    } else {
        PathBuf::from("cargo-zigbuild")
    };
    let output = Command::new(&zigbuild)
        .arg("zigbuild")
        .arg("--locked")
        .arg("--manifest-path")
        .arg(options.root.join("Cargo.toml"))
        .args(["--profile", &options.profile])
        .args(["--target", &options.target])
        .args(["--bin", CARGO_BIN])
        // What runs on Azure is `docflow serve`: no embedded broker, no local host.
        .arg("--no-default-features")
        // Symbols stay for backtraces; the debug info of the release profile (about three
        // quarters of the binary) stays home.
        .arg("--config")
        .arg(format!("profile.{}.strip=\"debuginfo\"", options.profile))
        .arg("--message-format=json-render-diagnostics")
        .env("PATH", path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| PackageError::Build(format!("cannot run {}: {e}", zigbuild.display())))?;
    if !output.status.success() {
        return Err(PackageError::Build(format!(
            "cargo zigbuild --target {} failed ({}); its errors are above",
            options.target, output.status
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<CargoMessage>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter(|m| m.target.as_ref().is_some_and(|t| t.name == CARGO_BIN))
        .find_map(|m| m.executable)
        .ok_or_else(|| {
            PackageError::Build(format!(
                "cargo zigbuild reported no `{CARGO_BIN}` executable"
            ))
        })
}

/// The folder to put first on `PATH` for cargo-zigbuild and Zig (`python3 -m ziglang`).
fn zigbuild_tools(root: &Path) -> Result<PathBuf, PackageError> {
    // Absolute: build scripts run the compiler wrappers from their own folders.
    let root = std::path::absolute(root).map_err(io_error(root))?;
    let local = root.join(TOOLS_DIR);
    if local.join("cargo-zigbuild").is_file() {
        return Ok(local);
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join("cargo-zigbuild").is_file()));
    if on_path {
        return Ok(local);
    }
    let script = root.join(INSTALL_SCRIPT);
    if !script.is_file() {
        return Err(PackageError::Build(
            "cargo-zigbuild not found: install it and Zig (`pip install cargo-zigbuild ziglang`)"
                .into(),
        ));
    }
    eprintln!("installing cargo-zigbuild and Zig with {INSTALL_SCRIPT}...");
    let status = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| PackageError::Build(format!("cannot run {INSTALL_SCRIPT}: {e}")))?;
    if !status.success() || !local.join("cargo-zigbuild").is_file() {
        return Err(PackageError::Build(format!(
            "{INSTALL_SCRIPT} failed ({status})"
        )));
    }
    Ok(local)
}

/// What `docflow package` does.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// How to build.
    pub build: BuildOptions,
    /// The zip to write.
    pub out: PathBuf,
}

/// What was packaged.
#[derive(Debug, Clone)]
pub struct PackageReport {
    /// The zip.
    pub out: PathBuf,
    /// Its entries, in order.
    pub entries: Vec<String>,
    /// The binary packaged.
    pub binary: PathBuf,
    /// The newest glibc version it needs.
    pub glibc_needed: Option<GlibcVersion>,
}

/// Builds the binary, checks that it runs on the target's glibc, writes the zip.
pub fn package(options: &PackageOptions) -> Result<PackageReport, PackageError> {
    let files = app_files(&options.build.root)?;
    let binary = build_binary(&options.build)?;
    let glibc_needed = glibc_needed(&binary)?;
    if let (Some(needed), Some(target)) =
        (glibc_needed, GlibcVersion::of_target(&options.build.target))
        && needed > target
    {
        return Err(PackageError::Glibc {
            binary,
            needed,
            target,
        });
    }
    let entries = write_zip(&files, &binary, &options.out)?;
    Ok(PackageReport {
        out: options.out.clone(),
        entries,
        binary,
        glibc_needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_parse_and_order() {
        assert_eq!("2.28".parse(), Ok(GlibcVersion(2, 28, 0)));
        assert_eq!("2.3.4".parse(), Ok(GlibcVersion(2, 3, 4)));
        assert!("2".parse::<GlibcVersion>().is_err());
        assert!("2.x".parse::<GlibcVersion>().is_err());
        assert!(GlibcVersion(2, 3, 4) < GlibcVersion(2, 28, 0));
        assert_eq!(GlibcVersion(2, 28, 0).to_string(), "2.28");
        assert_eq!(
            GlibcVersion::of_target(DEFAULT_TARGET),
            Some(GlibcVersion(2, 28, 0))
        );
        assert_eq!(GlibcVersion::of_target("x86_64-unknown-linux-musl"), None);
    }

    #[test]
    fn newest_glibc_reads_objdump_dynamic_symbols() {
        let objdump = "\
0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.2.5) memcpy
0000000000000000      DF *UND*  0000000000000000  GLIBC_2.28  statx
0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.17) clock_gettime
0000000000000000  w   D  *UND*  0000000000000000  GLIBC_PRIVATE __x
";
        assert_eq!(newest_glibc(objdump), Some(GlibcVersion(2, 28, 0)));
        assert_eq!(newest_glibc("no symbols"), None);
    }

    #[test]
    fn executable_paths_stay_inside_the_app() {
        assert_eq!(zip_path("docflow").as_deref(), Some("docflow"));
        assert_eq!(zip_path("./bin/docflow").as_deref(), Some("bin/docflow"));
        assert_eq!(zip_path("../docflow"), None);
        assert_eq!(zip_path("/usr/bin/docflow"), None);
        assert_eq!(zip_path(""), None);
    }

    fn app(dir: &Path, executable: &str) {
        std::fs::write(
            dir.join("host.json"),
            format!(
                r#"{{"version":"2.0","customHandler":{{"description":{{"defaultExecutablePath":"{executable}"}}}}}}"#
            ),
        )
        .unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(TOPOLOGY_FILE),
            dir.join(TOPOLOGY_FILE),
        )
        .unwrap();
        for name in ["B", "A"] {
            std::fs::create_dir(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("function.json"), "{}").unwrap();
        }
        std::fs::create_dir(dir.join("notes")).unwrap();
        std::fs::write(dir.join("local.settings.json"), "{}").unwrap();
    }

    #[test]
    fn app_files_are_host_json_topology_and_function_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "docflow");
        let files = app_files(dir.path()).unwrap();
        assert_eq!(files.executable, "docflow");
        let names: Vec<_> = files.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "host.json",
                TOPOLOGY_FILE,
                "A/function.json",
                "B/function.json"
            ]
        );
    }

    #[test]
    fn broken_apps_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "../docflow");
        let e = app_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("defaultExecutablePath"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "docflow");
        std::fs::write(dir.path().join("A/function.json"), "{").unwrap();
        let e = app_files(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("A/function.json: $"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "docflow");
        std::fs::remove_file(dir.path().join(TOPOLOGY_FILE)).unwrap();
        let e = app_files(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with(TOPOLOGY_FILE), "{e}");
    }

    #[test]
    fn the_zip_holds_the_binary_executable_and_the_app_files() {
        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "docflow");
        let binary = dir.path().join("built");
        std::fs::write(&binary, b"\x7fELF binary").unwrap();
        let files = app_files(dir.path()).unwrap();
        let out = dir.path().join("dist/app.zip");
        let names = write_zip(&files, &binary, &out).unwrap();
        assert_eq!(names[0], "docflow");
        assert!(!out.with_extension("zip.partial").exists());

        let mut zip = zip::ZipArchive::new(File::open(&out).unwrap()).unwrap();
        assert_eq!(zip.len(), 5);
        let mut bin = zip.by_name("docflow").unwrap();
        assert_eq!(bin.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut bin, &mut content).unwrap();
        assert_eq!(content, b"\x7fELF binary");
        drop(bin);
        let host = zip.by_name("host.json").unwrap();
        assert_eq!(host.unix_mode().map(|m| m & 0o777), Some(0o644));
    }
}
