//! The HTTP side: one `ureq` agent (rustls, **no redirects**: a standby's 307 must not carry
//! the token to another host), a deadline per request, bounded answers, and bounded retries
//! with backoff across the cluster's addresses.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::VaultToken;
use crate::config::VaultConfig;

/// Largest answer read. A KV secret is a few KiB; 1 MiB bounds what a wrong or hostile
/// server can make us hold (per request).
pub const MAX_RESPONSE: u64 = 1024 * 1024;

/// Tries before a request to a single address is `unavailable` (250 ms, then 500 ms
/// apart). Reason: rides out a restart's refused connections and brief 503s, and with
/// `vault.timeout` per try stays inside a run's 10 s deadline.
pub const MAX_ROUNDS: u32 = 3;

/// Tries before a request to a cluster (several addresses) is `unavailable`: 5.75 s of
/// pauses in all (250 ms, 500 ms, then [`MAX_BACKOFF`]). Reason: while a Raft leader
/// election runs no node is active; tests/tests/vault.rs measured one read waiting 3.8 s
/// across the election after the leader was killed (`performance_multiplier = 1`).
pub const CLUSTER_ROUNDS: u32 = 8;

/// Pause before the second try; doubled before each later one, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Longest pause between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// After a request found nothing answering in all its tries, how long later
/// requests fail at once with that reason instead of trying again. Reason: a run that
/// reads ten secrets from a Vault that is down must cost one retry budget, not ten; five
/// seconds is short against an outage and longer than one run's reads.
pub const DOWN_HOLD: Duration = Duration::from_secs(5);

/// How long a client of a cluster (several addresses) keeps sending to the node that last
/// said it is active (`GET sys/leader` answering `is_self: true`, unauthenticated) before
/// asking again; a failed request asks at once. Reason: OpenBao's standbys answer reads
/// from their own replica, which can lag behind a write made through the active node (and
/// stays stale when the active node dies before it invalidated the standby's cache, as
/// tests/tests/vault.rs saw); `X-Vault-Inconsistent: forward-active-node` forwards only
/// requests that carry an `X-Vault-Index`, which a reader of another client's write does
/// not have. Reading from the active node only gives read-after-write. Ten seconds bounds
/// how long a step-down that broke nothing keeps reads on a node that is now a standby.
pub const LEADER_RECHECK: Duration = Duration::from_secs(10);

/// Largest CA file read (`vault.ca_file`).
const MAX_CA_FILE: u64 = 1024 * 1024;

/// An answer from Vault: its status (2xx or 4xx; 5xx and transport failures are retried and
/// end as `unavailable`) and body, zeroized (it may hold secret values or a token).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

/// The cluster: its addresses and one connection pool.
pub(crate) struct Http {
    agent: ureq::Agent,
    addresses: Vec<String>,
    /// The address requests go to: the only one, or the cluster's active node.
    preferred: AtomicUsize,
    /// When no address last answered, and why ([`DOWN_HOLD`]).
    down: Mutex<Option<(Instant, String)>>,
    /// When the active node was last looked up (`None`: due) ([`LEADER_RECHECK`]).
    leader_checked: Mutex<Option<Instant>>,
}

