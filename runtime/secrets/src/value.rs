//! [`SecretValue`]: the bytes of one secret, zeroized on drop, never printed.

use std::sync::Arc;

use zeroize::Zeroizing;

/// The plaintext bytes of one secret (a leaf of a SOPS file, a Vault field, ...).
///
/// The bytes are wiped when the value (its last handle, see [`SecretValue::duplicate`]) is
/// dropped. There is no `Debug`, no `Display`, no `Serialize` and no `Clone`, so a value
/// cannot end up in a log line, an error or a wire format by accident; a type that holds
/// one writes its own `Debug` that shows at most [`SecretValue::len`]. The one way to the
/// bytes is [`SecretValue::expose_secret`], so every place that releases a secret is easy to
/// find.
pub struct SecretValue(Arc<Zeroizing<Vec<u8>>>);

impl SecretValue {
    /// Wraps bytes that are already in a zeroizing buffer (no copy is made).
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretValue(Arc::new(bytes))
    }

    /// Copies `bytes` into a new zeroizing buffer. The caller still owns (and should wipe)
    /// the original.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        SecretValue::new(Zeroizing::new(bytes.to_vec()))
    }

    /// A second handle on the same bytes, which are wiped when the last
    /// handle is dropped. No copy is made: the bytes cannot be changed
    /// through a handle. Deliberately not `Clone`, so that every new
    /// holder of a secret is a visible call.
    pub fn duplicate(&self) -> SecretValue {
        SecretValue(Arc::clone(&self.0))
    }

    /// The plaintext. Call this only where the value leaves the host (into guest memory, into
    /// the environment of a child the operator asked for, ...).
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes (not secret: the file's ciphertext length reveals it anyway).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
