//! Every `sh` block of the README and of the reference pages in `docs/` runs verbatim, in
//! order, in a fresh copy of the repository, as a newcomer would paste them: first the
//! README's, then each page's in the order of [`PAGES`]. `cargo run [-q] --release -- ARGS`
//! runs the binary this test was built with (a shim `cargo` on `PATH`), so no release build is
//! needed. A block can carry a note on the line before it:
//! - `<!-- readme-test: skip (why) -->`: not run (the test command itself, Azure, benchmarks);
//! - `<!-- readme-test: dev -->`: `docflow dev`, which runs until stopped: started in the
//!   background and stopped before the next block that does not need it;
//! - `<!-- readme-test: with-dev -->`: needs that `docflow dev` running (started, with the
//!   first `dev` block's command, if it is not).
//!
//! Each block runs in `bash -euo pipefail` in its own process group, killed after the block, so
//! servers a block leaves behind do not outlive it. A failure names the file and line of the
//! block.
//!
//! Two more checks keep the pages honest: every Markdown page under `docs/` with `sh` blocks
//! must be in [`PAGES`] (a new page cannot be forgotten), and every relative link in the
//! README and the pages (`[text](path)` or `[text](path#anchor)`) must name an existing file,
//! and an existing heading when it has an anchor into a Markdown page.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pages whose `sh` blocks run, in this order, paths from the repository root. The README
/// comes first: its `dev` block starts `docflow dev` and its `with-dev` block submits a
/// document. `docs/api.md` follows, so its `with-dev` blocks find that same `docflow dev`
/// running. `docs/local.md` stops it (`docflow serve` and `docflow broker` need its ports);
/// `docs/operations.md`'s `with-dev` block (`docflow dlq`) starts it again. Pages without `sh`
/// blocks are listed too, in reading order, so the list is the table of contents.
const PAGES: &[&str] = &[
    "README.md",
    "docs/api.md",
    "docs/pipeline.md",
    "docs/local.md",
    "docs/servicebus-sdks.md",
    "docs/configuration.md",
    "docs/ai.md",
    "docs/operations.md",
    "docs/azure.md",
    "docs/hardening.md",
];

/// One runnable block.
struct Block {
    file: String,
    line: usize,
    note: Option<String>,
    code: String,
}

impl Block {
    /// Where the block is, for messages: `docs/api.md:42`.
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut note = None;
    let mut lines = text.lines().enumerate();
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
                    file: file.to_string(),
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

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown pages under `docs/`, as paths from the repository root.
fn docs_pages() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo().join("docs"), &mut found);
    let mut pages: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    pages.sort();
    pages
}

