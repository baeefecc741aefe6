//! Arbitrary text as a policy file: parsing and validation must not panic. The body is
//! `agentsec_policy::fuzz::policy_parse`, shared with tests/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentsec_policy::fuzz::policy_parse(data));
