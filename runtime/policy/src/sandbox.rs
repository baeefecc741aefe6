//! `sandbox:`, the policy's say on how skills run: limits and what to do
//! with credential-shaped output. `agentsec-run` flags override it; it
//! overrides the built-in defaults.
//!
//! ```yaml
//! sandbox:
//!   timeout: 5s                  # wall-clock deadline
//!   max_memory: 64MiB            # linear memory, all memories of the run together
//!   max_output: 256KiB           # each of result, stdout, stderr
//!   max_secret_calls: 100        # get-secret + list-secrets per run
//!   on_credential_shape: fail    # or redact (the default)
//!   max_table_elements: 10000    # table elements, all tables of the run together
//!   max_instances: 20            # core instances per component
//!   max_component_size: 16MiB    # the component file
//!   max_path_len: 256            # bytes of a secret path (at most 1 KiB)
//!   max_input: 1MiB              # bytes of --input
//!   max_functions: 20000         # functions of a component, to compile it
//!   max_code_size: 4MiB          # bytes of function bodies, to compile it
//!   compile_timeout: 10s         # deadline for compiling (cache miss)
//!   max_redaction_bytes: 4MiB    # redaction needles for the values a run releases
//!   max_agent_runs: 2            # agentsec serve: runs of one agent id at once
//!   max_agent_rate: 50           # agentsec serve: runs one agent id may start per second
//! ```
//!
//! Several policy files may each set different fields; the same field in
//! two files is an error naming both, like a duplicated rule.

use std::time::Duration;

/// What the policy asks for when output contains a credential shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeSetting {
    /// Redact it (the default).
    Redact,
    /// Fail the run.
    Fail,
}

/// The `sandbox:` settings of a policy; `None` where no file sets a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sandbox {
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `max_memory`, bytes.
    pub max_memory: Option<u64>,
    /// `max_output`, bytes.
    pub max_output: Option<u64>,
    /// `max_secret_calls`.
    pub max_secret_calls: Option<u32>,
    /// `on_credential_shape`.
    pub on_credential_shape: Option<ShapeSetting>,
    /// `max_table_elements`.
    pub max_table_elements: Option<u64>,
    /// `max_instances`.
    pub max_instances: Option<u64>,
    /// `max_component_size`, bytes.
    pub max_component_size: Option<u64>,
    /// `max_path_len`, bytes.
    pub max_path_len: Option<u64>,
    /// `max_input`, bytes.
    pub max_input: Option<u64>,
    /// `max_functions`.
    pub max_functions: Option<u64>,
    /// `max_code_size`, bytes.
    pub max_code_size: Option<u64>,
    /// `max_redaction_bytes`, bytes of redaction needles per run.
    pub max_redaction_bytes: Option<u64>,
    /// `compile_timeout`.
    pub compile_timeout: Option<Duration>,
    /// `max_agent_runs` (`agentsec serve`: runs of one agent id at once).
    pub max_agent_runs: Option<u64>,
    /// `max_agent_rate` (`agentsec serve`: runs one agent id may start per second).
    pub max_agent_rate: Option<u64>,
}

/// Parses a duration: `2s`, `500ms`, `1m30s` (humantime syntax); zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); examples: 2s, 500ms, 1m"))?;
    if d.is_zero() {
        return Err("a timeout of zero would stop every skill before it starts".into());
    }
    Ok(d)
}

/// Parses a size: `64MiB`, `512KiB`, `1GiB`, `1048576`, `64MB` (decimal) or `64M` (binary).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size; examples: 64MiB, 512KiB, 1GiB"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(
            parse_size("64 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
