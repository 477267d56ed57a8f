//! Every `sh` block of the README runs verbatim, in order, in a fresh copy of the repository,
//! as a newcomer would paste them. `cargo run [-q] --release -- ARGS` runs the binary this
//! test was built with (a shim `cargo` on `PATH`), so no release build is needed. A block can
//! carry a note on the line before it:
//! - `<!-- readme-test: skip (why) -->`: not run (the test command itself, Azure, benchmarks);
//! - `<!-- readme-test: dev -->`: `docflow dev`, which runs until stopped: started in the
//!   background and stopped before the next block that does not need it;
//! - `<!-- readme-test: with-dev -->`: needs that `docflow dev` running (started if it is not).
//!
//! Each block runs in `bash -euo pipefail` in its own process group, killed after the block, so
//! servers a block leaves behind do not outlive it.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One runnable block.
struct Block {
    line: usize,
    note: Option<String>,
    code: String,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut note = None;
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix("<!-- readme-test:") {
            note = Some(rest.trim_end_matches("-->").trim().to_string());
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let mut code = String::new();
            for (_, l) in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                code.push_str(l);
                code.push('\n');
            }
            if lang.trim() == "sh" {
                out.push(Block {
                    line: n + 1,
                    note: note.take(),
                    code,
                });
            }
            note = None;
        } else if !line.trim().is_empty() {
            note = None;
        }
    }
    out
}

/// A copy of the files git tracks (plus untracked, unignored ones), like a fresh clone.
fn fresh_copy() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
        ])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let copy = tempfile::tempdir().unwrap();
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = repo.join(name);
        if !from.is_file() {
            continue;
        }
        let to = copy.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    copy
}

/// A `cargo` that runs the built docflow for `cargo run … -- ARGS` and the real cargo otherwise.
fn cargo_shim(dir: &Path) -> PathBuf {
    let bin = dir.join("shim");
    std::fs::create_dir_all(&bin).unwrap();
    let real = which("cargo");
    let script = format!(
        "#!/usr/bin/env bash\nif [ \"$1\" = run ]; then\n  while [ $# -gt 0 ] && [ \"$1\" != -- ]; do shift; done\n  shift\n  exec '{}' \"$@\"\nfi\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_docflow"),
        real.display()
    );
    let path = bin.join("cargo");
    std::fs::write(&path, script).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    bin
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

fn shell(code: &str, cwd: &Path, path: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", code])
        .current_dir(cwd)
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .process_group(0);
    command
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_shell_block_of_the_readme_runs() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 10, "found {} blocks", blocks.len());
    let copy = fresh_copy();
    let scratch = tempfile::tempdir().unwrap();
    let shim = cargo_shim(scratch.path());
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let dev_code = blocks
        .iter()
        .find(|b| b.note.as_deref() == Some("dev"))
        .map(|b| b.code.clone())
        .expect("the README has a docflow dev block");
    let mut dev: Option<Child> = None;
    let mut ran = 0;
    for block in &blocks {
        let note = block.note.as_deref().unwrap_or("");
        if note.starts_with("skip") {
            continue;
        }
        let needs_dev = note == "dev" || note == "with-dev";
        if !needs_dev && let Some(mut d) = dev.take() {
            kill_group(&mut d);
        }
        if needs_dev && dev.is_none() {
            let child = shell(&dev_code, copy.path(), &path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            dev = Some(child);
            wait_for_port(7071, "docflow dev");
        }
        if note == "dev" {
            ran += 1;
            continue;
        }
        // Output goes to files: a server a block starts in the background keeps writing.
        let out_file = scratch.path().join(format!("block-{}.out", block.line));
        let err_file = scratch.path().join(format!("block-{}.err", block.line));
        let mut child = shell(&block.code, copy.path(), &path)
            .stdout(std::fs::File::create(&out_file).unwrap())
            .stderr(std::fs::File::create(&err_file).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                panic!(
                    "README block at line {} did not finish:\n{}",
                    block.line, block.code
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        kill_group(&mut child);
        let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
        let tail = |s: &str| {
            s.chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        assert!(
            status.success(),
            "README block at line {} failed ({status}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
            block.line,
            block.code,
            tail(&stdout),
            tail(&stderr)
        );
        ran += 1;
    }
    if let Some(mut d) = dev.take() {
        kill_group(&mut d);
    }
    assert!(ran >= 8, "ran {ran} blocks");
}
