//! Arbitrary bytes through the SOPS reader in every format: parsing, metadata and the
//! data-key stage (with no identities, so decryption stops there), and the plaintext parser.
//! Nothing may panic, overflow the stack or allocate without bound. The body is
//! `agentsec_sops::fuzz::sops_parse`, shared with tests/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentsec_sops::fuzz::sops_parse(data));
