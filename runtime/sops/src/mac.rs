//! The SOPS MAC (SPEC section 5): SHA-512 over the plaintext bytes of every non-null leaf in
//! document order, stored encrypted under the data key with `lastmodified` as AAD.

use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::cipher::{DataKey, EncValue};
use crate::error::SopsError;
use crate::gofmt;

/// Accumulates the MAC while the tree is decrypted.
pub(crate) struct MacHasher {
    sha: Sha512,
    only_encrypted: bool,
}

impl MacHasher {
    /// A new hasher; with `mac_only_encrypted`, the hash starts with SHA-256("sops") and only
    /// encrypted leaves contribute.
    pub(crate) fn new(only_encrypted: bool) -> Self {
        let mut sha = Sha512::new();
        if only_encrypted {
            sha.update(Sha256::digest(b"sops"));
        }
        MacHasher {
            sha,
            only_encrypted,
        }
    }

    /// Feeds one leaf's `ToBytes`.
    pub(crate) fn leaf(&mut self, encrypted: bool, bytes: &[u8]) {
        if encrypted || !self.only_encrypted {
            self.sha.update(bytes);
        }
    }

    /// The MAC as sops writes it: 128 upper-case hex digits. Treated as secret: it is a
    /// function of the plaintext.
    pub(crate) fn finish(self) -> Zeroizing<String> {
        let digest = Zeroizing::new(self.sha.finalize().to_vec());
        Zeroizing::new(hex::encode_upper(&*digest))
    }
}

/// Checks the computed MAC against the stored one. Messages never include either value.
pub(crate) fn verify(
    computed: &str,
    stored: Option<&str>,
    lastmodified: Option<&str>,
    key: &DataKey,
    file: &str,
) -> Result<(), SopsError> {
    let stored = stored.ok_or_else(|| SopsError::MacMissing {
        file: file.to_owned(),
    })?;
    let undecryptable = || SopsError::MacUndecryptable {
        file: file.to_owned(),
    };
    // The AAD is `lastmodified` parsed and re-rendered by Go's RFC 3339 formatter.
    let aad = lastmodified
        .and_then(gofmt::parse_rfc3339)
        .map(|t| t.rfc3339())
        .ok_or_else(undecryptable)?;
    let enc = EncValue::parse(stored).map_err(|_| undecryptable())?;
    let plain = enc
        .decrypt(key, aad.as_bytes())
        .map_err(|_| undecryptable())?;
    if !constant_time_eq(&plain, computed.as_bytes()) {
        return Err(SopsError::MacMismatch {
            file: file.to_owned(),
        });
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mac_is_sha512_of_nothing() {
        let m = MacHasher::new(false).finish();
        assert!(m.starts_with("CF83E135"));
        assert!(m.ends_with("927DA3E"));
        let mut h = MacHasher::new(true);
        h.leaf(false, b"ignored");
        let only = h.finish();
        let mut expect = Sha512::new();
        expect.update(Sha256::digest(b"sops"));
        assert_eq!(*only, hex::encode_upper(expect.finalize()));
    }
}
