//! The shared body of the fuzz targets (fuzz/fuzz_targets/) and of the corpus replay test
//! (tests/tests/fuzz_corpus.rs), so that the two cannot drift apart. Not an API: hidden from
//! the docs and free to change with the targets.

use crate::{DecryptOptions, Format, Identities, decrypt_bytes, parse_plaintext};

/// Arbitrary bytes through the SOPS reader in every format: parsing, metadata and the
/// data-key stage (with no identities, so decryption stops there), and the plaintext parser.
/// Nothing may panic, overflow the stack or allocate without bound.
#[doc(hidden)]
pub fn sops_parse(data: &[u8]) {
    let ids = Identities::new();
    for format in [
        Format::Yaml,
        Format::Json,
        Format::Dotenv,
        Format::Ini,
        Format::Binary,
    ] {
        let _ = decrypt_bytes(data, format, "fuzz", &ids, DecryptOptions::default());
        let _ = parse_plaintext(data, format, "fuzz");
    }
}
