//! Loading the audit chain key (`--audit-key FILE`, `audit_key:`, `--key FILE`).
//!
//! The key file is an age-encrypted file (armored or binary) whose plaintext
//! is the 32-byte HMAC key, raw or as 64 hex digits. Make one with:
//!
//! ```text
//! openssl rand -hex 32 | age -r age1... -a > audit-key.age
//! ```
//!
//! It is decrypted with the same age identities sops would use
//! (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`,
//! `~/.config/sops/age/keys.txt`) plus the project's `age_key_file`. The
//! plaintext only ever lives in zeroized buffers; errors never quote it.

use std::io::Read;
use std::path::Path;

use agentsec_audit::{ChainKey, MAX_KEY_PLAINTEXT};
use agentsec_sops::Identities;
use zeroize::Zeroizing;

/// Largest key file read, in bytes.
///
/// Reason: an age file wrapping a 32-byte key to a handful of recipients is
/// well under 4 KiB (armored); a larger file is the wrong file, and the bound
/// keeps a device or a log from being read into memory.
pub const MAX_KEY_FILE_SIZE: u64 = 64 * 1024;

/// Decrypts the audit key at `path` with the operator's identities from the
/// environment (as sops finds them) plus `extra_identities`, e.g.
/// `age_key_file` from agentsec.yaml.
///
/// # Errors
/// As [`load_with`], and an identity source that cannot be read.
pub fn load(path: &Path, extra_identities: Option<&Path>) -> Result<ChainKey, String> {
    let mut identities = Identities::from_process_env().map_err(|e| e.to_string())?;
    if let Some(file) = extra_identities {
        identities.add_file(file).map_err(|e| e.to_string())?;
    }
    load_with(path, &identities)
}

/// Decrypts the audit key at `path` with `identities`.
///
/// # Errors
/// A message naming the file and what is wrong (unreadable, too large, not
/// an age file, passphrase-protected, no matching identity, bad key format).
pub fn load_with(path: &Path, identities: &Identities) -> Result<ChainKey, String> {
    let shown = path.display();
    let mut ciphertext = Vec::new();
    agentsec_policy::bounded::read_file(path, MAX_KEY_FILE_SIZE, &mut ciphertext).map_err(|e| {
        match e {
            agentsec_policy::bounded::ReadError::TooLarge { .. } => format!(
                "audit key {shown}: larger than {MAX_KEY_FILE_SIZE} bytes, so not an age-encrypted key"
            ),
            other => format!("audit key {shown}: {other}"),
        }
    })?;
    decrypt(&ciphertext, identities).map_err(|why| format!("audit key {shown}: {why}"))
}

/// Decrypts an age file (armored or binary) holding a chain key.
fn decrypt(ciphertext: &[u8], identities: &Identities) -> Result<ChainKey, String> {
    let reader = age::armor::ArmoredReader::new(ciphertext);
    let decryptor = age::Decryptor::new(reader).map_err(|e| {
        format!("not an age-encrypted file ({e}); encrypt the key with `age -r RECIPIENT`")
    })?;
    if decryptor.is_scrypt() {
        return Err(
            "passphrase-protected age files are not supported; encrypt to an age recipient"
                .to_owned(),
        );
    }
    if identities.is_empty() {
        return Err(format!(
            "no age identity to decrypt it (searched {}); set SOPS_AGE_KEY_FILE or `age_key_file:`",
            identities.searched().join(", ")
        ));
    }
    let mut plaintext = decryptor
        .decrypt(identities.as_age())
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                "none of the available age identities can decrypt it".to_owned()
            }
            other => format!("age decryption failed: {other}"),
        })?;
    // Preallocated so that reading never reallocates (and leaves a copy).
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_KEY_PLAINTEXT + 1));
    (&mut plaintext)
        .take(MAX_KEY_PLAINTEXT as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("age decryption failed: {e}"))?;
    ChainKey::from_plaintext(&buf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn encrypt(plaintext: &[u8], recipient: &age::x25519::Recipient, armor: bool) -> Vec<u8> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .expect("one recipient");
        let mut out = Vec::new();
        let format = if armor {
            age::armor::Format::AsciiArmor
        } else {
            age::armor::Format::Binary
        };
        let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).expect("armor");
        let mut w = encryptor.wrap_output(armored).expect("wrap");
        w.write_all(plaintext).expect("write");
        w.finish().and_then(|a| a.finish()).expect("finish");
        out
    }

    #[test]
    fn decrypts_armored_and_binary_hex_and_raw() {
        let identity = age::x25519::Identity::generate();
        let mut ids = Identities::new();
        ids.add_key_text(&identity.to_string().expose_secret_for_test(), "test")
            .expect("identity");
        let raw = [5u8; 32];
        let a = decrypt(&encrypt(&raw, &identity.to_public(), false), &ids).expect("binary");
        let hex_text = format!("{}\n", "05".repeat(32));
        let b = decrypt(
            &encrypt(hex_text.as_bytes(), &identity.to_public(), true),
            &ids,
        )
        .expect("armored");
        assert_eq!(a.fingerprint(), b.fingerprint());

        let other = age::x25519::Identity::generate();
        let err = decrypt(&encrypt(&raw, &other.to_public(), true), &ids).expect_err("no key");
        assert!(err.contains("none of the available"), "{err}");
        let err = decrypt(b"05050505", &ids).expect_err("plain text");
        assert!(err.contains("not an age-encrypted file"), "{err}");
        let err =
            decrypt(&encrypt(b"short", &identity.to_public(), true), &ids).expect_err("bad format");
        assert!(err.contains("5 bytes"), "{err}");
    }

    /// `SecretString` to `String` for the test identity only.
    trait ExposeForTest {
        fn expose_secret_for_test(&self) -> String;
    }

    impl ExposeForTest for age::secrecy::SecretString {
        fn expose_secret_for_test(&self) -> String {
            use age::secrecy::ExposeSecret;
            self.expose_secret().to_owned()
        }
    }
}
