//! Arbitrary text as a policy file: parsing and validation must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = agentsec_policy::Policy::from_sources(&[("fuzz.yaml", text)]);
    }
});
