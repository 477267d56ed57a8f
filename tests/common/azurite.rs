//! Azurite's blob service for tests: installed by `scripts/install-azurite.sh` (`.ci/run`
//! runs it), started here on a free port with in-memory storage, stopped when dropped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use docflow::blob::connection::{DEV_ACCOUNT, DEV_KEY};

use super::{Running, free_port};

/// A running Azurite.
pub struct Azurite {
    _process: Running,
    /// Its blob port.
    pub port: u16,
}

impl Azurite {
    /// Starts it.
    pub fn start() -> Self {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".tools/azurite/node_modules/.bin/azurite-blob");
        assert!(
            bin.is_file(),
            "Azurite is not installed: run scripts/install-azurite.sh (.ci/run does)"
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
            ])
            .arg("--silent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let process = Running(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            _process: process,
            port,
        }
    }

    /// Its connection string (the well-known development account).
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
            self.port
        )
    }
}
