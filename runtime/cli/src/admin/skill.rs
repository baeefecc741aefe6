//! `agentsec skill precompile FILE|DIR...`: compile components into the cache, so that
//! their first run (or a server's start) does not pay for it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use agentsec_host::{HostConfig, Runtime};
use clap::Subcommand;

use crate::error::{SkillError, Tool};
use crate::exit;

/// Most components one `precompile` takes from a directory.
///
/// Reason: a skills directory holds a handful of skills; the bound keeps a mistaken
/// directory (a home, a build tree) from being walked and compiled whole.
pub const MAX_PRECOMPILE_FILES: usize = 1_000;

/// `agentsec skill` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile components (a `.wasm` file, or every `*.wasm` directly in a directory)
    /// into the compiled-component cache, so that their first run does not compile.
    /// The cache is the one `agentsec-run` uses ($XDG_CACHE_HOME/agentsec); `--cache-dir`
    /// fills another (a service's).
    #[command(after_help = exit::help(exit::SKILL), after_long_help = exit::help(exit::SKILL))]
    Precompile {
        /// Component files or directories of them.
        #[arg(value_name = "FILE|DIR", required = true)]
        paths: Vec<PathBuf>,
        /// Cache directory [default: $XDG_CACHE_HOME/agentsec, else ~/.cache/agentsec].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Deadline for compiling each component, e.g. `2m` [default: 30s, as agentsec-run].
        #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
        compile_timeout: Option<std::time::Duration>,
    },
}

/// Runs an `agentsec skill` command.
///
/// # Errors
/// A usage error: an unreadable argument, or a cache that cannot be used.
pub fn run(command: Command) -> Result<u8, SkillError> {
    match command {
        Command::Precompile {
            paths,
            cache_dir,
            compile_timeout,
        } => precompile(&paths, cache_dir, compile_timeout),
    }
}

fn precompile(
    paths: &[PathBuf],
    cache_dir: Option<PathBuf>,
    compile_timeout: Option<std::time::Duration>,
) -> Result<u8, SkillError> {
    let files = components(paths)?;
    let mut config = HostConfig::default();
    if let Some(timeout) = compile_timeout {
        config.compile_timeout = timeout;
    }
    if let Some(dir) = cache_dir {
        config = config.with_cache_dir(dir);
    }
    if config.cache_dir.is_none() {
        return Err(SkillError::Runtime(
            "no cache directory (set XDG_CACHE_HOME or HOME, or pass --cache-dir DIR)".to_owned(),
        ));
    }
    let runtime = Runtime::new(config).map_err(|e| SkillError::Runtime(e.to_string()))?;
    let mut code = exit::admin::OK;
    for file in files {
        let started = Instant::now();
        match runtime.load_file(&file) {
            Ok(skill) if skill.from_cache() => {
                Tool::Skill.note(format!("{}: already in the cache", file.display()));
            }
            Ok(_) if !runtime.caches() => {
                Tool::Skill.warn(format!(
                    "{}: compiled, but the cache is unusable (see the warning above), so the next run compiles again",
                    file.display()
                ));
                code = exit::admin::FAILED;
            }
            Ok(_) => Tool::Skill.note(format!(
                "{}: compiled in {:.1} s",
                file.display(),
                started.elapsed().as_secs_f64()
            )),
            Err(e) => {
                eprintln!("{}: error: {e}", Tool::Skill.prefix());
                code = exit::admin::FAILED;
            }
        }
    }
    Ok(code)
}

/// The component files named: each FILE, and the `*.wasm` files directly in each DIR
/// (sorted), at most [`MAX_PRECOMPILE_FILES`].
fn components(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SkillError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| SkillError::Argument(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            let mut found = wasm_files(path)?;
            if found.is_empty() {
                return Err(SkillError::Argument(format!(
                    "{}: no `.wasm` file in this directory",
                    path.display()
                )));
            }
            out.append(&mut found);
        } else {
            out.push(path.clone());
        }
        if out.len() > MAX_PRECOMPILE_FILES {
            return Err(SkillError::Argument(format!(
                "more than {MAX_PRECOMPILE_FILES} components; name fewer files or directories"
            )));
        }
    }
    Ok(out)
}

fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, SkillError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SkillError::Argument(format!("{}: {e}", dir.display())))?;
    let mut found = Vec::new();
    for entry in entries.take(MAX_PRECOMPILE_FILES.saturating_add(1)) {
        let entry = entry.map_err(|e| SkillError::Argument(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "wasm") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
