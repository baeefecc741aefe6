//! `agentsec policy ...`: check, explain, who-can, diff, pin.
//!
//! This module loads files and prints; the reasoning lives in
//! `agentsec-policy` ([`Policy::lint`], [`Policy::explain`],
//! [`Policy::who_can`], [`agentsec_policy::diff()`]). Secret values are never
//! printed: `--secrets` is only used for the names of the secrets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentsec_policy::{AgentId, Policy, PolicyError, SecretPath, SkillFilter, SkillName};
use agentsec_sops::{Identities, SopsStore};
use clap::{Subcommand, ValueEnum};

use crate::project;

mod pin;
mod render;
mod table;

/// Exit code for policy errors, and for `diff` when access widens.
const POLICY_ERROR: u8 = 1;
/// Exit code for usage errors (bad arguments, unreadable secrets file).
const USAGE: u8 = 2;

/// Exit codes of `agentsec policy`, shown by `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  ok (check: warnings only; diff: no access widens)
  1  a policy error (file:line:column on stderr); diff: some access widens
  2  usage error (arguments, an unreadable or undecryptable secrets file)";

/// Output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables for people.
    #[default]
    Human,
    /// One JSON document on stdout, for machines.
    Json,
}

/// `agentsec policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check policy files: errors as file:line:column (exit 1); warnings
    /// (exit 0) for allows a deny shadows, globs matching every agent and
    /// `audit: false`, and with --secrets for rules naming no existing secret
    /// and secrets no rule covers.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// Policy file or directory of *.yaml files; repeatable.
        #[arg(long, value_name = "FILE|DIR", required = true)]
        policy: Vec<PathBuf>,
        /// SOPS secrets file whose paths (never values) the rules are checked against.
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What an agent may read, the rule that grants it and its access level,
    /// and what a deny removes. Lists rule keys, or every secret with --secrets.
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The agent, e.g. `ops/release-manager`.
        #[arg(long, value_name = "ID")]
        agent: String,
        /// Only grants that apply to this skill (by name); default: any skill.
        #[arg(long, value_name = "NAME")]
        skill: Option<String>,
        /// Policy file or directory of *.yaml files; repeatable.
        #[arg(long, value_name = "FILE|DIR", required = true)]
        policy: Vec<PathBuf>,
        /// SOPS secrets file: explain each secret path (never values).
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The agent patterns allowed and denied for a secret path, with the rules.
    #[command(after_help = EXIT_CODES)]
    WhoCan {
        /// A secret path, e.g. `databases.postgres.production.password`.
        #[arg(value_name = "PATH")]
        path: String,
        /// Policy file or directory of *.yaml files; repeatable.
        #[arg(long, value_name = "FILE|DIR", required = true)]
        policy: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Grants added and removed between two policies, per agent pattern and
    /// path. Exits 1 when any access widens (a new or broader grant, a lifted
    /// skills restriction, a changed access level, a removed or narrower
    /// deny), so it can gate CI.
    #[command(after_help = EXIT_CODES)]
    Diff {
        /// The old policy: a file or a directory of *.yaml files.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The new policy: a file or a directory of *.yaml files.
        #[arg(value_name = "NEW")]
        new: PathBuf,
        /// SOPS secrets file: list the secret paths each change affects.
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Pin skills by digest: replace every `skills:` entry naming one of the
    /// COMPONENTs (its file name without `.wasm`, `_` read as `-`) with that
    /// component's `sha256:` digest, so the rule grants exactly that build.
    ///
    /// Only those entries change; comments and layout stay. The result must
    /// load as a policy; then it replaces POLICY atomically (same mode), or
    /// is printed with --stdout. Exits 1 if a component matches no entry
    /// (neither its name nor its digest). Re-run it after each rebuild.
    #[command(after_help = EXIT_CODES)]
    Pin {
        /// The policy file to edit (one file, not a directory).
        #[arg(value_name = "POLICY")]
        policy: PathBuf,
        /// The built components to pin, e.g. `target/.../db_healthcheck.wasm`.
        #[arg(value_name = "COMPONENT.wasm", required = true)]
        components: Vec<PathBuf>,
        /// Print the pinned policy on stdout instead of replacing POLICY.
        #[arg(long)]
        stdout: bool,
    },
}

/// A failure: exit code and message (printed on stderr).
struct Fail(u8, String);

impl From<PolicyError> for Fail {
    fn from(e: PolicyError) -> Fail {
        Fail(POLICY_ERROR, e.to_string())
    }
}

/// Runs one `agentsec policy` command.
pub fn run(command: Command) -> ExitCode {
    let format = match &command {
        Command::Check { format, .. }
        | Command::Explain { format, .. }
        | Command::WhoCan { format, .. }
        | Command::Diff { format, .. } => *format,
        Command::Pin { .. } => Format::Human,
    };
    match dispatch(command) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, message)) => {
            eprintln!("agentsec: {message}");
            if format == Format::Json {
                let json = serde_json::json!({ "ok": false, "error": message });
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("{json}\n").as_bytes(),
                );
            }
            ExitCode::from(code)
        }
    }
}

