//! The `sandbox:` section: parsed, located errors, merged across files.

use std::time::Duration;

use agentsec_policy::Policy;
use agentsec_policy::sandbox::ShapeSetting;

const RULES: &str = "access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x]\n";

#[test]
fn settings_are_parsed() {
    let text = format!(
        "{RULES}sandbox:\n  timeout: 5s\n  max_memory: 64MiB\n  max_output: 256KiB\n  max_secret_calls: 100\n  on_credential_shape: fail\n"
    );
    let policy = Policy::from_sources(&[("p.yaml", text)]).unwrap();
    let s = policy.sandbox();
    assert_eq!(s.timeout, Some(Duration::from_secs(5)));
    assert_eq!(s.max_memory, Some(64 << 20));
    assert_eq!(s.max_output, Some(256 << 10));
    assert_eq!(s.max_secret_calls, Some(100));
    assert_eq!(s.on_credential_shape, Some(ShapeSetting::Fail));
    let more = format!(
        "{RULES}sandbox:\n  max_table_elements: 1000\n  max_instances: 20\n  max_component_size: 16MiB\n  max_path_len: 256\n"
    );
    let more = Policy::from_sources(&[("p.yaml", more)]).unwrap();
    let m = more.sandbox();
    assert_eq!(
        (m.max_table_elements, m.max_instances),
        (Some(1000), Some(20))
    );
    assert_eq!(
        (m.max_component_size, m.max_path_len),
        (Some(16 << 20), Some(256))
    );
    let none = Policy::from_sources(&[("p.yaml", RULES)]).unwrap();
    assert_eq!(none.sandbox().timeout, None);
}

#[test]
fn bad_settings_name_file_line_and_column() {
    let cases = [
        (
            "sandbox:\n  timeout: soon\n",
            "p.yaml:6:12: `sandbox.timeout`: `soon` is not a duration",
        ),
        (
            "sandbox:\n  max_memory: 64 parsecs\n",
            "p.yaml:6:15: `sandbox.max_memory`: unknown size unit",
        ),
        (
            "sandbox:\n  max_secret_calls: many\n",
            "p.yaml:6:21: `sandbox.max_secret_calls`: a whole number",
        ),
        (
            "sandbox:\n  on_credential_shape: maybe\n",
            "p.yaml:6:24: `sandbox.on_credential_shape`: use `redact` or `fail`",
        ),
        (
            "sandbox:\n  timout: 5s\n",
            "p.yaml:6:3: unknown key `timout`",
        ),
    ];
    for (tail, expected) in cases {
        let err = Policy::from_sources(&[("p.yaml", format!("{RULES}{tail}"))])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
    }
}

#[test]
fn files_merge_fields_and_conflicts_are_errors() {
    let a = format!("{RULES}sandbox:\n  timeout: 5s\n");
    let b = "access_control:\n  secrets:\n    b:\n      allowed_agents: [ops/y]\nsandbox:\n  max_secret_calls: 7\n";
    let merged = Policy::from_sources(&[("a.yaml", a.as_str()), ("b.yaml", b)]).unwrap();
    assert_eq!(merged.sandbox().timeout, Some(Duration::from_secs(5)));
    assert_eq!(merged.sandbox().max_secret_calls, Some(7));
    let c = "access_control:\n  secrets:\n    c:\n      allowed_agents: [ops/z]\nsandbox:\n  timeout: 1s\n";
    let err = Policy::from_sources(&[("a.yaml", a.as_str()), ("c.yaml", c)])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("c.yaml:6:3: `sandbox.timeout` is also set at a.yaml:6:3"),
        "{err}"
    );
}
