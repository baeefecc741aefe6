//! Outgoing HTTP for skills: standard `wasi:http/outgoing-handler`, sent by the host.
//!
//! The interfaces are linked only into runs whose policy grants the agent and skill some
//! `egress:` (see [`crate::Runtime::run`]). Every request the skill hands to
//! `outgoing-handler.handle` comes here ([`WasiHttpHooks::send_request`]), where, in this
//! order and before any connection:
//! 1. it is counted against the run's limit ([`Limits::max_http_requests`]; the first
//!    refusal past it is recorded, later ones are not: they could flood the log);
//! 2. its scheme, host, port and path are parsed; a path a server could rewrite
//!    (`..`, encoded `/`) is refused;
//! 3. the policy's `egress:` rules decide (deny by default: `HttpRequestDenied`);
//! 4. the decision is on the audit record (`access_type: egress`, the method and
//!    `scheme://host:port`, never the path or query, redacted like everything else).
//!
//! The request is then sent by the host's own client ([`send`]): it resolves the name
//! **once**, refuses the whole request if any address it got is loopback, private,
//! link-local or metadata and the rule does not name that address literally or set
//! `allow_private: true` (`DestinationIpProhibited`, recorded), and connects to the very
//! address it checked. wasmtime-wasi-http's own client resolves names itself, which is why
//! it is not used. Redirects are never followed by the host (the skill sees the 3xx).
//! The whole exchange is bounded by [`Limits::http_timeout`] and the run's remaining
//! deadline (the epoch deadline does not interrupt a skill waiting in a host call), the
//! request body by [`Limits::max_http_request_body`], the response body by
//! [`Limits::max_http_response_body`].
//!
//! [`Limits::max_http_requests`]: crate::Limits::max_http_requests
//! [`Limits::http_timeout`]: crate::Limits::http_timeout
//! [`Limits::max_http_request_body`]: crate::Limits::max_http_request_body
//! [`Limits::max_http_response_body`]: crate::Limits::max_http_response_body

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agentsec_audit::{AccessType, Decision as AuditDecision, Record, RunContext};
use agentsec_broker::Broker;
use agentsec_policy::egress::{canonical_ip, check_path, is_public};
use agentsec_policy::{Host, Scheme, Target};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::limits::Limits;
use crate::secrets::SecretsCtx;

mod inject;
mod send;
mod tcp;

pub(crate) use tcp::TcpCheck;

/// The run's outgoing requests and TCP connections, counted together against
/// [`Limits::max_http_requests`] (shared by the HTTP hook and the TCP check, which runs on
/// another task).
#[derive(Clone)]
pub(crate) struct RequestBudget {
    used: Arc<AtomicU32>,
    max: u32,
}

/// What [`RequestBudget::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Within the limit.
    Within,
    /// The first one past it: refused and recorded, with [`RequestBudget::over_limit`].
    FirstOver,
    /// A later one past it: refused without a record (a skill looping on a refused
    /// request must not fill the audit log until its deadline).
    Over,
}

impl RequestBudget {
    fn new(max: u32) -> Self {
        RequestBudget {
            used: Arc::default(),
            max,
        }
    }

    /// Counts one request or connection.
    pub(crate) fn take(&self) -> Taken {
        let used = self.used.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        match used.checked_sub(self.max) {
            None | Some(0) => Taken::Within,
            Some(1) => Taken::FirstOver,
            Some(_) => Taken::Over,
        }
    }

    /// The record's words for the first refusal past the limit.
    pub(crate) fn over_limit(&self) -> String {
        format!(
            "limit: more than {} outgoing requests in one run; later requests and connections of the run are refused without a record",
            self.max
        )
    }
}

