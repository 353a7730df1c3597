//! The demo pipeline's speed goal: `dealhouse demo --weeks 156` (three years of a 77-branch
//! company: generate sources, sync them, build every model and run its data tests) in well under a
//! minute in release mode. Then an unchanged re-sync and a full rebuild, timed separately.
//!
//! `cargo bench --bench demo_pipeline` (release profile). `DEALHOUSE_BENCH_WEEKS` changes the size;
//! `DEALHOUSE_BENCH_GOAL_SECS` the goal for the demo step (default 60). Exits 1 when the goal is missed.

use std::process::Command;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dealhouse"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("cannot start the dealhouse binary");
    let took = started.elapsed();
    if !out.status.success() {
        eprintln!(
            "dealhouse {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(2);
    }
    took
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than ours means "not this bench".
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"demo_pipeline".contains(a.as_str())) {
        return;
    }
    let weeks: u32 = env_or("DEALHOUSE_BENCH_WEEKS", 156);
    let goal = Duration::from_secs(env_or("DEALHOUSE_BENCH_GOAL_SECS", 60));
    let tmp = tempfile::Builder::new().prefix("dealhouse-bench-").tempdir().expect("temp dir");
    let dir = tmp.path().join("demo");
    let d = dir.to_str().expect("utf-8 temp path");
    let weeks_arg = weeks.to_string();

    let demo = run(&["demo", d, "--seed", "7", "--weeks", &weeks_arg, "--as-of", "2026-11-23", "--no-serve"]);
    let resync = run(&["-C", d, "sync"]);
    let rebuild = run(&["-C", d, "build", "--full-refresh"]);
    let deals = Command::new(env!("CARGO_BIN_EXE_dealhouse"))
        .args(["-C", d, "query", "--format", "csv", "select count(*) from deals"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap_or("?").to_string())
        .unwrap_or_else(|_| "?".into());

    println!("demo pipeline, {weeks} weeks, {deals} deals");
    println!("  demo (generate + sync + build + tests)  {:>8.2} s   goal < {} s", demo.as_secs_f64(), goal.as_secs());
    println!("  re-sync, nothing changed upstream        {:>8.2} s", resync.as_secs_f64());
    println!("  build --full-refresh                     {:>8.2} s", rebuild.as_secs_f64());
    if demo >= goal {
        println!("  GOAL MISSED");
        std::process::exit(1);
    }
    println!("  goal met");
}
