//! Every guest-driven cost has a named limit with a reason.
//!
//! The defaults are generous for a skill that reads a few secrets and formats
//! a report (milliseconds, a few MiB), and small enough that a hostile or
//! broken skill cannot hold an agent's critical path or the host's memory.
//! All of them can be changed per run ([`Limits`] fields, `agentsec-run` flags).

use std::time::Duration;

/// Wall-clock deadline for one run. A skill sits in an agent's critical path;
/// healthy skills finish in milliseconds, and 10 s leaves room for slow
/// backends later while still stopping a runaway loop promptly.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Linear memory a run may hold, summed over all of its memories (a
/// component may define many), and counted from instantiation on. 128 MiB is
/// ~100x what the example skills use and bounds what a memory bomb can take
/// from the host.
pub const DEFAULT_MAX_MEMORY: usize = 128 << 20;

/// Bytes of output per channel (the result, stdout, stderr). Output goes back
/// to an agent's context window; 1 MiB is far beyond a useful report and
/// bounds host memory spent on capturing and redacting it.
pub const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// `get-secret` calls per run. A real skill reads a handful of secrets; a
/// million calls are an attempt to flood the audit log or probe the policy.
pub const DEFAULT_MAX_SECRET_CALLS: u32 = 1_000;

/// Size of the component file. Real skills are ~100 KB; compiling a huge
/// component costs seconds of CPU and much memory before anything runs.
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 64 << 20;

/// Bytes of `--input` (inline or `@FILE`/`@-`). The input is copied into the
/// skill's memory as one string; 16 MiB is far beyond a JSON request and
/// bounds what a mistaken `@/dev/zero` or a huge file costs before the run.
pub const DEFAULT_MAX_INPUT: u64 = 16 << 20;

/// Functions, summed over every core module of a component, accepted for
/// compiling. Compile time and memory grow with the number of functions
/// (300,000 tiny functions took ~9 s and ~1.7 GB); a Rust skill has a few
/// thousand. Cost is about linear in the count, so 50,000 bounds a compile of
/// tiny functions to ~1.5 s and ~300 MB of compiler memory (one sixth of the
/// measurement above); compile memory is bounded by rejecting, before
/// compiling, what would exceed these counts.
pub const DEFAULT_MAX_FUNCTIONS: u64 = 50_000;

/// Bytes of function bodies, summed over every core module of a component,
/// accepted for compiling: the other driver of compile cost. Rust skills have
/// a few hundred KiB; 16 MiB leaves room for big ones.
pub const DEFAULT_MAX_CODE_SIZE: u64 = 16 << 20;

/// Wall-clock deadline for compiling a component that is not in the cache.
/// Compilation happens before the run's own deadline starts, and the size
/// limits above already keep it to about a second; this is the backstop if
/// they are raised or the machine is slow. When it passes, loading fails (the
/// compiling thread is abandoned; `agentsec-run` exits, which ends it).
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(30);

/// Table elements (function references) a run may hold, summed over all of
/// its tables. Rust skills use a few hundred; this bounds host memory for
/// table growth.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 100_000;

/// Core instances a component may create. Components from one language
/// toolchain use a handful (the skill, the WASI adapter, shims).
pub const DEFAULT_MAX_INSTANCES: usize = 100;

/// WebAssembly stack a skill may use. Deep recursion is a common way to
/// crash a host; wasmtime checks this bound on every call and traps. 512 KiB
/// is wasmtime's default and ample for real skills.
pub const DEFAULT_MAX_WASM_STACK: usize = 512 << 10;

/// Bytes of a secret path a skill may pass to `get-secret`/`list-secrets`.
/// Real paths are tens of bytes; the parser's own bound
/// (`agentsec_policy::MAX_PATH_LEN`, 1 KiB) is the most this may be raised to.
pub const DEFAULT_MAX_PATH_LEN: usize = agentsec_policy::MAX_PATH_LEN;

/// Granularity of the epoch clock that enforces the deadline: a run stops at
/// most this long after its deadline. 5 ms is precise enough for deadlines in
/// seconds and keeps the ticker thread's wakeups cheap.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Most outgoing HTTP requests (and TCP connections) one run may make. Reason: a skill
/// calls an API a handful of times; the bound stops a skill from using the host as a
/// request cannon against an allowed destination, and bounds the audit records a run
/// writes. Over it, the request is refused (`connection-limit-reached`) and recorded.
pub const DEFAULT_MAX_HTTP_REQUESTS: u32 = 64;

