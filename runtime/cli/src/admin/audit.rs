//! `agentsec audit ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// `agentsec audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify the hash chain of one or more audit log files (in order).
    Verify {
        /// Log files, oldest first.
        #[arg(value_name = "LOG", required = true)]
        logs: Vec<PathBuf>,
    },
}

/// Runs one `agentsec audit` command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Verify { logs } => match agentsec_audit::verify(&logs) {
            Ok(report) => {
                println!("ok: {} entries, head {}", report.entries, report.head_hash);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("agentsec: {e}");
                ExitCode::from(1)
            }
        },
    }
}
