//! Keyed mode: the operator's chain key and the HMAC that replaces SHA-256.
//!
//! With a [`ChainKey`], an entry's tag is `HMAC-SHA256(key, canonical form)`
//! and is written as `"hmac"` instead of `"hash"`, so that someone who can
//! rewrite the file but does not hold the key cannot recompute the chain.
//! The key itself never appears in the log, an error or a `Debug` output.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// Length of a chain key, in bytes.
///
/// Reason: HMAC-SHA256 gains nothing from a key longer than its 32-byte
/// output, and a fixed length makes a truncated or padded key file an error
/// instead of a silently different key.
pub const CHAIN_KEY_LEN: usize = 32;

/// The largest key file plaintext accepted, in bytes: 64 hex digits plus
/// generous surrounding whitespace.
///
/// Reason: the plaintext is read into memory before it is checked; a key file
/// is tiny, so anything larger is the wrong file.
pub const MAX_KEY_PLAINTEXT: usize = 256;

/// The secret key of a keyed audit chain: 32 bytes, zeroized on drop.
///
/// No `Display`, no `Serialize`, and `Debug` prints only `ChainKey([REDACTED])`.
///
/// ```
/// use agentsec_audit::ChainKey;
///
/// let key = ChainKey::from_plaintext(b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n")?;
/// assert_eq!(format!("{key:?}"), "ChainKey([REDACTED])");
/// # Ok::<(), agentsec_audit::KeyError>(())
/// ```
pub struct ChainKey {
    bytes: Zeroizing<[u8; CHAIN_KEY_LEN]>,
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([REDACTED])")
    }
}

impl ChainKey {
    /// The key from the decrypted content of a key file: either exactly
    /// [`CHAIN_KEY_LEN`] raw bytes, or 64 hex digits (either case) with
    /// optional surrounding ASCII whitespace (as `openssl rand -hex 32`
    /// prints them).
    ///
    /// # Errors
    /// [`KeyError::Format`] for anything else; the message gives the length,
    /// never the content.
    pub fn from_plaintext(plaintext: &[u8]) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; CHAIN_KEY_LEN]);
        if plaintext.len() > MAX_KEY_PLAINTEXT {
            return Err(KeyError::Format {
                len: plaintext.len(),
            });
        }
        let trimmed = plaintext.trim_ascii();
        if trimmed.len() == 2 * CHAIN_KEY_LEN && trimmed.iter().all(u8::is_ascii_hexdigit) {
            hex::decode_to_slice(trimmed, bytes.as_mut_slice()).map_err(|_| KeyError::Format {
                len: plaintext.len(),
            })?;
        } else if plaintext.len() == CHAIN_KEY_LEN {
            bytes.copy_from_slice(plaintext);
        } else {
            return Err(KeyError::Format {
                len: plaintext.len(),
            });
        }
        Ok(Self { bytes })
    }

    /// A short, non-secret fingerprint of the key: the first 8 bytes of
    /// `SHA-256("agentsec-audit-key-id\0" || key)`, as 16 hex digits. Lets an
    /// operator tell keys apart without revealing them.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"agentsec-audit-key-id\0");
        hasher.update(self.bytes.as_slice());
        hex::encode(&hasher.finalize()[..8])
    }

    /// Lowercase hex `HMAC-SHA256(key, bytes)`.
    pub(crate) fn tag_hex(&self, bytes: &[u8]) -> String {
        hex::encode(self.mac(bytes).finalize().into_bytes())
    }

    /// Whether `hex_tag` is the HMAC of `bytes`, compared in constant time.
    pub(crate) fn tag_matches(&self, bytes: &[u8], hex_tag: &str) -> bool {
        let mut tag = [0u8; 32];
        if hex::decode_to_slice(hex_tag, &mut tag).is_err() {
            return false;
        }
        self.mac(bytes).verify_slice(&tag).is_ok()
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(bytes);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_raw_forms_give_the_same_key() -> Result<(), KeyError> {
        let raw: Vec<u8> = (0u8..32).collect();
        let hex_text = format!("  {}\n", hex::encode(&raw));
        let a = ChainKey::from_plaintext(&raw)?;
        let b = ChainKey::from_plaintext(hex_text.as_bytes())?;
        let c = ChainKey::from_plaintext(hex::encode_upper(&raw).as_bytes())?;
        assert_eq!(a.tag_hex(b"x"), b.tag_hex(b"x"));
        assert_eq!(a.fingerprint(), c.fingerprint());
        assert!(a.tag_matches(b"x", &b.tag_hex(b"x")));
        assert!(!a.tag_matches(b"y", &b.tag_hex(b"x")));
        assert!(!a.tag_matches(b"x", "zz"));
        Ok(())
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() -> Result<(), KeyError> {
        // RFC 4231 test case 2 uses a 4-byte key; pad-free equivalence does not
        // hold for 32 bytes, so check against an independent computation:
        // HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)).
        let raw = [0x0bu8; 32];
        let key = ChainKey::from_plaintext(&raw)?;
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= raw[i];
            opad[i] ^= raw[i];
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(b"Hi There")
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        assert_eq!(key.tag_hex(b"Hi There"), hex::encode(outer));
        Ok(())
    }

    #[test]
    fn wrong_sizes_are_refused_without_quoting() {
        for bad in [
            &b""[..],
            &[1u8; 31][..],
            &[1u8; 33][..],
            &[b'a'; 63][..],
            &[b'g'; 64][..],
        ] {
            let err = ChainKey::from_plaintext(bad).expect_err("refused");
            assert!(!err.to_string().contains("aaaa"), "{err}");
        }
        assert!(ChainKey::from_plaintext(&[b' '; 300]).is_err());
    }
}
