//! AWS Signature Version 4 for one request (the KMS JSON API), written out from AWS's
//! specification ("Create a signed AWS API request", docs.aws.amazon.com/IAM/latest/UserGuide/
//! create-signed-request.html): HMAC-SHA256 over a canonical request. The maintained crate,
//! `aws-sigv4`, brings the AWS SDK runtime (`aws-smithy-*`, two `http` versions) for what is
//! ~100 lines here; a unit test checks it against AWS's published `get-vanilla` vector.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Zeroizing::new(Vec::new()),
    };
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// What is signed.
pub(crate) struct SigningInput<'a> {
    pub(crate) method: &'a str,
    /// The absolute path (`/`), already URI-encoded.
    pub(crate) path: &'a str,
    /// Headers to sign (names in any case); `host` and `x-amz-date` must be among them.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: &'a [u8],
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of `x-amz-date`.
    pub(crate) amz_date: &'a str,
}

/// The `Authorization` header value.
pub(crate) fn authorization(input: &SigningInput<'_>, access_key_id: &str, secret: &str) -> String {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        input.method,
        input.path,
        hex::encode(Sha256::digest(input.body))
    );
    let date = &input.amz_date[..input.amz_date.len().min(8)];
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_secret = Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(&*hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, \
         Signature={signature}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's SigV4 test suite, `get-vanilla`: a GET of `/` to example.amazonaws.com.
    #[test]
    fn get_vanilla_vector() {
        let auth = authorization(
            &SigningInput {
                method: "GET",
                path: "/",
                headers: &[
                    ("Host", "example.amazonaws.com"),
                    ("X-Amz-Date", "20150830T123600Z"),
                ],
                body: b"",
                region: "us-east-1",
                service: "service",
                amz_date: "20150830T123600Z",
            },
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