fn dispatch(command: Command) -> Result<u8, Fail> {
    match command {
        Command::Check {
            policy,
            secrets,
            format,
        } => {
            let policy = Policy::load(&policy)?;
            let known = load_known(secrets.as_deref())?;
            let warnings = policy.lint(known.as_deref());
            let origin = secrets.as_deref().map(Path::display);
            print(format, render::check_json(&policy, &warnings), || {
                render::check_human(&policy, &warnings, origin)
            })?;
            Ok(0)
        }
        Command::Explain {
            agent,
            skill,
            policy,
            secrets,
            format,
        } => {
            let agent = AgentId::parse(&agent).map_err(|e| Fail(USAGE, format!("--agent: {e}")))?;
            let skill = skill
                .map(|s| SkillName::parse(&s).map_err(|e| Fail(USAGE, format!("--skill: {e}"))))
                .transpose()?;
            let policy = Policy::load(&policy)?;
            let known = load_known(secrets.as_deref())?;
            let filter = skill.as_ref().map_or(SkillFilter::Any, SkillFilter::Named);
            let explanation = policy.explain(&agent, filter, known.as_deref());
            let view = render::ExplainView {
                agent: &agent,
                skill: skill.as_ref(),
                leaves: known.is_some(),
                explanation: &explanation,
            };
            print(format, view.json(), || view.human())?;
            Ok(0)
        }
        Command::WhoCan {
            path,
            policy,
            format,
        } => {
            let path = SecretPath::parse(&path).map_err(|e| Fail(USAGE, format!("PATH: {e}")))?;
            let policy = Policy::load(&policy)?;
            let who = policy.who_can(&path);
            print(format, render::who_can_json(&path, &who), || {
                render::who_can_human(&path, &who)
            })?;
            Ok(0)
        }
        Command::Diff {
            old,
            new,
            secrets,
            format,
        } => {
            let old = Policy::load(&[old])?;
            let new = Policy::load(&[new])?;
            let known = load_known(secrets.as_deref())?;
            let diff = agentsec_policy::diff(&old, &new, known.as_deref());
            print(format, render::diff_json(&diff, known.is_some()), || {
                render::diff_human(&diff, known.is_some())
            })?;
            Ok(if diff.widens() { POLICY_ERROR } else { 0 })
        }
        Command::Pin {
            policy,
            components,
            stdout,
        } => {
            let (report, all_matched) =
                pin::pin(&policy, &components, stdout).map_err(|e| Fail(USAGE, e))?;
            for line in report {
                eprintln!("agentsec: {line}");
            }
            Ok(if all_matched { 0 } else { POLICY_ERROR })
        }
    }
}

/// Writes the report; a closed or full stdout is an error (usage, exit 2),
/// not a panic: Rust ignores `SIGPIPE`, so `println!` would panic on `EPIPE`.
fn print(
    format: Format,
    json: serde_json::Value,
    human: impl FnOnce() -> String,
) -> Result<(), Fail> {
    use std::io::Write as _;
    let text = match format {
        Format::Json => format!("{json:#}\n"),
        Format::Human => human(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Fail(USAGE, format!("could not write the report to stdout: {e}")))
}

/// The secret paths (names only) of a SOPS file, decrypted with the keys
/// sops would use plus `age_key_file` from the nearest agentsec.yaml.
fn load_known(secrets: Option<&Path>) -> Result<Option<Vec<SecretPath>>, Fail> {
    let Some(file) = secrets else {
        return Ok(None);
    };
    let usage = |e: &dyn std::fmt::Display| Fail(USAGE, format!("--secrets: {e}"));
    let mut identities = Identities::from_process_env().map_err(|e| usage(&e))?;
    let cwd = std::env::current_dir().map_err(|e| usage(&e))?;
    if let Some(key_file) = project::discover(&cwd)
        .map_err(|e| usage(&e))?
        .and_then(|p| p.age_key_file)
    {
        identities.add_file(&key_file).map_err(|e| usage(&e))?;
    }
    let store = SopsStore::open(file, &identities).map_err(|e| usage(&e))?;
    Ok(Some(store.paths()))
}
