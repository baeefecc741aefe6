//! The exit codes of `agentsec-run` and `agentsec`: one table per tool (and per `agentsec`
//! command group), the single source for `--help` and the README's tables (a test compares
//! them). Which error maps to which code is decided in one place, [`crate::error`].

/// One row of an exit-code table. The meaning is written as in the README (Markdown
/// backticks); `--help` shows it without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode {
    /// The process exit status.
    pub code: u8,
    /// What it means.
    pub meaning: &'static str,
}

const fn row(code: u8, meaning: &'static str) -> ExitCode {
    ExitCode { code, meaning }
}

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

/// `agentsec-run`.
pub const RUN: &[ExitCode] = &[
    row(OK, "the skill returned a result (on stdout)"),
    row(
        SKILL_ERROR,
        "the skill returned an error, or exited (`wasi:cli/exit`, any status) without returning a result",
    ),
    row(
        CONFIG,
        "usage or configuration error (flags, policy, secrets file, keys, audit log, component, a daemon that cannot be reached with `--connect`); the skill did not run",
    ),
    row(
        DENIED,
        "a policy denial: the skill returned an error after one, a declared need is not granted, or your OS user may not act as the agent id (`agents:`); in the last two the skill did not run (stderr names the rule to change)",
    ),
    row(
        LIMIT,
        "a limit stopped the skill (`--timeout`, `--max-memory`, `--max-output`, `--max-secret-calls`, `--max-redaction-bytes`, stack), refused to compile it (`--max-functions`, `--max-code-size`, `--compile-timeout`), or refused to start it (`agentsec serve`: the agent's run rate, a shutdown)",
    ),
    row(
        TRAP,
        "the skill trapped, an audit record could not be written (nothing was released), or the run's records could not be synced to disk (its output was withheld)",
    ),
    row(
        CREDENTIAL_IN_OUTPUT,
        "the output contained a credential shape and `--on-credential-shape fail` was given",
    ),
    row(
        OUTPUT_FAILED,
        "the result could not be written to stdout (e.g. a closed pipe); it is lost",
    ),
];

/// Codes shared by `agentsec policy` and `agentsec audit`.
pub mod admin {
    /// Success.
    pub const OK: u8 = 0;
    /// `policy`: a policy error, access that widens (`diff`), a component no
    /// entry names (`pin`). `audit`: the chain is broken or cannot be verified.
    pub const FAILED: u8 = 1;
    /// Usage: bad arguments, a file that cannot be read, a closed stdout.
    pub const USAGE: u8 = 2;
}

/// `agentsec skill`.
pub const SKILL: &[ExitCode] = &[
    row(
        admin::OK,
        "every component was compiled into the cache (or was there already)",
    ),
    row(
        admin::FAILED,
        "a component could not be loaded (not a component, over a limit, or it does not link: stderr names it and why); the others were still compiled",
    ),
    row(
        admin::USAGE,
        "usage error (arguments, a FILE or DIR that cannot be read or holds no `.wasm`, a cache directory that cannot be used)",
    ),
];

/// `agentsec serve`.
pub const SERVE: &[ExitCode] = &[
    row(
        admin::OK,
        "stopped by SIGTERM or SIGINT after the runs in progress finished (`--check`: the configuration is valid)",
    ),
    row(
        admin::USAGE,
        "usage or configuration error (arguments, policy, secrets, keys, audit log, skills directory, a socket that is in use or cannot be created)",
    ),
];

/// `agentsec mcp`.
pub const MCP: &[ExitCode] = &[
    row(
        admin::OK,
        "the client closed the session (stdio), or SIGTERM or SIGINT stopped the server",
    ),
    row(
        admin::USAGE,
        "usage or configuration error (arguments, policy, secrets, keys, audit log, skills directory, an address or socket that cannot be used, a daemon that cannot be reached)",
    ),
];

/// `agentsec token`.
pub const TOKEN: &[ExitCode] = &[
    row(admin::OK, "the token was made and printed"),
    row(admin::USAGE, "usage error (arguments, a closed stdout)"),
];

/// `agentsec ssh-agent`.
pub const SSH_AGENT: &[ExitCode] = &[
    row(admin::OK, "stopped by SIGTERM or SIGINT"),
    row(
        admin::USAGE,
        "usage or configuration error (arguments, policy, secrets, keys, audit log, a socket that is in use or cannot be created), or your OS user may not act as the agent id (`agents:`)",
    ),
];

/// `agentsec ssh`: ssh's own status, or one of `agentsec exec`'s codes when ssh was not
/// started.
pub const SSH: &[ExitCode] = &[
    row(OK, "the remote command exited 0"),
    row(
        exec::DENIED,
        "the policy refused a `--secret-stdin` path, or your OS user may not act as the agent id (`agents:`): ssh was not started (or the remote command exited 3)",
    ),
    row(
        exec::CONFIG,
        "bad arguments, or the policy, secrets, keys, audit log or agent socket could not be set up",
    ),
    row(exec::CANNOT_RUN, "ssh cannot be run"),
    row(exec::NOT_FOUND, "ssh was not found on PATH"),
    row(
        255,
        "ssh failed (connection, host key, authentication: no key the agent serves was accepted)",
    ),
];

/// `agentsec policy`.
pub const POLICY: &[ExitCode] = &[
    row(
        admin::OK,
        "ok (`check`: warnings only; `diff`: no access widens; `pin`: every component pinned)",
    ),
    row(
        admin::FAILED,
        "a policy error (`file:line:column` on stderr); `diff`: some access widens; `pin`: a component matches no entry",
    ),
    row(
        admin::USAGE,
        "usage error (arguments, a secrets file that cannot be read or is not a SOPS file, a refused agentsec.yaml, a closed stdout)",
    ),
];

