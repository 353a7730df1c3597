//! The one HTTP client of the tests, for servers on loopback (`dealhouse serve`, the local S3
//! server): blocking calls over hyper's client (the transport fantoccini already brings), each on
//! its own current-thread runtime, so a test needs no async.

use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A response: status code and body bytes.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A free loopback port (bound and released; the server started next takes it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One request to `addr` (`HOST:PORT`): raw body bytes, extra headers. Panics naming the request
/// when the server cannot be reached or does not answer within two minutes.
pub fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let what = format!("{method} {path} to {addr}");
    let mut request = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}")))
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).unwrap_or_else(|e| panic!("{what}: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let answer = async {
            let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
            Ok::<_, String>(Response { status, body })
        };
        match tokio::time::timeout(Duration::from_secs(120), answer).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: no answer within 120 s"),
        }
    })
}

/// One request with an optional JSON body; returns status and body text.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> (u16, String) {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if body.is_some() {
        all.push(("Content-Type", "application/json; charset=utf-8"));
    }
    let response = send(addr, method, path, &all, payload.as_bytes());
    (response.status, response.text())
}

/// `GET path`, asserting 200, parsed as JSON.
pub fn get_json(addr: &str, path: &str) -> Value {
    let response = send(addr, "GET", path, &[], &[]);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::send;

    /// A server on loopback that answers every connection with `answer`, then closes it.
    fn answering(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("its address").to_string();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(answer);
            }
        });
        addr
    }

    #[test]
    fn reads_sized_chunked_and_closed_bodies() {
        let sized = send(&answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), "GET", "/", &[], &[]);
        assert_eq!((sized.status, sized.text().as_str()), (200, "hello"));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let chunked = send(&answering(chunked), "GET", "/", &[], &[]);
        assert_eq!((chunked.status, chunked.text().as_str()), (404, "abcde"));
        let closed = b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nto the end";
        let closed = send(&answering(closed), "POST", "/x", &[], b"{}");
        assert_eq!((closed.status, closed.text().as_str()), (500, "to the end"));
    }
}
