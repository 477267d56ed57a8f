//! `docflow package` builds the deployable zip: the binary named as host.json expects, linked
//! for glibc 2.28 (no `GLIBC_` symbol above it), host.json, every function folder, the
//! topology, and nothing else; the packaged binary starts from the unzipped app and answers
//! `GET /` as the Functions host probes it.
//!
//! The build runs with the `dev` profile to keep the suite's time down: the link step, the
//! target and the packaging are the ones `docflow package` uses for `release`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET_GLIBC: (u32, u32) = (2, 28);

fn app_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every folder of the app root with a function.json.
fn function_folders() -> BTreeSet<String> {
    std::fs::read_dir(app_root())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The newest `GLIBC_x.y[.z]` version `objdump -T` lists for `binary`.
fn newest_glibc(binary: &Path) -> (u32, u32) {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .unwrap();
    assert!(output.status.success(), "objdump -T failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let versions: Vec<(u32, u32)> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    assert!(
        !versions.is_empty(),
        "the binary should link glibc dynamically:\n{text}"
    );
    versions.into_iter().max().unwrap()
}

fn get_root(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn the_package_holds_the_app_and_a_binary_that_runs_on_glibc_2_28() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist/docflow-app.zip");
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .arg("package")
        .arg("--out")
        .arg(&out)
        .args(["--profile", "dev"])
        .current_dir(app_root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "docflow package failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("target x86_64-unknown-linux-gnu.2.28"),
        "{stdout}"
    );

    // Exactly the app: binary, host.json, topology, function folders.
    let mut zip = zip::ZipArchive::new(File::open(&out).unwrap()).unwrap();
    let names: BTreeSet<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    let mut expected: BTreeSet<String> = ["docflow", "host.json", "servicebus.config.json"]
        .map(str::to_string)
        .into();
    let functions = function_folders();
    assert!(functions.len() >= 8, "{functions:?}");
    expected.extend(functions.iter().map(|f| format!("{f}/function.json")));
    assert_eq!(names, expected);
    assert!(
        !names
            .iter()
            .any(|n| n.contains("local.settings") || n.starts_with("target/"))
    );

    // Unzip as Azure does into the app folder, modes included.
    let site = dir.path().join("wwwroot");
    zip.extract(&site).unwrap();
    let binary = site.join("docflow");
    let mode = std::fs::metadata(&binary).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111,
        0o111,
        "the binary must be executable"
    );
    let host: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("host.json")).unwrap()).unwrap();
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "docflow"
    );

    let glibc = newest_glibc(&binary);
    assert!(
        glibc <= TARGET_GLIBC,
        "the binary needs GLIBC_{}.{}, newer than 2.28",
        glibc.0,
        glibc.1
    );

    // What is deployed serves; the local stand-ins (broker, local host) are not in it.
    let help = Command::new(&binary).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("serve"), "{help}");
    for local in ["dev", "broker", "run", "bench"] {
        assert!(
            !help
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{local} "))),
            "the packaged binary has `{local}`:\n{help}"
        );
    }

    // The packaged binary starts in the unzipped app and answers the host's probe.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&binary)
        .arg("serve")
        .current_dir(&site)
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("DOCFLOW_BLOB_DIR", dir.path().join("blobs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        if let Some(response) = get_root(port) {
            break response;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the packaged binary exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the packaged binary never answered GET /"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
