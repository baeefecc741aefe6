//! The one HTTP client of the master keys (Vault Transit, AWS KMS): blocking `ureq` with
//! rustls, **no redirects** (a 3xx is an error: a standby's 307 must not carry the token to
//! another host), a deadline per request, a bounded response. TLS certificates are checked
//! against the system's trust store (`rustls-platform-verifier`: `/etc/ssl/certs`, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`), so a Vault behind a company CA works as it does for sops.

use std::time::Duration;

use zeroize::Zeroizing;

/// How long one request may take, connect to last byte. Transit and KMS answer in
/// milliseconds; 30 s covers a slow network without letting a stuck server hold a run.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body read. A Transit or KMS answer is a few hundred bytes; 1 MiB bounds
/// what a hostile or wrong server can make us hold.
const MAX_RESPONSE: u64 = 1024 * 1024;

/// Sends one request; the status and body of the answer. The body may hold key material
/// (a decrypted data key), so it is zeroized.
pub(crate) fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Zeroizing<Vec<u8>>), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.to_vec())
        .map_err(|e| format!("invalid request to {url}: {e}"))?;
    let mut resp = agent
        .run(req)
        .map_err(|e| format!("request to {url} failed: {e}"))?;
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        return Err(format!(
            "{url} answered with a redirect ({status}), which is not followed (a redirect \
             must not carry the credential elsewhere): use the final address"
        ));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| format!("reading the answer of {url} failed: {e}"))?;
    Ok((status, Zeroizing::new(bytes)))
}

/// A short, printable excerpt of an error answer (Vault's `errors`, AWS's `message`), never a
/// success body (which may hold key material).
pub(crate) fn error_excerpt(body: &[u8]) -> String {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return "a non-JSON answer".to_owned(),
    };
    let text = if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
        errs.iter()
            .filter_map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        let kind = v.get("__type").and_then(|t| t.as_str()).unwrap_or("");
        let msg = v
            .get("message")
            .or_else(|| v.get("Message"))
            .and_then(|m| m.as_str())
            .unwrap_or("");
        format!("{kind} {msg}").trim().to_owned()
    };
    let clean: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if clean.is_empty() {
        "no message".to_owned()
    } else {
        clean
    }
}