/// The egress state of one run (present only when the policy grants some egress).
pub(crate) struct EgressCtx {
    max_request_body: u64,
    max_response_body: u64,
    timeout: Duration,
    deadline: Instant,
    /// Requests and TCP connections so far.
    budget: RequestBudget,
    /// Every value injected in this run, in every form: each response of an injected
    /// request is redacted with it (one matcher for the run, not one per request).
    response_redactor: Arc<std::sync::Mutex<agentsec_redact::Redactor>>,
    /// Set when an egress audit record could not be written: the run ends as
    /// `AuditFailed` and nothing it produced is returned.
    pub(crate) audit_failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl EgressCtx {
    pub(crate) fn new(limits: &Limits, deadline: Instant) -> Self {
        EgressCtx {
            max_request_body: limits.max_http_request_body,
            max_response_body: limits.max_http_response_body,
            timeout: limits.http_timeout,
            deadline,
            budget: RequestBudget::new(limits.max_http_requests),
            response_redactor: Arc::default(),
            audit_failed: Arc::default(),
        }
    }
}

/// A future that resolves to the response (and the connection's own future, which is
/// already done: [`send`] drives the connection itself and reads the whole body).
type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

/// How much of a refused request's body the host reads (and drops) before it answers
/// with the refusal. wasi:http hands the request to the host at `handle`, before the
/// skill writes its body; a refusal that dropped the body at once would reach a skill
/// that writes it next as a closed stream, not as the refusal's error code. Reading it
/// (within the run's request body limit and remaining time) lets every client see
/// `HttpRequestDenied` on the response it waits for.
#[derive(Debug, Clone, Copy)]
struct Drain {
    max_bytes: u64,
    timeout: Duration,
}

impl Drain {
    /// Nothing is read: for a run without egress state (wasi:http is not linked then).
    const NONE: Drain = Drain {
        max_bytes: 0,
        timeout: Duration::ZERO,
    };
}

/// A request refused with `error`, answered once its body is read (see [`Drain`]).
fn refuse(request: http::Request<WasiBody>, error: HttpError, drain: Drain) -> SendFuture {
    use http_body_util::BodyExt as _;
    Box::new(async move {
        let mut body = std::pin::pin!(request.into_body());
        let discard = async {
            let mut read: u64 = 0;
            // Ends with the body, at its first error, or past the limit.
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len() as u64);
                    if read > drain.max_bytes {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(drain.timeout, discard).await;
        Err(error)
    })
}

/// Which resolved addresses a granted request may connect to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressRule {
    allow_private: bool,
    literal: Option<IpAddr>,
}

impl AddressRule {
    /// The rule's own copy of what [`agentsec_policy::EgressRuleRef::permits_address`]
    /// decides, owned so that it outlives the policy borrow (the request is sent later,
    /// on the run's executor).
    pub(crate) fn of(rule: &agentsec_policy::EgressRuleRef<'_>) -> AddressRule {
        AddressRule {
            allow_private: rule.allow_private(),
            literal: match rule.url().host() {
                Host::Ip(ip) => Some(*ip),
                Host::Name(_) => None,
            },
        }
    }

    /// Any public address; a special one only when the rule names it or allows private.
    pub(crate) fn permits(&self, address: IpAddr) -> bool {
        self.allow_private
            || is_public(address)
            || self
                .literal
                .is_some_and(|l| canonical_ip(l) == canonical_ip(address))
    }
}

/// What the record of a request says about it, and where the records go.
#[derive(Clone)]
pub(crate) struct Recorder {
    broker: Arc<Broker>,
    run: RunContext,
    /// `METHOD scheme://host:port`, redacted.
    what: String,
    rule: Option<String>,
    failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl Recorder {
    /// Whether no record of this run's egress failed so far.
    pub(crate) fn record_ok(&self) -> bool {
        self.failed.lock().map(|f| f.is_none()).unwrap_or(false)
    }

    /// Appends an `egress` record; a failure is remembered (the run then fails closed).
    pub(crate) fn record(&self, decision: AuditDecision, why: Option<&str>) -> bool {
        let detail = match why {
            Some(why) => format!("{}; {why}", self.what),
            None => self.what.clone(),
        };
        let record = Record::new(&self.run, "", AccessType::Egress, decision)
            .rule(self.rule.as_deref())
            .detail(detail.as_str());
        match self.broker.record_now(&record) {
            Ok(()) => true,
            Err(e) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.get_or_insert(e);
                }
                false
            }
        }
    }
}

