//! A small HTTP/1.1 server on 127.0.0.1 for the egress tests, started and stopped by
//! each test: it records every request it receives and answers by path.
//!
//! - `/echo...`: 200, the request's head and body as the response body, and the value of
//!   its `authorization` header (if any) in an `x-echo-authorization` response header;
//! - `/redirect?to=URL`: 302 to `URL`;
//! - `/big?n=BYTES`: 200 with `BYTES` bytes of `a`;
//! - `/hang`: reads the request and never answers;
//! - `POST /repos/OWNER/REPO/releases` (the api.github.com stand-in): 401 without an
//!   `authorization` header, else 201 with a release made from the request's
//!   `tag_name` (`id`, `tag_name`, `name`, `html_url`), as GitHub answers;
//! - `POST /api/webhooks/...` (the Discord webhook stand-in): 204, no body;
//! - anything else: 200 `ok`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running server; stopped when dropped.
pub struct HttpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let r = Arc::clone(&r);
                        std::thread::spawn(move || serve(stream, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer {
            port,
            received,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Received {
            method,
            target,
            headers,
            body,
        };
        if let Ok(mut r) = received.lock() {
            r.push(request.clone());
        }
        let (status, extra, payload) = answer(&request);
        let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", payload.len());
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if request
            .target
            .split('?')
            .next()
            .unwrap_or("")
            .contains("/hang")
        {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&payload).is_err() {
            return;
        }
    }
}

fn answer(request: &Received) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
    let query = |key: &str| {
        request
            .target
            .split_once('?')
            .and_then(|(_, q)| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            })
            .map(str::to_owned)
    };
    let path = request.target.split('?').next().unwrap_or("");
    if path.contains("/echo") {
        let mut text = format!("{} {}\n", request.method, request.target);
        for (k, v) in &request.headers {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&request.body));
        let mut extra = Vec::new();
        if let Some(auth) = request.header("authorization") {
            extra.push(("x-echo-authorization".to_owned(), auth.to_owned()));
        }
        return ("200 OK", extra, text.into_bytes());
    }
    if path.contains("/redirect") {
        let to = query("to").unwrap_or_default();
        return ("302 Found", vec![("location".to_owned(), to)], Vec::new());
    }
    if request.method == "POST" && path.starts_with("/repos/") && path.ends_with("/releases") {
        if request.header("authorization").is_none() {
            return (
                "401 Unauthorized",
                Vec::new(),
                br#"{"message":"Requires authentication"}"#.to_vec(),
            );
        }
        let sent: serde_json::Value =
            serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        let repo = path
            .trim_start_matches("/repos/")
            .trim_end_matches("/releases");
        let tag = sent["tag_name"].as_str().unwrap_or("");
        let release = serde_json::json!({
            "id": 1,
            "tag_name": tag,
            "name": sent["name"],
            "html_url": format!("https://github.com/{repo}/releases/tag/{tag}"),
        });
        return ("201 Created", Vec::new(), release.to_string().into_bytes());
    }
    if request.method == "POST" && path.starts_with("/api/webhooks/") {
        return ("204 No Content", Vec::new(), Vec::new());
    }
    if path.contains("/big") {
        let n: usize = query("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        return ("200 OK", Vec::new(), vec![b'a'; n]);
    }
    ("200 OK", Vec::new(), b"ok".to_vec())
}
