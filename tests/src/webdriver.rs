//! A small W3C WebDriver client for the browser tests: starts `chromedriver` on a free loopback
//! port, opens a headless Chromium session and drives it over plain HTTP/JSON (no crate needed:
//! chromedriver is local and speaks HTTP/1.1).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium and chromedriver from Debian's packages (`CHROME_BIN` / `CHROMEDRIVER` override).
/// Panics with the fix when either is missing: the browser tests never skip.
pub fn browser_paths() -> (PathBuf, PathBuf) {
    let chrome = std::env::var_os("CHROME_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    let driver = std::env::var_os("CHROMEDRIVER").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromedriver".into());
    for (p, what) in [(&chrome, "chromium"), (&driver, "chromedriver")] {
        assert!(
            p.exists(),
            "{what} is missing at {}: the dashboard tests drive a real headless Chromium. \
             Run scripts/test (it installs them) or `apt-get install -y chromium chromium-driver`; \
             CHROME_BIN / CHROMEDRIVER point elsewhere",
            p.display()
        );
    }
    (chrome, driver)
}

/// A free loopback port (bound and released; chromedriver takes it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One HTTP/1.1 exchange with `Connection: close`; returns status and body.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(payload.as_bytes())).expect("request written");
    // Read the head, then exactly the body its headers announce: chromedriver keeps connections
    // open whatever the request says, so reading to the end would wait for its idle timeout.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("response head read");
        if n == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    let lower = head.to_ascii_lowercase();
    let length =
        lower.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
    let mut body = vec![];
    if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).expect("response body read");
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut body).expect("response body read");
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A running chromedriver with one headless Chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width`x`height`.
    pub fn start(width: u32, height: u32) -> Self {
        let (chrome, driver_bin) = browser_paths();
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let addr = format!("127.0.0.1:{port}");
        let mut browser = Browser { driver, addr, session: String::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&browser.addr).is_ok() {
                let (_, body) = http(&browser.addr, "GET", "/status", None, &[]);
                if serde_json::from_str::<Value>(&body).is_ok_and(|v| v["value"]["ready"] == true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on {}", browser.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"), "--lang=ru-RU", "--force-device-scale-factor=1",
                    "--no-first-run", "--disable-extensions"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let v = browser.call("POST", "/session", Some(&caps));
        browser.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {v}")).to_string();
        browser
    }

    /// One WebDriver command; returns its `value`, panicking with the driver's error.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = http(&self.addr, method, path, body, &[]);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(status == 200, "{method} {path} -> {status}: {}", v["value"]);
        v["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body.as_ref())
    }

    /// Navigates and waits for the load to finish.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Polls `script` until it returns something truthy; panics after `timeout` with `what`.
    pub fn wait_for(&self, script: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script, json!([]));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let errors = self.js("return JSON.stringify(window.__dealhouseErrors || [])", json!([]));
                panic!("timed out waiting for {what}; page errors: {errors}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element matching a CSS selector (panics when there is none).
    pub fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    /// Clicks the element matching `css`, as a user would (the driver scrolls it into view).
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types `text` into the element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    /// Sends keys to the focused element (W3C actions: each char a key down and up).
    pub fn press(&self, key: &str) {
        let actions: Vec<Value> = key
            .chars()
            .flat_map(|c| {
                [json!({"type": "keyDown", "value": c.to_string()}), json!({"type": "keyUp", "value": c.to_string()})]
            })
            .collect();
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
        self.cmd("DELETE", "/actions", None);
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(v.as_str().expect("base64 text"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Browser console entries since the last call (chromedriver's log endpoint).
    pub fn console(&self) -> Vec<Value> {
        let v = self.cmd("POST", "/se/log", Some(json!({ "type": "browser" })));
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(&self.addr, "DELETE", &format!("/session/{}", self.session), None, &[]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (the screenshot encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Reads the first line of a child's stderr (servers print their address there first).
pub fn first_line(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line).expect("a first line");
    // Keep draining, so the server never blocks on (or fails writing to) a full or closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("iVBORw=="), [0x89, b'P', b'N', b'G']);
    }
}
