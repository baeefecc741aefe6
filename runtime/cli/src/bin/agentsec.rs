//! `agentsec`: manage secrets, review policies, query the audit log.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    let cli =
        match agentsec_cli::error::parse::<agentsec_cli::admin::Cli>(agentsec_cli::admin::prefix) {
            Ok(cli) => cli,
            Err(code) => return code,
        };
    agentsec_cli::init_tracing();
    agentsec_cli::error::exit(agentsec_cli::admin::main(cli))
}
