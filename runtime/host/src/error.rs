//! Errors setting up the host or loading a component (not run outcomes:
//! those are [`crate::RunEnd`]).

use std::path::{Path, PathBuf};

/// Why the host could not be created or a component could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The wasmtime engine or linker could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The skill's name (from its file name) is not a valid skill name.
    #[error("skill name `{name}` (from the file name) is not usable: {reason}; rename the file")]
    Name {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The component file could not be read.
    #[error("cannot read skill `{path}`: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The component file is larger than the configured limit.
    #[error("skill `{path}` is {size} bytes, over the {limit}-byte component size limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not WebAssembly at all, or is a core module rather than a
    /// component. Says only which: the file's bytes are never echoed (it may
    /// be a key file given by mistake).
    #[error(
        "`{path}` is not a WebAssembly component: {what} (build skills with `cargo build --release --target wasm32-wasip2`)"
    )]
    NotComponent {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The component has more functions or code than may be compiled
    /// (see [`crate::limits::DEFAULT_MAX_FUNCTIONS`]); it was not compiled.
    #[error(
        "skill `{path}` has {count} {what}, over the compile limit of {limit} (raise it with {flag})"
    )]
    CompileLimit {
        /// The file.
        path: PathBuf,
        /// What was counted ("functions", "bytes of code").
        what: &'static str,
        /// How many the component has.
        count: u64,
        /// The limit.
        limit: u64,
        /// The flag that raises it.
        flag: &'static str,
    },
    /// Compiling took longer than the compile deadline.
    #[error(
        "skill `{path}` did not compile within the {limit:?} compile deadline (raise it with --compile-timeout)"
    )]
    CompileTimeout {
        /// The file.
        path: PathBuf,
        /// The deadline.
        limit: std::time::Duration,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error(
        "`{path}` is not a valid WebAssembly component: {reason}\n  hint: build skills with `cargo build --release --target wasm32-wasip2`"
    )]
    Compile {
        /// The file.
        path: PathBuf,
        /// What wasmtime reported.
        reason: String,
    },
    /// The component imports something agentsec does not provide, or does
    /// not export `run` with the expected signature.
    #[error(
        "skill `{path}` does not fit an agentsec:skill world (0.2.0 or 0.1.0): {reason}\n  hint: a skill may import only WASI p2 and agentsec:skill/secrets, and must export `run`"
    )]
    Link {
        /// The file.
        path: PathBuf,
        /// What wasmtime reported.
        reason: String,
    },
    /// The component imports an interface the host does not grant (e.g.
    /// `wasi:http/outgoing-handler`, `wasi:sockets/tcp`).
    #[error(
        "skill `{path}` imports `{import}`, which agentsec does not grant: a skill gets WASI p2 (cli, clocks, random, io, and filesystem without any directory; no sockets), agentsec:skill/secrets and, for runs the policy grants egress, wasi:http/outgoing-handler 0.2.x\n  hint: build it without that import (componentize-js: add its feature to `disableFeatures`, e.g. \"http\"; componentize-py: do not import the module that needs it; Rust: drop the crate that pulls it in), or satisfy it inside the component by composing in a stub that implements it (`wac plug` / `wasm-tools compose`)"
    )]
    Unprovided {
        /// The file.
        path: PathBuf,
        /// The import, as the component names it.
        import: String,
    },
}

impl HostError {
    /// Whether a limit refused the component (compile limits and deadline),
    /// as opposed to a component or configuration that is wrong.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            HostError::CompileLimit { .. } | HostError::CompileTimeout { .. }
        )
    }

    pub(crate) fn with_path(self, path: &Path) -> HostError {
        match self {
            HostError::Compile { reason, .. } => HostError::Compile {
                path: path.to_owned(),
                reason,
            },
            HostError::Link { reason, .. } => HostError::Link {
                path: path.to_owned(),
                reason,
            },
            HostError::Unprovided { import, .. } => HostError::Unprovided {
                path: path.to_owned(),
                import,
            },
            HostError::NotComponent { what, .. } => HostError::NotComponent {
                path: path.to_owned(),
                what,
            },
            HostError::TooLarge { size, limit, .. } => HostError::TooLarge {
                path: path.to_owned(),
                size,
                limit,
            },
            HostError::CompileLimit {
                what,
                count,
                limit,
                flag,
                ..
            } => HostError::CompileLimit {
                path: path.to_owned(),
                what,
                count,
                limit,
                flag,
            },
            HostError::CompileTimeout { limit, .. } => HostError::CompileTimeout {
                path: path.to_owned(),
                limit,
            },
            other => other,
        }
    }
}
