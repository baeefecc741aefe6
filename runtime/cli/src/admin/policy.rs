//! `agentsec policy ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// `agentsec policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check policy files; errors as file:line:column.
    Check {
        /// Policy file or directory of *.yaml files; repeatable.
        #[arg(long, value_name = "FILE|DIR", required = true)]
        policy: Vec<PathBuf>,
    },
}

/// Runs one `agentsec policy` command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Check { policy } => match agentsec_policy::Policy::load(&policy) {
            Ok(policy) => {
                println!("ok: {} rules", policy.rules().count());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("agentsec: {e}");
                ExitCode::from(1)
            }
        },
    }
}
