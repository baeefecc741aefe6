//! `kms` master keys: the data key wrapped by AWS KMS (`TrentService.Encrypt` / `.Decrypt`,
//! JSON 1.1 protocol, SigV4-signed), with the key's encryption context, as sops does.
//!
//! The endpoint is `AWS_ENDPOINT_URL_KMS`, else `AWS_ENDPOINT_URL`, else
//! `https://kms.<region>.amazonaws.com` with the region taken from the ARN (checked to be a
//! region name, so a file cannot choose the host). Assuming the key's `role` is not supported.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{KeyServices, http, sigv4};

/// Longest `enc` accepted: a KMS ciphertext blob for 33 bytes is ~200 bytes of base64.
const MAX_KMS_CIPHERTEXT: usize = 8192;

/// An AWS KMS key to wrap a data key with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// The key (or alias) ARN: `arn:aws:kms:<region>:<account>:key/<id>`.
    pub arn: String,
    /// A role to assume first (`ARN+ROLE` in sops' syntax); not supported here.
    pub role: Option<String>,
    /// The encryption context (`--encryption-context k:v,...`), in order.
    pub context: Vec<(String, String)>,
    /// The AWS profile whose credentials to use (`aws_profile`).
    pub aws_profile: Option<String>,
}

impl KmsKey {
    /// A key from sops' `--kms` syntax: `ARN` or `ARN+ROLE_ARN`.
    pub fn parse(text: &str, context: Vec<(String, String)>) -> KmsKey {
        let (arn, role) = match text.trim().split_once('+') {
            Some((a, r)) => (a.to_owned(), Some(r.to_owned())),
            None => (text.trim().to_owned(), None),
        };
        KmsKey {
            arn,
            role,
            context,
            aws_profile: None,
        }
    }

    /// How errors name it.
    pub(crate) fn label(&self) -> &str {
        &self.arn
    }

    fn region(&self) -> Result<&str, String> {
        let parts: Vec<&str> = self.arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _partition, "kms", region, _account, _rest]
                if !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                Ok(region)
            }
            _ => Err(format!(
                "{:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
                self.arn
            )),
        }
    }

    fn call(
        &self,
        target: &str,
        body: &[u8],
        services: &KeyServices,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        if let Some(role) = &self.role {
            return Err(format!(
                "assuming the role {role:?} for a KMS key is not supported: remove `+ROLE` \
                 (or the key's `role`) and provide credentials that may use the key"
            ));
        }
        let region = self.region()?;
        let creds = services.aws_credentials(self.aws_profile.as_deref())?;
        let endpoint = services
            .aws_endpoint_kms
            .clone()
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/');
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("the KMS endpoint {endpoint:?} has no host"))?;
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let target = format!("TrentService.{target}");
        let mut signed: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-amz-json-1.1"),
            ("host", host),
            ("x-amz-date", &amz_date),
            ("x-amz-target", &target),
        ];
        if let Some(t) = &creds.session_token {
            signed.push(("x-amz-security-token", t.expose()));
        }
        let auth = sigv4::authorization(
            &sigv4::SigningInput {
                method: "POST",
                path: "/",
                headers: &signed,
                body,
                region,
                service: "kms",
                amz_date: &amz_date,
            },
            &creds.access_key_id,
            creds.secret_access_key.expose(),
        );
        let mut headers: Vec<(&str, &str)> =
            signed.into_iter().filter(|(k, _)| *k != "host").collect();
        headers.push(("authorization", &auth));
        let (status, resp) = http::send("POST", &format!("{endpoint}/"), &headers, body)?;
        if status != 200 {
            return Err(format!(
                "KMS answered {status} to {target} for {}: {}",
                self.arn,
                http::error_excerpt(&resp)
            ));
        }
        Ok(resp)
    }

    fn context_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.context
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }

    /// Wraps `payload`: the base64 `CiphertextBlob`.
    pub(crate) fn encrypt(&self, payload: &[u8], services: &KeyServices) -> Result<String, String> {
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(payload));
        let mut body = serde_json::json!({ "KeyId": self.arn, "Plaintext": "" });
        if !self.context.is_empty() {
            body["EncryptionContext"] = self.context_json();
        }
        // The plaintext goes in last, into a zeroized buffer only.
        let head = serde_json::to_string(&body).map_err(|e| e.to_string())?;
        let body = Zeroizing::new(
            head.replacen(
                "\"Plaintext\":\"\"",
                &format!("\"Plaintext\":\"{}\"", b64.as_str()),
                1,
            )
            .into_bytes(),
        );
        let resp = self.call("Encrypt", &body, services)?;
        let v: serde_json::Value =
            serde_json::from_slice(&resp).map_err(|_| "KMS's answer is not JSON".to_owned())?;
        v.get("CiphertextBlob")
            .and_then(|c| c.as_str())
            .map(str::to_owned)
            .ok_or_else(|| "KMS's answer has no CiphertextBlob".to_owned())
    }

    /// Unwraps a base64 `CiphertextBlob`.
    pub(crate) fn decrypt(
        &self,
        enc: &str,
        services: &KeyServices,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        if enc.is_empty() || enc.len() > MAX_KMS_CIPHERTEXT {
            return Err("enc is not a KMS ciphertext blob".to_owned());
        }
        let mut body = serde_json::json!({ "CiphertextBlob": enc, "KeyId": self.arn });
        if !self.context.is_empty() {
            body["EncryptionContext"] = self.context_json();
        }
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let resp = self.call("Decrypt", &body, services)?;
        #[derive(serde::Deserialize)]
        struct Resp {
            #[serde(rename = "Plaintext")]
            plaintext: String,
        }
        let parsed: Resp = serde_json::from_slice(&resp)
            .map_err(|_| "KMS's answer has no Plaintext".to_owned())?;
        let b64 = Zeroizing::new(parsed.plaintext);
        let key = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| "KMS's Plaintext is not base64".to_owned())?,
        );
        if key.is_empty() || key.len() > 64 {
            return Err("KMS's Plaintext is not a data key".to_owned());
        }
        Ok(key)
    }
}
