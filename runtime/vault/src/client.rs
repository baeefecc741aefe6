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

/// Rounds over all the addresses before a request is `unavailable`: three rounds ride out a
/// leader election (~2 s with `performance_multiplier = 1`) with the backoff below.
pub const MAX_ROUNDS: u32 = 3;

/// Pause before the second round; doubled before each later one (250 ms, 500 ms).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// After a request found no address answering in [`MAX_ROUNDS`] rounds, how long later
/// requests fail at once with that reason instead of trying again. Reason: a run that
/// reads ten secrets from a Vault that is down must cost one retry budget, not ten; five
/// seconds is short against an outage and longer than one run's reads.
pub const DOWN_HOLD: Duration = Duration::from_secs(5);

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
    /// The address that answered last: tried first.
    preferred: AtomicUsize,
    /// When no address last answered, and why ([`DOWN_HOLD`]).
    down: Mutex<Option<(Instant, String)>>,
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
        })
    }

    /// The address requests go to first (for audit records).
    pub(crate) fn address(&self) -> &str {
        &self.addresses[self.preferred.load(Ordering::Relaxed) % self.addresses.len()]
    }

    /// Sends `method path` (`/v1/...`) with the token (if any) and JSON `body`, to each
    /// address in turn, for up to [`MAX_ROUNDS`] rounds. A transport failure, a redirect (a
    /// standby that does not forward), a 5xx (sealed, no leader) or 429 moves on to the next
    /// address; anything else is the answer. `Err`: why no address answered (no secrets in it).
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
        let n = self.addresses.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut why = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            for i in 0..n {
                let at = (start + i) % n;
                let address = &self.addresses[at];
                match self.once(address, method, path, token, body) {
                    Ok(answer) if retryable(answer.status) => {
                        why.push(format!(
                            "{address} answered {}{}",
                            answer.status,
                            excerpt_suffix(&answer.body)
                        ));
                    }
                    Ok(answer) => {
                        self.preferred.store(at, Ordering::Relaxed);
                        if let Ok(mut down) = self.down.lock() {
                            *down = None;
                        }
                        return Ok(answer);
                    }
                    Err(e) => why.push(e),
                }
            }
        }
        why.dedup();
        let why = format!(
            "no Vault address answered {method} {path} after {MAX_ROUNDS} rounds: {}",
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
            Some(body) => req.body(body.to_vec()).map(|r| self.agent.run(r)),
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
