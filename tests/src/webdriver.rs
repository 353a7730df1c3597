//! A headless Chromium for the browser tests: starts `chromedriver` on a free loopback port and
//! drives one session through `fantoccini` (plain HTTP, no TLS: the driver is local). The tests
//! are synchronous (they run the CLI between page checks), so [`Browser`] owns a small runtime
//! and blocks on each command.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::http::free_port;

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

/// chromedriver's console log (`POST /session/{id}/se/log`): not part of W3C WebDriver, so not
/// a fantoccini method.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

/// A running chromedriver with one headless Chromium session; both end on drop.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the WebDriver client");
        let mut browser = Browser { runtime, client: None, driver };
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {addr} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"), "--lang=ru-RU", "--force-device-scale-factor=1",
                    "--no-first-run", "--disable-extensions"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps: Capabilities = capabilities.as_object().cloned().unwrap_or_default();
        let client = browser
            .runtime
            .block_on(ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&format!("http://{addr}")))
            .unwrap_or_else(|e| panic!("chromedriver on {addr} did not open a Chromium session: {e}"));
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until drop")
    }

    /// Runs one WebDriver command to completion, panicking with `what` and the driver's error.
    fn run<T, E: std::fmt::Display>(&self, what: &str, command: impl Future<Output = Result<T, E>>) -> T {
        self.runtime.block_on(command).unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    /// Navigates and waits for the load to finish.
    pub fn goto(&self, url: &str) {
        self.run(&format!("goto {url}"), self.client().goto(url));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        let args = match args {
            Value::Array(a) => a,
            Value::Null => vec![],
            other => vec![other],
        };
        self.run("execute", self.client().execute(script, args))
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

    /// Clicks the element matching `css`, as a user would (the driver scrolls it into view).
    pub fn click(&self, css: &str) {
        let element = self.run(&format!("find {css}"), self.client().find(Locator::Css(css)));
        self.run(&format!("click {css}"), element.click());
    }

    /// Types `text` into the element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.run(&format!("find {css}"), self.client().find(Locator::Css(css)));
        self.run(&format!("type into {css}"), element.send_keys(text));
    }

    /// Sends keys to the focused element (W3C actions: each char a key down and up; WebDriver's
    /// special keys are private-use chars, e.g. `\u{E004}` Tab).
    pub fn press(&self, keys: &str) {
        let actions = keys.chars().fold(KeyActions::new("keyboard".into()), |a, c| {
            a.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c })
        });
        self.run("key actions", self.client().perform_actions(actions));
        self.run("release actions", self.client().release_actions());
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.run("screenshot", self.client().screenshot());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Waits until the dashboard page has finished rendering after render number `after` (its
    /// `data-busy` and `data-rendered` marks); returns the new render number.
    pub fn rendered(&self, after: u64, what: &str) -> u64 {
        let v = self.wait_for(
            &format!(
                "const d = document.documentElement.dataset; \
                 return d.busy === 'false' && Number(d.rendered) > {after} ? Number(d.rendered) : 0"
            ),
            Duration::from_secs(60),
            what,
        );
        v.as_u64().expect("a render number")
    }

    /// Browser console entries since the last call (chromedriver's log endpoint).
    pub fn console(&self) -> Vec<Value> {
        let v = self.run("console log", self.client().issue_cmd(BrowserLog));
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Ends the session (closing Chromium) before the driver goes.
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