/// Largest request body a skill may send, in bytes. Reason: API calls (a release, a
/// webhook message) are kilobytes; the host buffers the body to send it, so the bound is
/// also its memory.
pub const DEFAULT_MAX_HTTP_REQUEST_BODY: u64 = 1024 * 1024;

/// Largest response body a skill may receive, in bytes. Reason: the host reads the
/// whole body to redact it before the skill sees it (redaction needs it all), so this is
/// the host's memory per response; 4 MiB covers API answers.
pub const DEFAULT_MAX_HTTP_RESPONSE_BODY: u64 = 4 * 1024 * 1024;

/// Longest one outgoing request may take, from resolving its host to its last response
/// byte, and never past the run's own deadline. Reason: the epoch deadline cannot stop
/// a skill that waits in the host's HTTP client, so every request carries its own.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// See [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// See [`DEFAULT_MAX_MEMORY`].
    pub max_memory: usize,
    /// See [`DEFAULT_MAX_OUTPUT`].
    pub max_output: usize,
    /// See [`DEFAULT_MAX_SECRET_CALLS`].
    pub max_secret_calls: u32,
    /// See [`DEFAULT_MAX_COMPONENT_SIZE`].
    pub max_component_size: u64,
    /// See [`DEFAULT_MAX_TABLE_ELEMENTS`].
    pub max_table_elements: usize,
    /// See [`DEFAULT_MAX_INSTANCES`].
    pub max_instances: usize,
    /// See [`DEFAULT_MAX_PATH_LEN`].
    pub max_path_len: usize,
    /// See [`DEFAULT_MAX_INPUT`].
    pub max_input: u64,
    /// See [`DEFAULT_MAX_FUNCTIONS`].
    pub max_functions: u64,
    /// See [`DEFAULT_MAX_CODE_SIZE`].
    pub max_code_size: u64,
    /// See [`DEFAULT_COMPILE_TIMEOUT`].
    pub compile_timeout: Duration,
    /// See [`agentsec_redact::MAX_REDACTION_NEEDLE_BYTES`] (the default).
    pub max_redaction_bytes: usize,
    /// See [`DEFAULT_MAX_HTTP_REQUESTS`].
    pub max_http_requests: u32,
    /// See [`DEFAULT_MAX_HTTP_REQUEST_BODY`].
    pub max_http_request_body: u64,
    /// See [`DEFAULT_MAX_HTTP_RESPONSE_BODY`].
    pub max_http_response_body: u64,
    /// See [`DEFAULT_HTTP_TIMEOUT`].
    pub http_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
            max_output: DEFAULT_MAX_OUTPUT,
            max_secret_calls: DEFAULT_MAX_SECRET_CALLS,
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_path_len: DEFAULT_MAX_PATH_LEN,
            max_input: DEFAULT_MAX_INPUT,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_code_size: DEFAULT_MAX_CODE_SIZE,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            max_redaction_bytes: agentsec_redact::MAX_REDACTION_NEEDLE_BYTES,
            max_http_requests: DEFAULT_MAX_HTTP_REQUESTS,
            max_http_request_body: DEFAULT_MAX_HTTP_REQUEST_BODY,
            max_http_response_body: DEFAULT_MAX_HTTP_RESPONSE_BODY,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// Which limit ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// The wall-clock deadline passed.
    Timeout,
    /// Linear memory would have grown past the limit.
    Memory,
    /// A table would have grown past the limit.
    TableElements,
    /// Too many core instances.
    Instances,
    /// The result, stdout or stderr was larger than allowed.
    Output,
    /// Too many `get-secret` calls.
    SecretCalls,
    /// The WebAssembly stack overflowed (runaway recursion).
    Stack,
    /// The values released in this run would need more redaction needles
    /// than `--max-redaction-bytes` allows (default
    /// [`agentsec_redact::MAX_REDACTION_NEEDLE_BYTES`]); the value that would
    /// have passed it was not released.
    Redaction,
}

impl LimitKind {
    /// The `agentsec-run` flag that raises this limit, if there is one.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            LimitKind::Timeout => Some("--timeout"),
            LimitKind::Memory => Some("--max-memory"),
            LimitKind::Output => Some("--max-output"),
            LimitKind::SecretCalls => Some("--max-secret-calls"),
            LimitKind::Redaction => Some("--max-redaction-bytes"),
            LimitKind::TableElements | LimitKind::Instances | LimitKind::Stack => None,
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Timeout => "wall-clock deadline",
            LimitKind::Memory => "memory limit",
            LimitKind::TableElements => "table size limit",
            LimitKind::Instances => "instance limit",
            LimitKind::Output => "output size limit",
            LimitKind::SecretCalls => "get-secret call limit",
            LimitKind::Stack => "stack size limit",
            LimitKind::Redaction => "redaction limit",
        })
    }
}

