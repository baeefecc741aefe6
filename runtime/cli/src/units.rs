//! Parsing `--timeout 2s` and `--max-memory 64MiB` style values, with the
//! same syntax as a policy's `sandbox:` section (one implementation, in
//! `agentsec_policy::sandbox`).

use std::time::Duration;

/// `2s`, `500ms`, `1m30s` (humantime syntax); zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    agentsec_policy::sandbox::parse_duration(text)
}

/// `64MiB`, `512KiB`, `1GiB`, `1048576`, `64MB` (decimal units) or `64M` (binary).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bytes = agentsec_policy::sandbox::parse_size(text)?;
    usize::try_from(bytes).map_err(|_| format!("`{text}` is too large"))
}