/// `agentsec audit`.
pub const AUDIT: &[ExitCode] = &[
    row(
        admin::OK,
        "the chain is intact (`query`: and the matching entries were printed)",
    ),
    row(
        admin::FAILED,
        "the chain is broken or cannot be verified (stderr names the first bad `seq` and what is wrong); `query` still prints what matches, unverified; `ship`: records are left unshipped (a sink is down or refused them); `--from`: the store cannot be read, or a host's chain in it is broken",
    ),
    row(
        admin::USAGE,
        "usage error (arguments, a log or key that cannot be read, a refused agentsec.yaml, a closed stdout)",
    ),
];

/// `agentsec secrets`: sops' codes where they overlap (`SopsError::exit_code` for the
/// library's errors).
pub mod secrets {
    /// Success (also `edit` when nothing changed).
    pub const OK: u8 = 0;
    /// A general failure (sops' 1).
    pub const FAILED: u8 = 1;
    /// Bad arguments, or FILE or stdin could not be read or parsed.
    pub const READ: u8 = 2;
    /// The output or FILE could not be written.
    pub const WRITE: u8 = 3;
    /// The current directory cannot be read, or `.sops.yaml` is invalid (sops' 5).
    pub const CONFIG: u8 = 5;
    /// A malformed `--encryption-context` (sops' 6).
    pub const KMS_CONTEXT: u8 = 6;
    /// A `set`/`unset` path or `set` value that does not parse (sops' 7).
    pub const BAD_PATH: u8 = 7;
    /// No recipients: no `.sops.yaml`, no creation rule, no `--age` (sops' 61).
    pub const NO_RECIPIENTS: u8 = 61;
    /// FILE does not exist (sops' 100).
    pub const NOT_FOUND: u8 = 100;
    /// No editor could be started (sops' 201).
    pub const NO_EDITOR: u8 = 201;
}

/// `agentsec exec`'s own codes; otherwise it exits with the child's status (128 + N when
/// the child was killed by signal N), so a child's code may coincide with one of these.
pub mod exec {
    /// The policy refused a path: the command was not started (as `agentsec-run`'s denied).
    pub const DENIED: u8 = super::DENIED;
    /// Bad arguments, or the policy, secrets, keys or audit log could not be set up (as
    /// `env(1)`'s own failure).
    pub const CONFIG: u8 = 125;
    /// The program exists but cannot be run (as `env(1)`).
    pub const CANNOT_RUN: u8 = 126;
    /// The program was not found (as `env(1)`).
    pub const NOT_FOUND: u8 = 127;
}

/// `agentsec exec`.
pub const EXEC: &[ExitCode] = &[
    row(OK, "the command exited 0"),
    row(
        exec::DENIED,
        "the policy refused a path, or your OS user may not act as the agent id (`agents:`): the command was not started (or the command exited 3)",
    ),
    row(
        exec::CONFIG,
        "bad arguments, or the policy, secrets, keys or audit log could not be set up",
    ),
    row(exec::CANNOT_RUN, "the program cannot be run"),
    row(exec::NOT_FOUND, "the program was not found"),
];

/// `agentsec secrets`.
pub const SECRETS: &[ExitCode] = &[
    row(secrets::OK, "success (`edit`: also when nothing changed)"),
    row(
        secrets::FAILED,
        "no `sops` metadata (not a SOPS file), an `unset` path that names nothing, an editor that failed, an answer other than `y`, an identity file that exists",
    ),
    row(
        secrets::READ,
        "bad arguments, or FILE or stdin could not be read or does not parse (`line:column` on stderr)",
    ),
    row(
        secrets::WRITE,
        "the output or FILE could not be written (FILE is then unchanged)",
    ),
    row(
        4,
        "the tree cannot be written in the requested output format",
    ),
    row(
        secrets::CONFIG,
        "the current directory or `.sops.yaml` cannot be read, or an option in it is invalid",
    ),
    row(
        secrets::KMS_CONTEXT,
        "a malformed `--encryption-context` (not `key:value,...`)",
    ),
    row(
        secrets::BAD_PATH,
        "a `set`/`unset` path or a `set` value that does not parse",
    ),
    row(
        23,
        "encryption failed (the random generator, AES-GCM, or a master key: gpg, Vault Transit or KMS refused)",
    ),
    row(
        25,
        "a value that will not decrypt or does not match its type",
    ),
    row(51, "the MAC is missing, will not decrypt or does not match"),
    row(
        secrets::NO_RECIPIENTS,
        "no recipients: no `.sops.yaml`, no creation rule for FILE, and no `--age`, `--pgp`, `--hc-vault-transit` or `--kms`",
    ),
    row(91, "a bad `--extract` path"),
    row(secrets::NOT_FOUND, "FILE does not exist"),
    row(111, "an age recipient that does not parse"),
    row(128, "no usable key: the data key cannot be recovered"),
    row(secrets::NO_EDITOR, "no editor could be started"),
    row(203, "`encrypt` of a file that is already encrypted"),
];

/// The table as `--help` shows it, after a title line.
pub fn help(table: &[ExitCode]) -> String {
    let mut out = String::from("Exit codes:");
    let width = table
        .iter()
        .map(|r| r.code.to_string().len())
        .max()
        .unwrap_or(1);
    for row in table {
        out.push_str(&format!(
            "\n  {:>width$}  {}",
            row.code,
            row.meaning.replace('`', "")
        ));
    }
    out
}

/// Whether `code` is in `table`.
pub fn documented(table: &[ExitCode], code: u8) -> bool {
    table.iter().any(|r| r.code == code)
}
