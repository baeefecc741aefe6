//! `hc_vault` master keys: the data key wrapped by a Vault (or OpenBao) Transit engine,
//! `PUT /v1/<engine>/encrypt/<key>` with `{"plaintext": base64(key)}` and
//! `PUT /v1/<engine>/decrypt/<key>` with `{"ciphertext": "vault:v1:…"}`, as sops does.
//!
//! **The address allowlist.** sops sends `VAULT_TOKEN` to the `vault_address` written in the
//! file's metadata, which the MAC does not cover: whoever can edit the file can have the token
//! sent to their server. Here the address (scheme, host and port, normalised) must equal
//! `VAULT_ADDR` or an entry of the allowlist ([`super::KeyServices`]: `SOPS_HC_VAULT_ALLOWLIST`
//! and configuration); anything else is refused **before any request is made**. The engine
//! path and key name, which become part of the URL, may hold only `[A-Za-z0-9._-]` segments,
//! so a file cannot point the token at another endpoint of an allowed server.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::KeyServices;
use super::http;

/// Longest `enc` accepted (`vault:v1:` + base64 of 12 + 33 + 16 bytes is ~90 characters; key
/// versions add a few digits).
const MAX_VAULT_CIPHERTEXT: usize = 4096;

/// A Transit key: the server's origin, the engine's mount path and the key's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TransitKey {
    pub(crate) address: String,
    pub(crate) engine_path: String,
    pub(crate) key_name: String,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `scheme://host:port` in lower case with the default port made explicit: the form addresses
