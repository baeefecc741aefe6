//! Exit codes of `agentsec-run`, documented in `--help` and the README.

/// The skill ran and returned a result (printed on stdout).
pub const OK: u8 = 0;
/// The skill ran and returned an error of its own, or called
/// `wasi:cli/exit` (with any status) instead of returning a result.
pub const SKILL_ERROR: u8 = 1;
/// Bad usage or configuration: flags, policy, secrets file (MAC, keys),
/// audit log, or a component that cannot be loaded. The skill did not run.
pub const CONFIG: u8 = 2;
/// The skill returned an error after the policy denied it a secret, or a
/// secret it declares it needs is not granted (it did not run): the fix is a
/// policy change (the denial on stderr names the rule).
pub const DENIED: u8 = 3;
/// A limit stopped the skill (deadline, memory, output, secret calls).
pub const LIMIT: u8 = 4;
/// The skill trapped (crashed), or the host stopped it because an audit
/// record could not be written (fail closed: nothing was released), or the
/// run's audit records could not be synced to disk (its output was withheld).
pub const TRAP: u8 = 5;

/// The skill's output contained a credential shape it was not given, and
/// the run was asked to fail in that case (`--on-credential-shape fail`).
pub const CREDENTIAL_IN_OUTPUT: u8 = 6;

/// The skill returned a result but it could not be written to stdout (a
/// closed pipe, a full disk): the caller did not get it.
pub const OUTPUT_FAILED: u8 = 7;

/// The table printed by `--help` and kept in the README.
pub const TABLE: &str = "\
Exit codes:
  0  the skill returned a result (on stdout)
  1  the skill returned an error, or exited (wasi:cli/exit, any status) without returning a result
  2  usage or configuration error (flags, policy, secrets file, keys, audit log, component); the skill did not run
  3  a policy denial: the skill returned an error after one, or a declared need is not granted and the skill did not run (stderr names the rule to change)
  4  a limit stopped the skill (--timeout, --max-memory, --max-output, --max-secret-calls, stack), or refused to compile it (--max-functions, --max-code-size, --compile-timeout)
  5  the skill trapped, an audit record could not be written (nothing was released), or the run's records could not be synced to disk (its output was withheld)
  6  the output contained a credential shape and --on-credential-shape is fail
  7  the result could not be written to stdout (e.g. a closed pipe); it is lost";
