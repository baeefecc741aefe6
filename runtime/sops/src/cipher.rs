//! SOPS value encryption: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` with AES-256-GCM
//! (SPEC section 2).

use std::sync::LazyLock;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::{U12, U16, U32};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};
use base64::Engine as _;
use zeroize::Zeroizing;

/// The 32-byte data key of a SOPS file.
pub(crate) struct DataKey(pub(crate) Zeroizing<[u8; 32]>);

/// A parsed `ENC[...]` value.
pub(crate) struct EncValue {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    /// The `type:` field (`str`, `int`, `float`, `bool`, `time`, `comment`, `bytes`).
    pub(crate) kind: String,
}

/// Why a value could not be decrypted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CipherError {
    /// Not of the form `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, or bad base64, or an IV or
    /// tag of an unusable length.
    Format,
    /// AES-GCM authentication failed.
    Auth,
}

// Go: `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]` - anchored at the start only,
// greedy groups. Matched on bytes without Unicode (`(?-u)`): on UTF-8 text, "any byte but \n"
// and "any character but \n" accept the same strings, and every group ends at an ASCII
// delimiter, so the groups are the ones Go finds; compiling it is ~8x cheaper (a cost every
// `agentsec-run` pays once).
static ENC_RE: LazyLock<Option<regex::bytes::Regex>> = LazyLock::new(|| {
    regex::bytes::Regex::new(r"(?-u)^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").ok()
});

/// Whether `s` has the shape of an encrypted value.
#[cfg(test)]
fn looks_encrypted(s: &str) -> bool {
    ENC_RE.as_ref().is_some_and(|re| re.is_match(s.as_bytes()))
}

impl EncValue {
    /// Parses the `ENC[...]` text (exactly as sops' regex does).
    pub(crate) fn parse(s: &str) -> Result<EncValue, CipherError> {
        let re = ENC_RE.as_ref().ok_or(CipherError::Format)?;
        let caps = re.captures(s.as_bytes()).ok_or(CipherError::Format)?;
        let field = |i: usize| {
            caps.get(i)
                .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
                .ok_or(CipherError::Format)
        };
        let b64 = |t: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| CipherError::Format)
        };
        Ok(EncValue {
            data: b64(field(1)?)?,
            iv: b64(field(2)?)?,
            tag: b64(field(3)?)?,
            kind: field(4)?.to_owned(),
        })
    }

    /// Decrypts with `key`, authenticating `aad`. The nonce size is the IV length found in the
    /// file (sops writes 32 bytes; 12 and 16 are accepted too).
    pub(crate) fn decrypt(
        &self,
        key: &DataKey,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let mut buf = Zeroizing::new(self.data.clone());
        let tag =
            Tag::<U16>::from_exact_iter(self.tag.iter().copied()).ok_or(CipherError::Format)?;
        let key_bytes: &[u8; 32] = &key.0;
        let res = match self.iv.len() {
            32 => AesGcm::<Aes256, U32>::new(key_bytes.into()).decrypt_in_place_detached(
                Nonce::<U32>::from_slice(&self.iv),
                aad,
                &mut buf,
                &tag,
            ),
            16 => AesGcm::<Aes256, U16>::new(key_bytes.into()).decrypt_in_place_detached(
                Nonce::<U16>::from_slice(&self.iv),
                aad,
                &mut buf,
                &tag,
            ),
            12 => AesGcm::<Aes256, U12>::new(key_bytes.into()).decrypt_in_place_detached(
                Nonce::<U12>::from_slice(&self.iv),
                aad,
                &mut buf,
                &tag,
            ),
            _ => return Err(CipherError::Format),
        };
        res.map_err(|_| CipherError::Auth)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes regex finds exactly the groups Go's (Unicode) regex finds.
    #[test]
    fn byte_regex_groups_equal_unicode_regex_groups() {
        let unicode =
            regex::Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").unwrap();
        let bytes = ENC_RE.as_ref().unwrap();
        for text in [
            "ENC[AES256_GCM,data:QQ==,iv:aXY=,tag:dGFn,type:str]",
            "ENC[AES256_GCM,data:é,iv:ü,tag:,iv:x,tag:y,type:int]trailing",
            "ENC[AES256_GCM,data:a,iv:b,tag:c,type:d]],type:e]",
            "ENC[AES256_GCM,data:日本,iv:語,tag:😀,type:str]",
            "ENC[AES256_GCM,data:a\n,iv:b,tag:c,type:d]",
            "ENC[AES256_GCM,data:,iv:b,tag:c,type:d]",
            "xENC[AES256_GCM,data:a,iv:b,tag:c,type:d]",
        ] {
            let want: Option<Vec<String>> = unicode
                .captures(text)
                .map(|c| (1..5).map(|i| c[i].to_owned()).collect());
            let got: Option<Vec<String>> = bytes.captures(text.as_bytes()).map(|c| {
                (1..5)
                    .map(|i| String::from_utf8(c[i].to_vec()).unwrap())
                    .collect()
            });
            assert_eq!(got, want, "{text:?}");
        }
    }

    /// Encrypts like sops does, for tests: AES-256-GCM with a 32-byte nonce.
    fn seal(key: &[u8; 32], iv: &[u8; 32], aad: &[u8], pt: &[u8]) -> String {
        let cipher = AesGcm::<Aes256, U32>::new(key.into());
        let mut buf = pt.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(Nonce::<U32>::from_slice(iv), aad, &mut buf)
            .unwrap_or_default();
        let e = base64::engine::general_purpose::STANDARD;
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
            e.encode(&buf),
            e.encode(iv),
            e.encode(tag)
        )
    }

    #[test]
    fn gcm_with_32_byte_nonce_round_trips_and_authenticates_aad() {
        let key = [7u8; 32];
        let iv = [9u8; 32];
        let enc = seal(&key, &iv, b"a:b:", b"hello");
        let v = EncValue::parse(&enc).ok();
        let dk = DataKey(Zeroizing::new(key));
        let pt = v.as_ref().map(|v| v.decrypt(&dk, b"a:b:"));
        assert_eq!(
            pt.map(|r| r.map(|b| b.to_vec())),
            Some(Ok(b"hello".to_vec()))
        );
        let wrong = v.as_ref().map(|v| v.decrypt(&dk, b"a:c:").err());
        assert_eq!(wrong, Some(Some(CipherError::Auth)));
    }

    #[test]
    fn decrypts_a_real_sops_value() {
        // Value `hello` of tests/testdata/.../generated/enc/basic.yaml needs the real data key,
        // which the integration tests cover; here: the shape checks.
        assert!(EncValue::parse("ENC[AES256_GCM,data:Ag==,iv:Ag==,tag:Ag==,type:str]").is_ok());
        assert!(EncValue::parse("ENC[AES256_GCM,data:!!,iv:Ag==,tag:Ag==,type:str]").is_err());
        assert!(EncValue::parse("plain").is_err());
        assert!(looks_encrypted(
            "ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]"
        ));
        assert!(!looks_encrypted(
            "xENC[AES256_GCM,data:a,iv:b,tag:c,type:str]"
        ));
    }
}
