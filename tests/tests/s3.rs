//! A warehouse on S3: the demo project moved to an `s3://` location on a local S3 server
//! (moto, from PyPI; `scripts/test` installs it), with its 1C export read from the bucket by a
//! glob, syncs, builds and answers queries exactly like the local one, a second sync adds
//! nothing, and the tables are Delta logs in the bucket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dealhouse_tests::http::{free_port, http, send};
use dealhouse_tests::{dealhouse, dealhouse_ok, export_env, scratch, table_counts};

const BUCKET: &str = "dealhouse-e2e";

/// `moto_server` on a free port, killed on drop.
struct S3Server(Child, String);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_s3() -> S3Server {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto_server ({e}): run scripts/test, which installs it (pip install 'moto[server]')")
        });
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not listen on {addr} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    S3Server(child, addr)
}

/// Uploads `bytes` as `key` (moto accepts unsigned requests).
fn put_object(addr: &str, key: &str, bytes: &[u8]) {
    let answer = send(addr, "PUT", &format!("/{BUCKET}/{key}"), &[], bytes);
    assert_eq!(answer.status, 200, "upload of {key} failed: {}", answer.text());
}

fn count(project: &Path, sql: &str) -> i64 {
    let out = dealhouse_ok(&["-C", project.to_str().unwrap(), "query", "--format", "csv", sql]);
    out.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("no count in {out:?}"))
}

fn point_at(project: &Path, location: &str, endpoint: &str) {
    let file = project.join("dealhouse.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("location = \"warehouse\"\n"), "the demo's config changed shape:\n{text}");
    let text = text.replace(
        "location = \"warehouse\"\n",
        &format!(
            "location = \"{location}\"\n\n[warehouse.storage_options]\naws_endpoint = \"http://{endpoint}\"\n\
             aws_region = \"us-east-1\"\naws_allow_http = \"true\"\nretry_timeout = \"5s\"\n"
        ),
    );
    std::fs::write(file, text).unwrap();
}

#[test]
fn the_demo_runs_on_an_s3_warehouse() {
    let s3 = start_s3();
    export_env("AWS_ACCESS_KEY_ID", "dealhouse-test");
    export_env("AWS_SECRET_ACCESS_KEY", "dealhouse-test-secret");
    let (status, body) = http(&s3.1, "PUT", &format!("/{BUCKET}"), None, &[]);
    assert_eq!(status, 200, "bucket not created: {body}");

    // The same company twice: once on local disk, once on S3.
    let dir = scratch();
    let local = dir.path().join("local");
    let remote = dir.path().join("remote");
    for project in [&local, &remote] {
        dealhouse_ok(&["demo", project.to_str().unwrap(), "--seed", "11", "--weeks", "3", "--no-serve"]);
    }
    point_at(&remote, &format!("s3://{BUCKET}/acme/wh"), &s3.1);
    std::fs::remove_dir_all(remote.join("warehouse")).unwrap();
    // The 1C export lives in the bucket too, found by a glob; the local copy is gone.
    let csv = remote.join("sources/accounting_1c.csv");
    put_object(&s3.1, "acme/exports/accounting_1c.csv", &std::fs::read(&csv).unwrap());
    std::fs::remove_file(&csv).unwrap();
    let file = remote.join("dealhouse.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("path = \"sources/accounting_1c.csv\""), "the demo's config changed shape");
    let text = text.replace(
        "path = \"sources/accounting_1c.csv\"",
        &format!("path = \"s3://{BUCKET}/acme/exports/accounting_*.csv\""),
    ) + &format!(
        "\n[sources.accounting.storage_options]\naws_endpoint = \"http://{}\"\naws_region = \"us-east-1\"\n\
         aws_allow_http = \"true\"\n",
        s3.1
    );
    std::fs::write(&file, text).unwrap();
    let p = remote.to_str().unwrap();
    dealhouse_ok(&["-C", p, "sync"]);
    dealhouse_ok(&["-C", p, "build"]);

    let deals = count(&remote, "select count(*) from deals");
    assert!(deals > 3 * 400, "3 weeks of demo deals expected, got {deals}");
    let on_s3 = table_counts(&remote);
    assert_eq!(on_s3, table_counts(&local), "the S3 warehouse must hold exactly what the local one holds");
    assert!(on_s3.iter().any(|(t, _)| t == "mart_funnel_monthly"), "models were built on S3: {on_s3:?}");

    // The tables are Delta logs in the bucket, not files on this machine.
    let (status, listing) =
        http(&s3.1, "GET", &format!("/{BUCKET}?list-type=2&prefix=acme/wh/deals/_delta_log/"), None, &[]);
    assert_eq!(status, 200, "{listing}");
    assert!(listing.contains("acme/wh/deals/_delta_log/00000000000000000000.json"), "{listing}");
    assert!(!remote.join("warehouse").exists(), "nothing is written to the local folder");

    // Idempotent on S3 too: a second sync adds no row anywhere.
    dealhouse_ok(&["-C", p, "sync"]);
    assert_eq!(table_counts(&remote), on_s3);
    let status_out = dealhouse_ok(&["-C", p, "status"]);
    assert!(status_out.contains("deals"), "{status_out}");

    // A bucket that does not exist: a clear error naming the location, exit non-zero.
    point_at(&local, "s3://no-such-bucket/wh", &s3.1);
    let out = dealhouse(&["-C", local.to_str().unwrap(), "sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sync into a missing bucket must fail");
    assert!(stderr.contains("no-such-bucket"), "the error names the bucket: {stderr}");
    assert!(!stderr.contains("dealhouse-test-secret"), "secrets never printed: {stderr}");
}
