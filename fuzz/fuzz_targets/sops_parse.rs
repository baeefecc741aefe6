//! Arbitrary bytes through the SOPS reader in every format: parsing, metadata and the
//! data-key stage (with no identities, so decryption stops there), and the plaintext parser.
//! Nothing may panic, overflow the stack or allocate without bound.
#![no_main]

use agentsec_sops::{DecryptOptions, Format, Identities, decrypt_bytes, parse_plaintext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