/// A copy of the files git tracks (plus untracked, unignored ones), like a fresh clone on which
/// the test tools were installed.
fn fresh_copy() -> tempfile::TempDir {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(listed.status.success());
    let copy = tempfile::tempdir().unwrap();
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = repo().join(name);
        if !from.is_file() {
            continue;
        }
        let to = copy.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    // The tools the README's test command installs first (`scripts/install-test-tools.sh`):
    // a reader runs the pages after it, so the pages find them where it put them.
    let tools = repo().join(".tools");
    if tools.is_dir() {
        std::os::unix::fs::symlink(&tools, copy.path().join(".tools")).unwrap();
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
fn every_page_with_shell_blocks_is_listed() {
    for page in PAGES {
        assert!(
            repo().join(page).is_file(),
            "{page} is in PAGES (tests/readme.rs) but does not exist"
        );
    }
    for page in docs_pages() {
        let text = std::fs::read_to_string(repo().join(&page)).unwrap();
        let count = blocks(&page, &text).len();
        assert!(
            count == 0 || PAGES.contains(&page.as_str()),
            "{page} has {count} `sh` block(s) but is not in PAGES (tests/readme.rs): add it \
             where its `dev`/`with-dev` blocks belong"
        );
    }
}

#[test]
fn every_shell_block_of_the_readme_and_the_docs_runs() {
    let copy = fresh_copy();
    let blocks: Vec<Block> = PAGES
        .iter()
        .flat_map(|page| {
            let text = std::fs::read_to_string(copy.path().join(page))
                .unwrap_or_else(|e| panic!("{page}: {e}"));
            blocks(page, &text)
        })
        .collect();
    assert!(blocks.len() >= 10, "found {} blocks", blocks.len());
    let scratch = tempfile::tempdir().unwrap();
    let shim = cargo_shim(scratch.path());
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let dev_code = blocks
        .iter()
        .find(|b| b.note.as_deref() == Some("dev"))
        .map(|b| b.code.clone())
        .expect("the README or a page in PAGES has a docflow dev block");
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
            wait_for_port(
                7071,
                &format!("docflow dev (for the block at {})", block.at()),
            );
        }
        if note == "dev" {
            ran += 1;
            continue;
        }
        // Output goes to files: a server a block starts in the background keeps writing.
        let name = format!("block-{}-{}", block.file.replace('/', "-"), block.line);
        let out_file = scratch.path().join(format!("{name}.out"));
        let err_file = scratch.path().join(format!("{name}.err"));
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
                    "the block at {} did not finish:\n{}",
                    block.at(),
                    block.code
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
            "the block at {} failed ({status}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
            block.at(),
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

/// A Markdown page's text outside fenced code blocks, with line numbers (from 1); a fence
/// counts as a blank line, since it ends a paragraph.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push((n + 1, ""));
        } else if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// The anchors GitHub gives a page's headings: lower-cased, punctuation dropped, spaces as
/// hyphens, `-1`, `-2`, … after repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 {
            continue;
        }
        let Some(title) = line[hashes..].strip_prefix(' ') else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a line's inline links and images, `[text](target)`, outside inline code
/// (`in_code`: whether the line starts inside a code span that an earlier line of the same
/// paragraph opened).
fn link_targets(line: &str, in_code: &mut bool) -> Vec<String> {
    if line.trim().is_empty() {
        *in_code = false;
    }
    let mut plain = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i > 0 {
            *in_code = !*in_code;
        }
        if !*in_code {
            plain.push_str(part);
        }
    }
    let mut out = Vec::new();
    let mut rest = plain.as_str();
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        out.push(rest[..end].trim().to_string());
        rest = &rest[end + 1..];
    }
    out
}

#[test]
fn every_relative_link_of_the_readme_and_the_docs_resolves() {
    let mut pages = vec!["README.md".to_string()];
    pages.extend(docs_pages());
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(repo().join(page)).unwrap();
        let dir = repo().join(page).parent().unwrap().to_path_buf();
        let mut in_code = false;
        for (line, content) in prose(&text) {
            for target in link_targets(content, &mut in_code) {
                if target.starts_with("http://")
                    || target.starts_with("https://")
                    || target.starts_with("mailto:")
                {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if file.is_empty() {
                    repo().join(page)
                } else {
                    dir.join(file)
                };
                if !resolved.exists() {
                    broken.push(format!("{page}:{line}: {target}: no such file"));
                    continue;
                }
                let is_markdown = resolved.extension().is_some_and(|e| e == "md");
                if let (Some(anchor), true) = (anchor, is_markdown) {
                    let linked = std::fs::read_to_string(&resolved).unwrap();
                    if !anchors(&linked).contains(anchor) {
                        broken.push(format!("{page}:{line}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut in_code = false;
    let linked: BTreeSet<String> = prose(&readme)
        .into_iter()
        .flat_map(|(_, line)| link_targets(line, &mut in_code))
        .map(|t| t.split('#').next().unwrap_or("").to_string())
        .collect();
    for page in docs_pages() {
        assert!(
            linked.contains(&page),
            "{page} is not linked from the README (add it to its Reference list)"
        );
    }
}