/// are compared in. Userinfo, a query, a fragment or a path are refused.
pub(crate) fn normalize_origin(address: &str) -> Result<String, String> {
    let a = address.trim().trim_end_matches('/');
    let (scheme, rest) = a
        .split_once("://")
        .ok_or_else(|| format!("Vault address {a:?} has no http:// or https:// scheme"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => {
            return Err(format!(
                "Vault address {a:?}: only http and https are supported"
            ));
        }
    };
    if rest.is_empty()
        || rest.contains(['/', '@', '?', '#', '\\'])
        || rest.contains(char::is_whitespace)
    {
        return Err(format!(
            "Vault address {a:?} must be scheme://host[:port] (no path, user or query)"
        ));
    }
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse()
            .map_err(|_| format!("Vault address {a:?} has an invalid port"))
    };
    let (host, port) = if rest.starts_with('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("Vault address {a:?}: unclosed [ in the host"))?;
        let (host, tail) = rest.split_at(end + 1);
        match tail.strip_prefix(':') {
            Some(p) => (host, port_of(p)?),
            None if tail.is_empty() => (host, default_port),
            None => return Err(format!("Vault address {a:?} has an invalid port")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (rest, default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("Vault address {a:?} has no host"));
    }
    Ok(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

impl TransitKey {
    /// Parses sops' `--hc-vault-transit` URI: `https://vault:8200/v1/<engine>/keys/<key>`.
    pub(crate) fn from_uri(uri: &str) -> Result<TransitKey, String> {
        let uri = uri.trim();
        let bad = || {
            format!(
                "{uri:?} is not a Vault Transit key URI (expected \
                 https://vault.example:8200/v1/<engine path>/keys/<key name>)"
            )
        };
        let scheme_end = uri.find("://").ok_or_else(bad)? + 3;
        let path_start = uri[scheme_end..].find('/').ok_or_else(bad)? + scheme_end;
        let (address, path) = uri.split_at(path_start);
        let path = path.strip_prefix("/v1/").ok_or_else(bad)?;
        let (engine_path, key_name) = path.rsplit_once("/keys/").ok_or_else(bad)?;
        let key = TransitKey {
            address: address.to_owned(),
            engine_path: engine_path.trim_matches('/').to_owned(),
            key_name: key_name.trim_end_matches('/').to_owned(),
        };
        key.check_path()?;
        normalize_origin(&key.address)?;
        Ok(key)
    }

    fn check_path(&self) -> Result<(), String> {
        if !self.engine_path.split('/').all(valid_segment) {
            return Err(format!(
                "Vault engine path {:?} may hold only [A-Za-z0-9._-] segments separated by /",
                self.engine_path
            ));
        }
        if !valid_segment(&self.key_name) {
            return Err(format!(
                "Vault key name {:?} may hold only [A-Za-z0-9._-]",
                self.key_name
            ));
        }
        Ok(())
    }

    /// Refuses an address that is neither `VAULT_ADDR` nor allowlisted: the token is never
    /// sent to it. Checked before anything else, so a refused file makes no request at all.
    pub(crate) fn check_allowed(&self, services: &KeyServices) -> Result<String, String> {
        let origin = normalize_origin(&self.address)?;
        let allowed = services
            .vault_addr
            .iter()
            .chain(services.vault_allowlist.iter())
            .filter_map(|a| normalize_origin(a).ok())
            .any(|a| a == origin);
        if !allowed {
            return Err(format!(
                "the Vault address {:?} is not allowed: the file's vault_address is not \
                 covered by its MAC, so VAULT_TOKEN is sent only to VAULT_ADDR or an address in \
                 SOPS_HC_VAULT_ALLOWLIST (comma-separated) or `hc_vault_allowlist:` in \
                 agentsec.yaml. If you trust this server, add {origin} there",
                self.address
            ));
        }
        self.check_path()?;
        Ok(origin)
    }

    fn call(
        &self,
        op: &str,
        body: &[u8],
        services: &KeyServices,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        self.check_allowed(services)?;
        let token = services.vault_token.as_ref().ok_or_else(|| {
            "no Vault token: set VAULT_TOKEN (or write it to ~/.vault-token)".to_owned()
        })?;
        let url = format!(
            "{}/v1/{}/{op}/{}",
            self.address.trim_end_matches('/'),
            self.engine_path,
            self.key_name
        );
        let (status, resp) = http::send(
            "PUT",
            &url,
            &[
                ("X-Vault-Token", token.expose()),
                ("Content-Type", "application/json"),
            ],
            body,
        )?;
        if status != 200 {
            return Err(format!(
                "Vault answered {status} to {op} with key {}/{}: {}",
                self.engine_path,
                self.key_name,
                http::error_excerpt(&resp)
            ));
        }
        Ok(resp)
    }

    /// Wraps `payload`: the `vault:v1:…` ciphertext.
    pub(crate) fn encrypt(&self, payload: &[u8], services: &KeyServices) -> Result<String, String> {
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(payload));
        let body = Zeroizing::new(format!("{{\"plaintext\":\"{}\"}}", b64.as_str()).into_bytes());
        let resp = self.call("encrypt", &body, services)?;
        let v: serde_json::Value =
            serde_json::from_slice(&resp).map_err(|_| "Vault's answer is not JSON".to_owned())?;
        let ct = v
            .pointer("/data/ciphertext")
            .and_then(|c| c.as_str())
            .ok_or_else(|| "Vault's answer has no data.ciphertext".to_owned())?;
        Ok(ct.to_owned())
    }

    /// Unwraps a `vault:v1:…` ciphertext.
    pub(crate) fn decrypt(
        &self,
        enc: &str,
        services: &KeyServices,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        // The allowlist comes first, before the ciphertext is even looked at.
        self.check_allowed(services)?;
        if !enc.starts_with("vault:") || enc.len() > MAX_VAULT_CIPHERTEXT {
            return Err("enc is not a Vault Transit ciphertext (vault:v1:...)".to_owned());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "ciphertext": enc }))
            .map_err(|e| e.to_string())?;
        let resp = self.call("decrypt", &body, services)?;
        #[derive(serde::Deserialize)]
        struct Data {
            plaintext: String,
        }
        #[derive(serde::Deserialize)]
        struct Resp {
            data: Data,
        }
        let parsed: Resp = serde_json::from_slice(&resp)
            .map_err(|_| "Vault's answer has no data.plaintext".to_owned())?;
        let b64 = Zeroizing::new(parsed.data.plaintext);
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| "Vault's plaintext is not base64".to_owned())?;
        let key = Zeroizing::new(key);
        if key.is_empty() || key.len() > 64 {
            return Err("Vault's plaintext is not a data key".to_owned());
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_odd_addresses_refused() {
        assert_eq!(
            normalize_origin("HTTPS://Vault.Example/").unwrap(),
            "https://vault.example:443"
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8200").unwrap(),
            "http://127.0.0.1:8200"
        );
        assert_eq!(
            normalize_origin("http://[::1]:8200").unwrap(),
            "http://[::1]:8200"
        );
        for bad in [
            "vault:8200",
            "ftp://vault",
            "https://user@evil.example",
            "https://vault.example/prefix",
            "https://vault.example:99999",
            "https://vault.example?x=1",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn transit_uris_parse_and_paths_are_checked() {
        let k = TransitKey::from_uri("https://v:8200/v1/team/transit/keys/sops").unwrap();
        assert_eq!(
            (
                k.address.as_str(),
                k.engine_path.as_str(),
                k.key_name.as_str()
            ),
            ("https://v:8200", "team/transit", "sops")
        );
        for bad in [
            "https://v:8200/transit/keys/sops",
            "https://v:8200/v1/transit/sops",
            "https://v:8200/v1/../sys/keys/x",
            "https://v:8200/v1/transit/keys/a%2Fb",
        ] {
            assert!(TransitKey::from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_address_is_refused_before_the_token_is_looked_at() {
        let key = TransitKey {
            address: "http://127.0.0.1:1".to_owned(),
            engine_path: "transit".to_owned(),
            key_name: "sops".to_owned(),
        };
        let mut services = KeyServices::default();
        let err = key.decrypt("vault:v1:x", &services).unwrap_err();
        assert!(err.contains("is not allowed"), "{err}");
        services.allow_vault_address("http://127.0.0.1:1/");
        // Allowed now: it gets as far as asking for a token.
        let err = key.decrypt("vault:v1:x", &services).unwrap_err();
        assert!(err.contains("no Vault token"), "{err}");
    }
}
