//! The one HTTP client of the tests: blocking HTTP/1.1 over a std `TcpStream`, for servers on
//! loopback (`dealhouse serve`, the local S3 server). One request per connection; the body is read
//! by its `Content-Length` or chunks, so a server that keeps the connection open does not stall it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

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

/// One request to `addr` (`HOST:PORT`) with `Connection: close`: raw body bytes, extra headers.
pub fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .unwrap_or_else(|e| panic!("{method} {path} to {addr}: cannot write the request: {e}"));
    read_response(BufReader::new(s))
        .unwrap_or_else(|e| panic!("{method} {path} to {addr}: cannot read the response: {e}"))
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

/// Reads the head, then exactly the body its headers announce.
fn read_response(mut reader: impl BufRead) -> std::io::Result<Response> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("no status code in {head:?}")))?;
    let lower = head.to_ascii_lowercase();
    let length =
        lower.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
    let mut body = vec![];
    if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(|e| bad(format!("chunk size {size:?}: {e}")))?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::read_response;

    #[test]
    fn reads_sized_chunked_and_closed_bodies() {
        let sized = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more"[..]).unwrap();
        assert_eq!((sized.status, sized.text().as_str()), (200, "hello"));
        let chunked = read_response(
            &b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!((chunked.status, chunked.text().as_str()), (404, "abcde"));
        let closed = read_response(&b"HTTP/1.1 500 Oops\r\n\r\nto the end"[..]).unwrap();
        assert_eq!((closed.status, closed.text().as_str()), (500, "to the end"));
        assert!(read_response(&b"garbage"[..]).is_err());
    }
}
