//! `agentsec`: manage secrets, review policies, query the audit log.

use std::process::ExitCode;

use clap::Parser as _;

#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    let cli = agentsec_cli::admin::Cli::parse();
    agentsec_cli::init_tracing();
    agentsec_cli::error::exit(agentsec_cli::admin::main(cli))
}
