//! MCP's streamable HTTP transport, on loopback TCP, a unix socket, or TLS (remote).
//! Every request must carry `Authorization: Bearer TOKEN`; the token proves one agent id
//! (the policy's `tokens_sha256`). A missing or unknown token is answered 401, and is on
//! the audit record.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agentsec_server::protocol::BearerToken;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

use crate::backend::{Backend, Caller};
use crate::handler::{Mcp, Proven};

/// Longest `Authorization` header value accepted, in bytes.
///
/// Reason: our tokens are 52 bytes; a header of kilobytes is not a token, and the bound
/// keeps what is hashed and compared small.
const MAX_AUTHORIZATION: usize = 1024;

/// Where to listen.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A TCP address (loopback unless remote access is allowed, with TLS).
    Tcp(SocketAddr),
    /// A unix socket (mode 0600, its directory created 0700).
    Unix(PathBuf),
}

/// A certificate chain and its private key (PEM files) for remote access.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address or socket could not be bound.
    #[error("--listen {what}: {reason}")]
    Bind {
        /// What was asked.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The certificate or key does not load.
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(String),
}

/// Serves MCP over streamable HTTP on `listen` until the process is stopped: one MCP
/// session per client, each request's agent proven by its bearer token through `backend`.
/// `ready` is called once the listener is bound.
///
/// # Errors
/// [`HttpError`] before anything is served.
pub async fn serve_http(
    backend: Arc<dyn Backend>,
    listen: Listen,
    tls: Option<Tls>,
    allow_remote: bool,
    max_message: usize,
    ready: impl FnOnce(&str),
) -> Result<(), HttpError> {
    let mut config = StreamableHttpServerConfig::default();
    config.max_request_body_bytes = max_message;
    if allow_remote {
        // Clients name this host however they reach it; every request still needs a token.
        config = config.disable_allowed_hosts();
    }
    let factory_backend = Arc::clone(&backend);
    let service = StreamableHttpService::new(
        move || Ok(Mcp::new(Arc::clone(&factory_backend), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let acceptor = match &tls {
        Some(tls) => Some(tls_acceptor(tls)?),
        None => None,
    };
    match listen {
        Listen::Tcp(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| HttpError::Bind {
                        what: addr.to_string(),
                        reason: e.to_string(),
                    })?;
            let local = listener.local_addr().map_or(addr, |a| a);
            ready(&format!(
                "{}://{local}/mcp",
                if acceptor.is_some() { "https" } else { "http" }
            ));
            loop {
                let Ok((stream, from)) = listener.accept().await else {
                    continue;
                };
                let from = from.to_string();
                match &acceptor {
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let (service, backend) = (service.clone(), Arc::clone(&backend));
                        tokio::spawn(async move {
                            match acceptor.accept(stream).await {
                                Ok(tls) => serve_connection(tls, service, backend, from).await,
                                Err(e) => tracing::warn!("TLS handshake with {from} failed: {e}"),
                            }
                        });
                    }
                    None => {
                        tokio::spawn(serve_connection(
                            stream,
                            service.clone(),
                            Arc::clone(&backend),
                            from,
                        ));
                    }
                }
            }
        }
        Listen::Unix(path) => {
            let listener = bind_unix(&path)?;
            ready(&format!("unix:{}", path.display()));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve_connection(
                    stream,
                    service.clone(),
                    Arc::clone(&backend),
                    format!("unix socket {}", path.display()),
                ));
            }
        }
    }
}

type Service = StreamableHttpService<Mcp, LocalSessionManager>;

async fn serve_connection<S>(stream: S, service: Service, backend: Arc<dyn Backend>, from: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (service, backend, from) = (service.clone(), Arc::clone(&backend), from.clone());
        async move { Ok::<_, std::convert::Infallible>(authorized(req, service, backend, &from).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), handler)
        .await
    {
        tracing::debug!("HTTP connection ended: {e}");
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Checks the bearer token, then hands the request to the MCP service with the proven
/// agent in its extensions.
async fn authorized(
    mut req: Request<Incoming>,
    mut service: Service,
    backend: Arc<dyn Backend>,
    from: &str,
) -> Response<Body> {
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .filter(|v| v.len() <= MAX_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| Arc::new(BearerToken::new(Zeroizing::new(t.trim().to_owned()))));
    let from = from.to_owned();
    let check = token.clone();
    let agent = tokio::task::spawn_blocking(move || backend.token_agent(check.as_deref(), &from))
        .await
        .ok()
        .flatten();
    let Some(agent) = agent else {
        return unauthorized();
    };
    req.extensions_mut().insert(Proven(Caller { agent, token }));
    use tower_service::Service as _;
    match service.call(req).await {
        Ok(response) => response.map(|b| b.boxed()),
        Err(never) => match never {},
    }
}

fn unauthorized() -> Response<Body> {
    let body = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"a bearer token that the policy binds to an agent is required (Authorization: Bearer TOKEN; agentsec token new --agent ID)"}}"#;
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer realm=\"agentsec\""),
    );
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, HttpError> {
    use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
    let err = |reason: String| HttpError::Bind {
        what: format!("unix:{}", path.display()),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("cannot create its directory: {e}")))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(
                "exists and is not a socket; remove it or choose another path".to_owned(),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err("something is listening on it already".to_owned()));
        }
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    // Bound under a temporary name, given its mode, then renamed into place: the socket
    // never exists with the umask's mode.
    let staged = path.with_extension(format!("{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let listener = tokio::net::UnixListener::bind(&staged).map_err(|e| err(e.to_string()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staged, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            err(e.to_string())
        })?;
    Ok(listener)
}

fn tls_acceptor(tls: &Tls) -> Result<tokio_rustls::TlsAcceptor, HttpError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| HttpError::Tls(format!("{}: {e}", tls.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| HttpError::Tls(format!("{}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(HttpError::Tls(format!(
            "{}: no PEM certificate in it",
            tls.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| HttpError::Tls(format!("{}: {e}", tls.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
