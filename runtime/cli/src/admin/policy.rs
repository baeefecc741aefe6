//! `agentsec policy ...`: check, explain, who-can, diff, pin.
//!
//! This module loads files and prints; the reasoning lives in
//! `agentsec-policy` ([`Policy::lint`], [`Policy::explain`],
//! [`Policy::who_can`], [`agentsec_policy::diff()`]). Secret values are never
//! printed: a secrets file (`--secrets`, or `secrets:` in agentsec.yaml) is
//! read for its key names only, without decrypting it, so a review needs no
//! key.

use std::path::PathBuf;

use agentsec_policy::{AgentId, Policy, SecretPath, SkillFilter, SkillName};
use agentsec_sops::SopsNames;
use clap::Subcommand;

use super::Format;
use crate::error::{PolicyError, Tool};
use crate::exit;
use crate::project::Project;

mod pin;
mod render;
mod table;

/// `agentsec policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check policy files: errors as file:line:column (exit 1); warnings
    /// (exit 0) for allows a deny shadows, globs matching every agent and
    /// `audit: false`, and with --secrets for rules naming no existing secret
    /// and secrets no rule covers.
    #[command(after_help = exit::help(exit::POLICY))]
    Check {
        /// Policy file or directory of *.yaml files; repeatable [default:
        /// `policy` from agentsec.yaml].
        #[arg(long, value_name = "FILE|DIR")]
        policy: Vec<PathBuf>,
        /// SOPS secrets file whose key names the rules are checked against;
        /// read without decrypting it (no key needed) [default: `secrets` from
        /// agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Vault configuration (`vault-config.yaml`) whose mounted KV v2 paths
        /// are checked too; listing them logs in to Vault [default:
        /// `vault_config` from agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        vault_config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What an agent may read, the rule that grants it and its access level,
    /// and what a deny removes. Lists rule keys, or every secret with a
    /// secrets file.
    #[command(after_help = exit::help(exit::POLICY))]
    Explain {
        /// The agent, e.g. `ops/release-manager`.
        #[arg(long, value_name = "ID")]
        agent: String,
        /// Only grants that apply to this skill (by name); default: any skill.
        #[arg(long, value_name = "NAME")]
        skill: Option<String>,
        /// Policy file or directory of *.yaml files; repeatable [default:
        /// `policy` from agentsec.yaml].
        #[arg(long, value_name = "FILE|DIR")]
        policy: Vec<PathBuf>,
        /// SOPS secrets file: explain each secret path; only key names are
        /// read, without decrypting it (no key needed) [default: `secrets` from
        /// agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Vault configuration (`vault-config.yaml`) whose mounted KV v2 paths
        /// are checked too; listing them logs in to Vault [default:
        /// `vault_config` from agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        vault_config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The agent patterns allowed and denied for a secret path, with the rules.
    ///
    /// For the allowed ones, also how the host may use the secret in requests: each
    /// `inject:` entry, the methods the access level permits, `inject_only`, and the
    /// `egress:` entries for the entry's destination.
    #[command(after_help = exit::help(exit::POLICY))]
    WhoCan {
        /// A secret path, e.g. `databases.postgres.production.password`.
        #[arg(value_name = "PATH")]
        path: String,
        /// Policy file or directory of *.yaml files; repeatable [default:
        /// `policy` from agentsec.yaml].
        #[arg(long, value_name = "FILE|DIR")]
        policy: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Grants added and removed between two policies, per agent pattern and
    /// path. Exits 1 when any access widens (a new or broader grant, a lifted
    /// skills restriction, a changed access level, a removed or narrower
    /// deny), so it can gate CI.
    #[command(after_help = exit::help(exit::POLICY))]
    Diff {
        /// The old policy: a file or a directory of *.yaml files.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The new policy: a file or a directory of *.yaml files.
        #[arg(value_name = "NEW")]
        new: PathBuf,
        /// SOPS secrets file: list the secret paths each change affects; only
        /// key names are read, without decrypting it (no key needed) [default:
        /// `secrets` from agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Vault configuration (`vault-config.yaml`) whose mounted KV v2 paths
        /// are checked too; listing them logs in to Vault [default:
        /// `vault_config` from agentsec.yaml].
        #[arg(long, value_name = "FILE")]
        vault_config: Option<PathBuf>,
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
    #[command(after_help = exit::help(exit::POLICY))]
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

/// Runs one `agentsec policy` command: its exit code, or the error that
/// ended it (with `--format json`, also reported on stdout as
/// `{"ok": false, "error": ...}`).
pub fn run(command: Command) -> Result<u8, PolicyError> {
    let format = match &command {
        Command::Check { format, .. }
        | Command::Explain { format, .. }
        | Command::WhoCan { format, .. }
        | Command::Diff { format, .. } => *format,
        Command::Pin { .. } => Format::Human,
    };
    let result = dispatch(command);
    if let Err(e) = &result
        && format == Format::Json
    {
        let json = serde_json::json!({ "ok": false, "error": e.to_string() });
        // The command failed either way; a lost report changes nothing.
        let _ = super::write_stdout(&format!("{json}\n"));
    }
    result
}

/// The settings a command was not given, from the agentsec.yaml in force.
struct Defaults {
    project: Option<Project>,
}

impl Defaults {
    fn new() -> Self {
        Defaults { project: None }
    }

    /// Read once, when the first setting is missing.
    fn project(&mut self) -> Result<&Project, PolicyError> {
        if self.project.is_none() {
            self.project = Some(super::defaults().map_err(PolicyError::Project)?);
        }
        Ok(self.project.get_or_insert_default())
    }

    /// `--policy`, else `policy:` from agentsec.yaml.
    fn policy(&mut self, given: Vec<PathBuf>) -> Result<Policy, PolicyError> {
        let paths = if given.is_empty() {
            self.project()?.policy.clone()
        } else {
            given
        };
        if paths.is_empty() {
            return Err(PolicyError::NoPolicy);
        }
        Ok(Policy::load(&paths)?)
    }

    /// The key names of `--secrets`, else of `secrets:` from agentsec.yaml,
    /// if either is set: read without decrypting the file, so no identity is
    /// loaded or even looked for ([`SopsNames`]).
    ///
    /// With a Vault configuration (`--vault-config`, else `vault_config:`), its mounted
    /// paths are added: listing them logs in to Vault with the configured identity.
    fn known(
        &mut self,
        given: Option<PathBuf>,
        vault: Option<PathBuf>,
    ) -> Result<Option<Known>, PolicyError> {
        let flags_given = given.is_some() || vault.is_some();
        let sops = match given {
            Some(file) => Some((file, "--secrets".to_owned())),
            None if flags_given => None,
            None => {
                let project = self.project()?;
                project.secrets.as_ref().map(|file| {
                    (
                        file.clone(),
                        format!("`secrets` of {}", project.file.display()),
                    )
                })
            }
        };
        let vault = match vault {
            Some(file) => Some(file),
            None if flags_given => None,
            None => self.project()?.vault_config.clone(),
        };
        let mut known: Option<Known> = None;
        if let Some((file, setting)) = sops {
            let names = SopsNames::open(&file)
                .map_err(|source| PolicyError::Secrets { setting, source })?;
            known = Some(Known {
                paths: names.paths().to_vec(),
                file,
            });
        }
        if let Some(file) = vault {
            let store =
                crate::run_cmd::open_vault(&file).map_err(|e| PolicyError::Vault(e.to_string()))?;
            let paths = agentsec_secrets::NameIndex::list(&store, &SecretPath::root())
                .map_err(|e| PolicyError::Vault(format!("{}: {e}", file.display())))?;
            match &mut known {
                Some(k) => k.paths.extend(paths),
                None => known = Some(Known { file, paths }),
            }
        }
        Ok(known)
    }
}

/// The secret paths of the secrets file in force (names only).
struct Known {
    file: PathBuf,
    paths: Vec<SecretPath>,
}

/// The paths of `known`, if any: what the policy crate takes.
fn paths(known: Option<&Known>) -> Option<&[SecretPath]> {
    known.map(|k| k.paths.as_slice())
}

fn dispatch(command: Command) -> Result<u8, PolicyError> {
    let mut defaults = Defaults::new();
    match command {
        Command::Check {
            policy,
            secrets,
            vault_config,
            format,
        } => {
            let policy = defaults.policy(policy)?;
            check(
                &policy,
                defaults.known(secrets, vault_config)?.as_ref(),
                format,
            )
        }
        Command::Explain {
            agent,
            skill,
            policy,
            secrets,
            vault_config,
            format,
        } => {
            let agent = parse_arg("--agent", AgentId::parse(&agent))?;
            let skill = skill
                .map(|s| parse_arg("--skill", SkillName::parse(&s)))
                .transpose()?;
            let policy = defaults.policy(policy)?;
            let known = defaults.known(secrets, vault_config)?;
            explain(&policy, &agent, skill.as_ref(), known.as_ref(), format)
        }
        Command::WhoCan {
            path,
            policy,
            format,
        } => {
            let path = parse_arg("PATH", SecretPath::parse(&path))?;
            let policy = defaults.policy(policy)?;
            let who = policy.who_can(&path);
            print(format, render::who_can_json(&policy, &path, &who), || {
                render::who_can_human(&policy, &path, &who)
            })?;
            Ok(exit::admin::OK)
        }
        Command::Diff {
            old,
            new,
            secrets,
            vault_config,
            format,
        } => {
            let old = Policy::load(&[old])?;
            let new = Policy::load(&[new])?;
            diff(
                &old,
                &new,
                defaults.known(secrets, vault_config)?.as_ref(),
                format,
            )
        }
        Command::Pin {
            policy,
            components,
            stdout,
        } => {
            let (report, all_matched) =
                pin::pin(&policy, &components, stdout).map_err(PolicyError::Pin)?;
            for line in report {
                Tool::Policy.note(line);
            }
            Ok(if all_matched {
                exit::admin::OK
            } else {
                exit::admin::FAILED
            })
        }
    }
}

/// An argument parsed, or the error naming it.
fn parse_arg<T, E: std::fmt::Display>(
    name: &'static str,
    parsed: Result<T, E>,
) -> Result<T, PolicyError> {
    parsed.map_err(|e| PolicyError::Argument {
        name,
        reason: e.to_string(),
    })
}

/// `check`: the policy's warnings, with a secrets file also about the names.
fn check(policy: &Policy, known: Option<&Known>, format: Format) -> Result<u8, PolicyError> {
    let warnings = policy.lint(paths(known));
    let origin = known.map(|k| k.file.display());
    print(format, render::check_json(policy, &warnings), || {
        render::check_human(policy, &warnings, origin)
    })?;
    Ok(exit::admin::OK)
}

/// `explain`: what `agent` (running `skill`, or any) may read.
fn explain(
    policy: &Policy,
    agent: &AgentId,
    skill: Option<&SkillName>,
    known: Option<&Known>,
    format: Format,
) -> Result<u8, PolicyError> {
    let filter = skill.map_or(SkillFilter::Any, SkillFilter::Named);
    let explanation = policy.explain(agent, filter, paths(known));
    let egress = policy
        .egress_rules()
        .filter(|r| r.agents().iter().any(|g| g.is_match(agent)))
        .collect();
    let view = render::ExplainView {
        agent,
        skill,
        leaves: known.is_some(),
        explanation: &explanation,
        egress,
    };
    print(format, view.json(), || view.human())?;
    Ok(exit::admin::OK)
}

/// `diff`: exit 1 when any access widens.
fn diff(
    old: &Policy,
    new: &Policy,
    known: Option<&Known>,
    format: Format,
) -> Result<u8, PolicyError> {
    let diff = agentsec_policy::diff(old, new, paths(known));
    print(format, render::diff_json(&diff, known.is_some()), || {
        render::diff_human(&diff, known.is_some())
    })?;
    Ok(if diff.widens() {
        exit::admin::FAILED
    } else {
        exit::admin::OK
    })
}

/// Writes the report; a closed or full stdout is an error (usage, exit 2),
/// not a panic: Rust ignores `SIGPIPE`, so `println!` would panic on `EPIPE`.
fn print(
    format: Format,
    json: serde_json::Value,
    human: impl FnOnce() -> String,
) -> Result<(), PolicyError> {
    let text = match format {
        Format::Json => format!("{json:#}\n"),
        Format::Human => human(),
    };
    super::write_stdout(&text).map_err(PolicyError::Output)
}