/// Limits asked for explicitly (command-line flags, a server's request), each `None` when
/// not given. [`Limits::resolve`] merges them with the policy's `sandbox:` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitOverrides {
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--max-memory`.
    pub max_memory: Option<usize>,
    /// `--max-output`.
    pub max_output: Option<usize>,
    /// `--max-secret-calls`.
    pub max_secret_calls: Option<u32>,
    /// `--max-table-elements`.
    pub max_table_elements: Option<usize>,
    /// `--max-instances`.
    pub max_instances: Option<usize>,
    /// `--max-component-size`.
    pub max_component_size: Option<u64>,
    /// `--max-path-len`.
    pub max_path_len: Option<usize>,
    /// `--max-input`.
    pub max_input: Option<u64>,
    /// `--max-functions`.
    pub max_functions: Option<u64>,
    /// `--max-code-size`.
    pub max_code_size: Option<u64>,
    /// `--max-redaction-bytes`.
    pub max_redaction_bytes: Option<usize>,
    /// `--compile-timeout`.
    pub compile_timeout: Option<Duration>,
    /// `--on-credential-shape`.
    pub on_credential_shape: Option<crate::ShapeAction>,
}

impl Limits {
    /// The limits of a run and what to do with credential shapes: each one as asked in
    /// `overrides`, else as the policy's `sandbox:` says, else the default. The path
    /// length is capped at the parser's own bound.
    pub fn resolve(
        overrides: &LimitOverrides,
        sandbox: &agentsec_policy::sandbox::Sandbox,
    ) -> (Limits, crate::ShapeAction) {
        use agentsec_policy::sandbox::ShapeSetting;
        fn size(v: u64) -> usize {
            usize::try_from(v).unwrap_or(usize::MAX)
        }
        let d = Limits::default();
        let o = overrides;
        let limits = Limits {
            timeout: o.timeout.or(sandbox.timeout).unwrap_or(d.timeout),
            max_memory: o
                .max_memory
                .or(sandbox.max_memory.map(size))
                .unwrap_or(d.max_memory),
            max_output: o
                .max_output
                .or(sandbox.max_output.map(size))
                .unwrap_or(d.max_output),
            max_secret_calls: o
                .max_secret_calls
                .or(sandbox.max_secret_calls)
                .unwrap_or(d.max_secret_calls),
            max_table_elements: o
                .max_table_elements
                .or(sandbox.max_table_elements.map(size))
                .unwrap_or(d.max_table_elements),
            max_instances: o
                .max_instances
                .or(sandbox.max_instances.map(size))
                .unwrap_or(d.max_instances),
            max_component_size: o
                .max_component_size
                .or(sandbox.max_component_size)
                .unwrap_or(d.max_component_size),
            max_path_len: o
                .max_path_len
                .or(sandbox.max_path_len.map(size))
                .unwrap_or(d.max_path_len)
                .min(agentsec_policy::MAX_PATH_LEN),
            max_input: o.max_input.or(sandbox.max_input).unwrap_or(d.max_input),
            max_functions: o
                .max_functions
                .or(sandbox.max_functions)
                .unwrap_or(d.max_functions),
            max_code_size: o
                .max_code_size
                .or(sandbox.max_code_size)
                .unwrap_or(d.max_code_size),
            compile_timeout: o
                .compile_timeout
                .or(sandbox.compile_timeout)
                .unwrap_or(d.compile_timeout),
            max_redaction_bytes: o
                .max_redaction_bytes
                .or(sandbox.max_redaction_bytes.map(size))
                .unwrap_or(d.max_redaction_bytes),
            max_http_requests: d.max_http_requests,
            max_http_request_body: d.max_http_request_body,
            max_http_response_body: d.max_http_response_body,
            http_timeout: d.http_timeout,
        };
        let shapes = o
            .on_credential_shape
            .unwrap_or(match sandbox.on_credential_shape {
                Some(ShapeSetting::Fail) => crate::ShapeAction::Fail,
                _ => crate::ShapeAction::Redact,
            });
        (limits, shapes)
    }
}
