//! `agentsec`: the operator's and reviewer's tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Manage agent secrets, review access-control policies, check the audit log.
///
/// Skills run with `agentsec-run`; this tool is for the people around them.
#[derive(Debug, Parser)]
#[command(name = "agentsec", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Review access-control policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Parse and check policy files; errors as file:line:column.
    Check {
        /// Policy file or directory of *.yaml files; repeatable.
        #[arg(long, value_name = "FILE|DIR", required = true)]
        policy: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of one or more audit log files (in order).
    Verify {
        /// Log files, oldest first.
        #[arg(value_name = "LOG", required = true)]
        logs: Vec<PathBuf>,
    },
}

/// Runs `agentsec`.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Policy(PolicyCommand::Check { policy }) => {
            match agentsec_policy::Policy::load(&policy) {
                Ok(policy) => {
                    println!("ok: {} rules", policy.rules().count());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("agentsec: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Audit(AuditCommand::Verify { logs }) => match agentsec_audit::verify(&logs) {
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
