//! Helpers for the end-to-end tests in `tests/tests/`: the `dealhouse` binary, scratch
//! directories, and running commands with their output captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of the `dealhouse` binary, built once per test process with the same profile and target
/// directory as the tests themselves.
pub fn dealhouse_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let workspace =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf();
        let status = Command::new(&cargo)
            .current_dir(&workspace)
            .args(["build", "--quiet", "-p", "dealhouse", "--bin", "dealhouse"])
            .status()
            .expect("cannot run cargo to build the dealhouse binary");
        assert!(status.success(), "building the dealhouse binary failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
        let target = if target.is_absolute() { target } else { workspace.join(target) };
        let bin = target.join("debug").join("dealhouse");
        assert!(bin.exists(), "built binary not found at {}", bin.display());
        bin
    })
}

/// Runs `dealhouse ARGS` and returns its output.
pub fn dealhouse(args: &[&str]) -> Output {
    Command::new(dealhouse_bin()).args(args).env("NO_COLOR", "1").output().expect("cannot start dealhouse")
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
