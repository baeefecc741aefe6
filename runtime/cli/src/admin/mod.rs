//! `agentsec`: the operator's and reviewer's tool. One module per command
//! group; each exposes a clap `Command` and `run(command) -> ExitCode`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod policy;
pub mod secrets;

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
    Policy(policy::Command),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Decrypt, encrypt and edit SOPS files (sops-compatible).
    #[command(subcommand)]
    Secrets(secrets::Command),
}

/// Runs `agentsec`.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Policy(command) => policy::run(command),
        Command::Audit(command) => audit::run(command),
        Command::Secrets(command) => secrets::run(command),
    }
}
