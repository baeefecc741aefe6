//! Outgoing HTTP from a skill, on the standard `wasi:http` interfaces (through the
//! [`wasip2`] crate's bindings), so the same skill works in any wasi:http host.
//!
//! The agentsec host sends the request only if the operator's policy has an `egress:`
//! rule for it, and adds credentials itself: name the secret with [`Request::inject`]
//! and the host puts it into the request (a header, or the whole URL) after checking
//! the policy. The skill never holds it, and the response it gets back is redacted.
//!
//! ```no_run
//! use agentsec_skill::http;
//!
//! let response = http::Request::post("https://api.github.com/repos/o/r/releases")
//!     .inject("communication.github.token")
//!     .header("content-type", "application/json")
//!     .body(br#"{"tag_name":"v1.2.0"}"#.to_vec())
//!     .send()?;
//! assert!(response.status < 300, "GitHub said {}", response.status);
//! # Ok::<(), agentsec_skill::http::Error>(())
//! ```

use std::fmt;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// The request header that names the secrets the host should inject (comma-separated
/// paths). The host removes it before sending.
pub const INJECT_HEADER: &str = "agentsec-inject";

/// Largest response body this helper reads, in bytes. Reason: a skill's memory is
/// limited; the host has its own, usually lower, limit.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used (not `http://` or `https://`, no host).
    InvalidUrl(String),
    /// The host refused or failed the request; the text is the wasi:http error code
    /// (`HttpRequestDenied`: no egress rule allows it, or a credential may not be
    /// injected; `DestinationIpProhibited`: the name resolves to a private address).
    Http(String),
    /// A header could not be set (a name the host forbids, or an invalid value).
    Header(String),
    /// The body could not be written or read.
    Body(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Error::Http(code) => write!(f, "HTTP request failed: {code}"),
            Error::Header(m) => write!(f, "header: {m}"),
            Error::Body(m) => write!(f, "body: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

fn code(e: &ErrorCode) -> Error {
    Error::Http(format!("{e:?}"))
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header called `name` (ASCII case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

impl Request {
    /// A request with any method (`GET`, `POST`, `PATCH`, ...).
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A `GET`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A `POST`.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// Asks the host to inject the secret at `path` (as the policy's `inject:` entry for
    /// it says); call again for more than one.
    #[must_use]
    pub fn inject(mut self, path: &str) -> Request {
        match self.headers.iter_mut().find(|(k, _)| k == INJECT_HEADER) {
            Some((_, v)) => {
                v.push(b',');
                v.extend_from_slice(path.as_bytes());
            }
            None => self
                .headers
                .push((INJECT_HEADER.to_owned(), path.as_bytes().to_vec())),
        }
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = Some(body);
        self
    }

    /// Sends the request and reads the whole response.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn send(self) -> Result<Response, Error> {
        let (scheme, rest) = match self.url.split_once("://") {
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", rest)) => (Scheme::Https, rest),
            _ => return Err(Error::InvalidUrl("use http:// or https://".to_owned())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(Error::InvalidUrl("no host".to_owned()));
        }
        let fields: Vec<(String, Vec<u8>)> = self.headers;
        let headers = Fields::from_list(&fields).map_err(|e| Error::Header(format!("{e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        let bad = |what: &str| Error::InvalidUrl(what.to_owned());
        request.set_method(&method).map_err(|()| bad("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| bad("host"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let body = request
            .body()
            .map_err(|()| Error::Body("no request body".to_owned()))?;
        let pending = outgoing_handler::handle(request, None).map_err(|e| code(&e))?;
        let written = (|| {
            let stream = body
                .write()
                .map_err(|()| Error::Body("no request stream".to_owned()))?;
            for chunk in self.body.as_deref().unwrap_or_default().chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::Body(format!("{e:?}")))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // A host that refuses the request (no egress rule, a credential it may not
            // inject) closes its body; the reason is the response's error, not the body's.
            pending.subscribe().block();
            return Err(match pending.get() {
                Some(Ok(Err(refused))) => code(&refused),
                _ => e,
            });
        }
        OutgoingBody::finish(body, None).map_err(|e| code(&e))?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(code(&e)),
            _ => return Err(Error::Http("no response".to_owned())),
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| Error::Body("no response body".to_owned()))?;
        let mut out = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| Error::Body("no response stream".to_owned()))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => {
                        if out.len() + chunk.len() > MAX_RESPONSE_BODY {
                            return Err(Error::Body("response body too large".to_owned()));
                        }
                        out.extend_from_slice(&chunk);
                    }
                    Err(wasip2::io::streams::StreamError::Closed) => break,
                    Err(e) => return Err(Error::Body(format!("{e:?}"))),
                }
            }
        }
        drop(incoming);
        Ok(Response {
            status,
            headers,
            body: out,
        })
    }
}