impl WasiHttpHooks for SecretsCtx {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let method = request.method().as_str().to_owned();
        // Until an `as: url` secret replaces it, the skill's own destination is recorded.
        let first = {
            let uri = request.uri();
            format!(
                "{method} {}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.authority().map(|a| a.as_str()).unwrap_or("")
            )
        };
        let mut recorder = Recorder {
            broker: Arc::clone(self.broker()),
            run: self.caller().run().clone(),
            what: self.caller_mut().redactor().redact_str(&first),
            rule: None,
            failed: Arc::default(),
        };
        let Some(egress) = self.egress.as_mut() else {
            recorder.record(AuditDecision::Deny, Some("denied: no egress granted"));
            return refuse(request, HttpError::HttpRequestDenied, Drain::NONE);
        };
        let drain = Drain {
            max_bytes: egress.max_request_body,
            timeout: egress
                .timeout
                .min(egress.deadline.saturating_duration_since(Instant::now())),
        };
        recorder.failed = Arc::clone(&egress.audit_failed);
        match egress.budget.take() {
            Taken::Within => {}
            taken => {
                if taken == Taken::FirstOver {
                    recorder.record(AuditDecision::Deny, Some(&egress.budget.over_limit()));
                }
                return refuse(request, HttpError::ConnectionLimitReached, drain);
            }
        }
        // An `as: url` secret replaces the whole URL first: everything below checks the
        // URL it holds, and nothing below names more of it than `scheme://host:port`.
        let shared = Arc::clone(&egress.response_redactor);
        let Ok(mut redactor) = shared.lock() else {
            return refuse(request, HttpError::InternalError(None), drain);
        };
        let hidden = match inject::apply_as_url(self, &mut request, &method, &mut redactor) {
            Ok(r) => r,
            Err(error) => {
                recorder.record(
                    AuditDecision::Deny,
                    Some("denied: the injection was refused"),
                );
                return refuse(request, error, drain);
            }
        };
        let uri = request.uri().clone();
        let scheme_text = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        // The destination as recorded: scheme://authority, redacted (a skill may put a
        // value it read into a host name; an `as: url` value is redacted too).
        let mut shown = format!("{method} {scheme_text}://{authority}");
        if hidden {
            shown = redactor.redact_str(&shown);
        }
        recorder.what = self.caller_mut().redactor().redact_str(&shown);
        let parsed = parse_target(&uri);
        let (scheme, host, port, path) = match parsed {
            Ok(t) => t,
            Err(why) => {
                let why = if hidden {
                    "the url held in the secret is not a valid request url".to_owned()
                } else {
                    why
                };
                recorder.record(AuditDecision::Deny, Some(&format!("invalid-url: {why}")));
                return refuse(request, HttpError::HttpRequestUriInvalid, drain);
            }
        };
        let target = Target {
            scheme,
            host: &host,
            port,
            path: &path,
        };
        let (agent, skill) = (self.caller().agent(), self.caller().skill());
        let policy = self.broker().policy();
        let grant = match policy.egress(agent, skill, &method, &target) {
            Ok(grant) => grant,
            Err(denial) => {
                if hidden {
                    tracing::info!("outgoing request to an `as: url` secret refused");
                } else {
                    tracing::info!(%denial, "outgoing request refused");
                }
                recorder.record(
                    AuditDecision::Deny,
                    Some("denied: no egress rule allows it"),
                );
                return refuse(request, HttpError::HttpRequestDenied, drain);
            }
        };
        recorder.rule = Some(grant.rule.label());
        let addresses = AddressRule::of(&grant.rule);
        if !recorder.record(AuditDecision::Allow, None) {
            return refuse(
                request,
                HttpError::InternalError(Some("the audit record could not be written".to_owned())),
                drain,
            );
        }
        // Credentials the skill asks the host to add (`agentsec-inject: a.b,c.d`).
        let injected = match inject::apply(self, &mut request, &target, &method, &mut redactor) {
            Ok(injected) => injected || hidden,
            Err(error) => return refuse(request, error, drain),
        };
        drop(redactor);
        let redactor = injected.then_some(shared);
        let Some(egress) = self.egress.as_ref() else {
            return refuse(request, HttpError::HttpRequestDenied, Drain::NONE);
        };
        if !recorder.record_ok() {
            return refuse(
                request,
                HttpError::InternalError(Some("the audit record could not be written".to_owned())),
                drain,
            );
        }
        let remaining = egress.deadline.saturating_duration_since(Instant::now());
        let plan = send::Plan {
            scheme,
            host,
            port,
            addresses,
            max_request_body: egress.max_request_body,
            max_response_body: egress.max_response_body,
            recorder,
            redactor,
        };
        let timeout = egress.timeout.min(remaining);
        Box::new(async move {
            match tokio::time::timeout(timeout, send::send(request, plan)).await {
                Ok(result) => result,
                Err(_) => Err(HttpError::ConnectionTimeout),
            }
        })
    }
}

/// The scheme, host, port and path (checked, without the query) of a request URI.
fn parse_target(uri: &http::Uri) -> Result<(Scheme, Host, u16, String), String> {
    let scheme = match uri.scheme_str().and_then(Scheme::parse) {
        Some(s @ (Scheme::Http | Scheme::Https)) => s,
        _ => return Err("the scheme must be http or https".to_owned()),
    };
    let authority = uri.authority().ok_or("the request has no host")?;
    if authority.as_str().contains('@') {
        return Err("the URL holds user information".to_owned());
    }
    let host = Host::parse(authority.host())?;
    let port = match authority.port_u16() {
        Some(p) => p,
        None => scheme.default_port().unwrap_or(443),
    };
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    check_path(path).map_err(|e| format!("the path {e}"))?;
    Ok((scheme, host, port, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::{RequestBudget, Taken};

    #[test]
    fn the_budget_is_shared_and_only_the_first_refusal_is_marked() {
        let http = RequestBudget::new(2);
        let tcp = http.clone();
        assert_eq!(http.take(), Taken::Within);
        assert_eq!(tcp.take(), Taken::Within);
        assert_eq!(tcp.take(), Taken::FirstOver);
        assert_eq!(http.take(), Taken::Over);
        assert_eq!(tcp.take(), Taken::Over);
        let none = RequestBudget::new(0);
        assert_eq!(none.take(), Taken::FirstOver);
    }
}
