//! The `probe` test skill against the demo secrets and the end-to-end policy: the
//! planted values and the helpers that the end-to-end, hostile, audit and pooling tests
//! share.

use serde_json::{Value, json};

use crate::{Run, Scratch, root};

/// The demo's production database password (`demo/secrets.yaml`), planted so that tests
/// can prove it never leaks.
pub const PROD_PASSWORD: &str = "Demo-Prod-Pg-7f3K9x2QvL8wZr4T";

/// Where [`PROD_PASSWORD`] is.
pub const PROD_PASSWORD_PATH: &str = "databases.postgres.production.password";

/// Runs `probe` for `agent` with `ops` (passed as `--input @FILE`) against
/// `demo/secrets.yaml` and `tests/testdata/policies/e2e.yaml`, with `extra` flags.
pub fn probe_demo(s: &Scratch, agent: &str, ops: Value, extra: &[&str]) -> Run {
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    let input_arg = format!("@{}", input.display());
    let mut args = vec!["--input", input_arg.as_str()];
    args.extend_from_slice(extra);
    s.run_skill(
        "probe",
        agent,
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &args,
    )
}

/// The per-operation results of a probe run that exited 0.
pub fn probe_results(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("probe output is a JSON array: {run:?}"))
}

/// The last audit record is a run-level event whose detail mentions `what`.
pub fn assert_run_event(s: &Scratch, what: &str) {
    let records = s.audit_records();
    let last = records.last().expect("an audit record");
    assert_eq!(last["access_type"], "run", "{last}");
    assert_eq!(last["secret_path"], "", "{last}");
    assert!(
        last["detail"].as_str().unwrap_or_default().contains(what),
        "{last}"
    );
}
