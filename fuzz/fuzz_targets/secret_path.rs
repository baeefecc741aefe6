//! Arbitrary text as a secret path or rule key: what a guest passes to `get-secret` and
//! `list-secrets` on every call, and what keys policy rules. Parsing must not panic, and what
//! parses must have one canonical form that parses back to the same path. The body is
//! `agentsec_policy::fuzz::secret_path`, shared with tests/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentsec_policy::fuzz::secret_path(data));
