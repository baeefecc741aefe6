//! The host's HTTP client for skills: resolve once, check every address, connect to the
//! one checked, send, read the whole (bounded) response.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use agentsec_audit::Decision as AuditDecision;
use agentsec_policy::{Host, Scheme};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::{AddressRule, Recorder};

/// Most addresses of one name that are checked and tried. Reason: a name has a few; the
/// bound keeps a hostile resolver's answer from costing more.
const MAX_ADDRESSES: usize = 16;

/// Everything [`send`] needs, decided before any connection.
pub(crate) struct Plan {
    pub(crate) scheme: Scheme,
    pub(crate) host: Host,
    pub(crate) port: u16,
    pub(crate) addresses: AddressRule,
    pub(crate) max_request_body: u64,
    pub(crate) max_response_body: u64,
    pub(crate) recorder: Recorder,
    /// Redacts the injected values from the response (headers and body), so that an
    /// endpoint that echoes the request does not hand the credential to the skill.
    pub(crate) redactor: Option<Arc<std::sync::Mutex<agentsec_redact::Redactor>>>,
}

type Response = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
);

/// Sends `request` as `plan` says.
pub(crate) async fn send(
    request: http::Request<WasiBody>,
    plan: Plan,
) -> wasmtime_wasi_http::Result<Response> {
    let (mut parts, body) = request.into_parts();
    let body = collect(body, plan.max_request_body, HttpError::HttpRequestBodySize).await?;

    let addrs = resolve(&plan.host, plan.port).await?;
    if let Some(bad) = addrs.iter().find(|a| !plan.addresses.permits(a.ip())) {
        plan.recorder.record(
            AuditDecision::Deny,
            Some(&format!(
                "denied: {} resolves to {}, a loopback, private, link-local or metadata address; name it literally in the rule's url or set allow_private: true",
                plan.host,
                bad.ip()
            )),
        );
        return Err(HttpError::DestinationIpProhibited);
    }
    let tcp = connect(&addrs).await?;
    let stream: Box<dyn StreamBox> = match plan.scheme {
        Scheme::Https => Box::new(tls(&plan.host, tcp).await?),
        _ => Box::new(tcp),
    };

    // Origin form on the wire (the Host header is already set).
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    parts.uri = http::Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
    let request = http::Request::from_parts(parts, Full::new(body));

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::from)?;
    let max = plan.max_response_body;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(HttpError::from)?;
        let (parts, body) = response.into_parts();
        let body = collect(
            body.map_err(HttpError::from),
            max,
            HttpError::HttpResponseBodySize,
        )
        .await?;
        Ok::<_, HttpError>((parts, body))
    };
    // Drive the connection and the exchange together, on this task: nothing is left
    // running once the response is read (no spawned connection outlives the request).
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    let mut conn_done = false;
    let (parts, body) = poll_fn(|cx| {
        if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        if !conn_done && let Poll::Ready(result) = conn.as_mut().poll(cx) {
            conn_done = true;
            if let Err(e) = result {
                return Poll::Ready(Err(HttpError::from(e)));
            }
            return exchange.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await?;
    let (parts, body) = match plan.redactor {
        Some(shared) => {
            let mut redactor = shared
                .lock()
                .map_err(|_| HttpError::InternalError(Some("redactor lock poisoned".into())))?;
            let mut parts = parts;
            for value in parts.headers.values_mut() {
                let redacted = redactor.redact(value.as_bytes());
                if redacted != value.as_bytes() {
                    *value = http::HeaderValue::from_bytes(&redacted)
                        .unwrap_or_else(|_| http::HeaderValue::from_static("[REDACTED]"));
                }
            }
            let body = Bytes::from(redactor.redact(&body));
            (parts, body)
        }
        None => (parts, body),
    };
    let body: WasiBody = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
        Box::new(async { Ok(()) });
    Ok((http::Response::from_parts(parts, body), done))
}

/// A connection, plain or TLS.
trait StreamBox: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> StreamBox for T {}

/// The whole of `body`, at most `max` bytes (`too_large(Some(max))` past that).
async fn collect<B>(
    body: B,
    max: u64,
    too_large: fn(Option<u64>) -> HttpError,
) -> wasmtime_wasi_http::Result<Bytes>
where
    B: hyper::body::Body<Data = Bytes, Error = HttpError>,
{
    let mut body = pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if (out.len() as u64).saturating_add(data.len() as u64) > max {
                return Err(too_large(Some(max)));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// The addresses of `host` (an IP literal is its own), resolved once.
async fn resolve(host: &Host, port: u16) -> wasmtime_wasi_http::Result<Vec<SocketAddr>> {
    match host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(name) => {
            let found = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| HttpError::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                })?;
            let addrs: Vec<SocketAddr> = found.take(MAX_ADDRESSES).collect();
            if addrs.is_empty() {
                return Err(HttpError::DestinationNotFound);
            }
            Ok(addrs)
        }
    }
}

/// A connection to the first of `addrs` that answers (each one was checked).
async fn connect(addrs: &[SocketAddr]) -> wasmtime_wasi_http::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            HttpError::ConnectionRefused
        }
        Some(e) => HttpError::Connect(e),
        None => HttpError::DestinationNotFound,
    })
}

/// TLS to `host` over `tcp`, verified against the system's trust store.
async fn tls(
    host: &Host,
    tcp: TcpStream,
) -> wasmtime_wasi_http::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls_platform_verifier::ConfigVerifierExt as _;
    use tokio_rustls::rustls;
    let config = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| HttpError::InternalError(Some(format!("TLS set-up: {e}"))))?;
    let name = match host {
        Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
        Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(HttpError::Tls)
}
