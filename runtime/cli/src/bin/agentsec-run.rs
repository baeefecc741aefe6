//! `agentsec-run SKILL.wasm --agent ID`: see `agentsec-run --help`.

use std::process::ExitCode;

/// Every freed heap block is zeroed, so transient copies of secret values
/// (e.g. the string wasmtime copies into guest memory) do not linger.
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    let args = match agentsec_cli::error::parse::<agentsec_cli::run_cmd::Args>(|_| {
        agentsec_cli::error::Tool::Run.prefix()
    }) {
        Ok(args) => args,
        Err(code) => return code,
    };
    agentsec_cli::init_tracing();
    agentsec_cli::error::exit(agentsec_cli::run_cmd::main(args))
}
