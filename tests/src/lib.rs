//! Test helpers shared by the end-to-end tests in `tests/tests/` and the integration tests of the
//! crates (`api/tests`, `ingest/tests` dev-depend on this crate):
//!
//! - this module: the `dealhouse` binary, scratch directories, commands with captured output,
//!   a `dealhouse serve` on a free port;
//! - [`project`]: the `[organisation]` block and a scratch project directory;
//! - [`http`]: the one blocking HTTP/1.1 client for servers on loopback;
//! - [`webdriver`]: a headless Chromium driven through chromedriver (fantoccini).

pub mod http;
pub mod project;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// Path of the `dealhouse` binary. The end-to-end tests are targets of the root package, so cargo
/// has built it next to them: the test executable sits in `<target>/<profile>/deps/`, the binary
/// in `<target>/<profile>/`. `DEALHOUSE_BIN` overrides (e.g. to test a release build).
pub fn dealhouse_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("DEALHOUSE_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test executable knows its path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("test executable under <target>/<profile>/deps");
        let bin = profile_dir.join(format!("dealhouse{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.exists(),
            "no dealhouse binary at {}: run the end-to-end tests with `cargo test --workspace` \
             (they are targets of the root package, which builds the binary first)",
            bin.display()
        );
        bin
    })
}

/// Environment variables every later [`dealhouse`] run gets (e.g. S3 credentials), as a shell
/// would export them; the test's own environment is left alone.
static CHILD_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Exports `name=value` to every later `dealhouse` run of this test process.
pub fn export_env(name: &str, value: &str) {
    CHILD_ENV.lock().unwrap_or_else(|e| e.into_inner()).push((name.into(), value.into()));
}

/// Runs `dealhouse ARGS` and returns its output. No colours, and help text wrapped at 100
/// columns whatever the terminal the tests run in (stdin, stdout and stderr are not terminals).
pub fn dealhouse(args: &[&str]) -> Output {
    let env = CHILD_ENV.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Command::new(dealhouse_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("cannot start dealhouse")
}

/// Runs `dealhouse ARGS`, asserting success, and returns stdout.
pub fn dealhouse_ok(args: &[&str]) -> String {
    let out = dealhouse(args);
    assert!(
        out.status.success(),
        "dealhouse {args:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One value from `dealhouse -C PROJECT query`: the first column of the first row, as printed in CSV.
pub fn query_value(project: &str, sql: &str) -> String {
    let out = dealhouse_ok(&["-C", project, "query", "--format", "csv", sql]);
    out.lines().nth(1).unwrap_or_default().split(',').next().unwrap_or_default().trim().to_string()
}

/// A fresh temporary directory, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("dealhouse-e2e-").tempdir().expect("cannot create a temp dir")
}

/// sha256 of every file under `dir`, by relative path, sorted.
pub fn checksums(dir: &Path) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).expect("readable file");
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                out.push((rel, hex::encode(Sha256::digest(&bytes))));
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Counts rows of every table through the CLI, as `table,count` lines.
pub fn table_counts(project: &Path) -> Vec<(String, i64)> {
    let p = project.to_str().expect("utf-8 path");
    let tables = dealhouse_ok(&[
        "-C",
        p,
        "query",
        "--format",
        "csv",
        "select table_name from information_schema.tables where table_schema = 'public' order by table_name",
    ]);
    tables
        .lines()
        .skip(1)
        .map(|t| {
            let out = dealhouse_ok(&["-C", p, "query", "--format", "csv", &format!("select count(*) as n from {t}")]);
            let n = out.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("a count");
            (t.to_string(), n)
        })
        .collect()
}

/// A `dealhouse serve` on a free loopback port (field 1: its `HOST:PORT`), killed on drop.
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `dealhouse -C PROJECT serve` on port 0 and reads the address it prints first.
pub fn serve(project: &str) -> Server {
    let mut child = Command::new(dealhouse_bin())
        .args(["-C", project, "serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("dealhouse serve starts");
    let line = first_line(&mut child);
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server(child, addr)
}

/// Reads a child's stderr up to the first line with an `http://` address (servers print it
/// once listening; warnings such as "PostgreSQL listener not started" may come before it), or
/// the last line read if the stream ends first.
pub fn first_line(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        let mut next = String::new();
        if reader.read_line(&mut next).expect("stderr readable") == 0 {
            break;
        }
        line = next;
        if line.contains("http://") {
            break;
        }
    }
    // Keep draining, so the server never blocks on (or fails writing to) a full or closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    line
}