impl Http {
    pub(crate) fn new(config: &VaultConfig) -> Result<Http, String> {
        let roots = match &config.ca_file {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(file) => {
                let mut pem = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(
                        std::fs::File::open(file)
                            .map_err(|e| format!("vault.ca_file {}: {e}", file.display()))?,
                        MAX_CA_FILE,
                    ),
                    &mut pem,
                )
                .map_err(|e| format!("vault.ca_file {}: {e}", file.display()))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(format!(
                        "vault.ca_file {}: no PEM certificate in it",
                        file.display()
                    ));
                }
                ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs))
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Ok(Http {
            agent,
            addresses: config.addresses.clone(),
            preferred: AtomicUsize::new(0),
            down: Mutex::new(None),
            leader_checked: Mutex::new(None),
        })
    }

    /// The address requests go to first (for audit records).
    pub(crate) fn address(&self) -> &str {
        &self.addresses[self.preferred.load(Ordering::Relaxed) % self.addresses.len()]
    }

    /// The configured address whose node says it is the active one (`sys/leader`'s
    /// `is_self`, from the node itself: no address matching; or a server without HA,
    /// which answers every request itself), or why none is.
    fn find_active(&self) -> Result<usize, String> {
        let n = self.addresses.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut why = Vec::new();
        for i in 0..n {
            let at = (start + i) % n;
            let address = &self.addresses[at];
            match self.once(address, "GET", "/v1/sys/leader", None, None) {
                Ok(answer) if answer.status == 200 => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&answer.body).unwrap_or_default();
                    let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool);
                    // `ha_enabled: false`: a server without HA storage is the whole cluster
                    // (several addresses of one server, or of a load balancer in front of it).
                    if flag("is_self") == Some(true) || flag("ha_enabled") == Some(false) {
                        return Ok(at);
                    }
                    why.push(format!("{address} is a standby"));
                }
                Ok(answer) => why.push(format!(
                    "{address} answered {} to sys/leader{}",
                    answer.status,
                    excerpt_suffix(&answer.body)
                )),
                Err(e) => why.push(e),
            }
        }
        Err(format!("no node is active ({})", why.join("; ")))
    }

    /// The active node of a cluster (several addresses), looked up when not known or
    /// older than [`LEADER_RECHECK`].
    fn active(&self) -> Result<usize, String> {
        let known = self
            .leader_checked
            .lock()
            .ok()
            .and_then(|c| *c)
            .is_some_and(|at| at.elapsed() < LEADER_RECHECK);
        if known {
            return Ok(self.preferred.load(Ordering::Relaxed));
        }
        let at = self.find_active()?;
        if at != self.preferred.load(Ordering::Relaxed) {
            tracing::info!(address = %self.addresses[at], "sending Vault requests to the active node");
        }
        self.preferred.store(at, Ordering::Relaxed);
        if let Ok(mut checked) = self.leader_checked.lock() {
            *checked = Some(Instant::now());
        }
        Ok(at)
    }

    /// Forgets the active node (it failed): the next request looks it up again.
    fn lost_active(&self) {
        if let Ok(mut checked) = self.leader_checked.lock() {
            *checked = None;
        }
    }

    /// Sends `method path` (`/v1/...`) with the token (if any) and JSON `body`, for up to
    /// [`MAX_ROUNDS`] tries with backoff ([`CLUSTER_ROUNDS`] for a cluster). One address: to it. Several (a cluster): only to
    /// the node that says it is active, looked up with `sys/leader` ([`LEADER_RECHECK`]),
    /// never to a standby (whose own replica can serve a stale value: see
    /// [`LEADER_RECHECK`]); while no node is active (an election) the request waits for
    /// the next round. A transport failure, a redirect, a 5xx (sealed, no leader) or 429
    /// moves on to the next round (and, for a cluster, to a new lookup); anything else is
    /// the answer. `Err`: why nothing answered (no secrets in it).
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        if let Some((at, why)) = self.down.lock().ok().and_then(|d| d.clone())
            && at.elapsed() < DOWN_HOLD
        {
            return Err(format!(
                "{why} ({}s ago; not asked again for {}s)",
                at.elapsed().as_secs(),
                DOWN_HOLD.as_secs()
            ));
        }
        let cluster = self.addresses.len() > 1;
        let rounds = if cluster { CLUSTER_ROUNDS } else { MAX_ROUNDS };
        let mut why = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        for round in 0..rounds {
            if round > 0 {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let at = if cluster {
                match self.active() {
                    Ok(at) => at,
                    Err(e) => {
                        why.push(e);
                        continue;
                    }
                }
            } else {
                0
            };
            let address = &self.addresses[at];
            match self.once(address, method, path, token, body) {
                Ok(answer) if retryable(answer.status) => {
                    why.push(format!(
                        "{address} answered {}{}",
                        answer.status,
                        excerpt_suffix(&answer.body)
                    ));
                    self.lost_active();
                }
                Ok(answer) => {
                    if let Ok(mut down) = self.down.lock() {
                        *down = None;
                    }
                    return Ok(answer);
                }
                Err(e) => {
                    why.push(e);
                    self.lost_active();
                }
            }
        }
        why.dedup();
        let why = format!(
            "no Vault address answered {method} {path} after {rounds} tries: {}",
            why.join("; ")
        );
        if let Ok(mut down) = self.down.lock() {
            *down = Some((Instant::now(), why.clone()));
        }
        Err(why)
    }

    fn once(
        &self,
        address: &str,
        method: &str,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let url = format!("{address}{path}");
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            // Read-after-write through standbys: a standby forwards the request to the
            // active node instead of answering from a replica that may lag.
            .header("X-Vault-Inconsistent", "forward-active-node")
            .header("X-Vault-Request", "true");
        if let Some(token) = token {
            req = req.header("X-Vault-Token", token.expose());
        }
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let result = match body {
            Some(body) => req.body(body).map(|r| self.agent.run(r)),
            None => req.body(()).map(|r| self.agent.run(r)),
        };
        let mut resp = result
            .map_err(|e| format!("invalid request to {address}{path}: {e}"))?
            .map_err(|e| format!("{address}: {}", transport_reason(&e)))?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Ok(Answer {
                status,
                body: Zeroizing::new(Vec::new()),
            });
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| format!("{address}: reading the answer failed: {e}"))?;
        Ok(Answer {
            status,
            body: Zeroizing::new(bytes),
        })
    }
}

/// Whether a status means "try another address": a redirect (never followed), 429, 5xx.
fn retryable(status: u16) -> bool {
    (300..400).contains(&status) || status == 429 || status >= 500
}

fn transport_reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "no answer within vault.timeout".to_owned(),
        other => other.to_string(),
    }
}

fn excerpt_suffix(body: &[u8]) -> String {
    let e = error_excerpt(body);
    if e.is_empty() {
        String::new()
    } else {
        format!(" ({e})")
    }
}

/// The `errors` of an error answer, printable and short; never a success body.
pub(crate) fn error_excerpt(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let text = v
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// `s` as a JSON string literal, in a zeroizing buffer (for bodies that carry credentials).
pub(crate) fn json_string(s: &str, out: &mut Zeroizing<String>) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
