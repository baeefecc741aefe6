//! `agentsec.yaml`: per-directory defaults for `agentsec-run`.
//!
//! `agentsec-run` looks for `agentsec.yaml` in the current directory and its
//! parents (like sops looks for `.sops.yaml`). Paths in it are relative to the
//! file's directory. Flags always win over it. Example (this repository's):
//!
//! ```yaml
//! secrets: demo/secrets.yaml
//! policy: policies/demo.yaml     # or a list of files/directories
//! audit_log: demo/audit.log
//! age_key_file: demo/age-key.DEMO-ONLY.txt
//! # audit_key: audit-key.age   # optional: keyed (HMAC) audit chain
//! # audit_sync: record          # optional: fsync each record (default: run)
//! ```

use std::path::{Path, PathBuf};

use agentsec_host::AuditSync;
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;

/// The file name searched for.
pub const FILE_NAME: &str = "agentsec.yaml";

/// How many parent directories are searched (as sops does for `.sops.yaml`).
pub const MAX_SEARCH_DEPTH: usize = 100;

/// Project files larger than this are refused: a defaults file is a few lines.
pub const MAX_PROJECT_FILE_SIZE: u64 = 64 * 1024;

/// Defaults read from an `agentsec.yaml`, paths already resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Project {
    /// The file these came from.
    pub file: PathBuf,
    /// Default `--secrets`.
    pub secrets: Option<PathBuf>,
    /// Default `--policy` (files or directories).
    pub policy: Vec<PathBuf>,
    /// Default `--audit-log`.
    pub audit_log: Option<PathBuf>,
    /// An age identity file used in addition to the ones sops would find.
    pub age_key_file: Option<PathBuf>,
    /// Default `--audit-key`: the age-encrypted HMAC key of a keyed audit log.
    pub audit_key: Option<PathBuf>,
    /// Default `--audit-sync`.
    pub audit_sync: Option<AuditSync>,
}

/// Finds and reads the nearest `agentsec.yaml` from `start` upward.
/// Paths in the result are relative to `start` (as `../..` when the file is
/// in a parent), so that messages show them the way the user would type them.
pub fn discover(start: &Path) -> Result<Option<Project>, String> {
    let mut dir = Some(start);
    let mut relative = PathBuf::new();
    for _ in 0..MAX_SEARCH_DEPTH {
        let Some(current) = dir else { break };
        let candidate = current.join(FILE_NAME);
        if candidate.is_file() {
            return load_with_base(&candidate, &relative).map(Some);
        }
        dir = current.parent();
        relative.push("..");
    }
    Ok(None)
}

/// Reads one project file; paths are relative to the file's directory.
pub fn load(file: &Path) -> Result<Project, String> {
    load_with_base(file, file.parent().unwrap_or(Path::new(".")))
}

fn load_with_base(file: &Path, base: &Path) -> Result<Project, String> {
    let shown = file.display();
    let mut bytes = Vec::new();
    agentsec_policy::bounded::read_file(file, MAX_PROJECT_FILE_SIZE, &mut bytes)
        .map_err(|e| format!("{shown}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let mut project = Project {
        file: file.to_owned(),
        ..Project::default()
    };
    let entries =
        parse(&text).map_err(|(line, col, msg)| format!("{shown}:{line}:{col}: {msg}"))?;
    for (key, (line, col), values) in entries {
        let at = |msg: &str| format!("{shown}:{line}:{col}: {msg}");
        let one = || match values.as_slice() {
            [v] => Ok(base.join(v)),
            _ => Err(at(&format!("`{key}` takes one path"))),
        };
        match key.as_str() {
            "secrets" => project.secrets = Some(one()?),
            "audit_log" => project.audit_log = Some(one()?),
            "age_key_file" => project.age_key_file = Some(one()?),
            "audit_key" => project.audit_key = Some(one()?),
            "policy" => project.policy = values.iter().map(|v| base.join(v)).collect(),
            "audit_sync" => {
                let [value] = values.as_slice() else {
                    return Err(at("`audit_sync` takes one word: run or record"));
                };
                project.audit_sync = Some(parse_audit_sync(value).map_err(|e| at(&e))?);
            }
            other => {
                return Err(at(&format!(
                    "unknown key `{other}`; expected one of: secrets, policy, audit_log, age_key_file, audit_key, audit_sync"
                )));
            }
        }
    }
    Ok(project)
}

/// `run` or `record` (see [`AuditSync`]), as `--audit-sync` and
/// `audit_sync:` spell it.
pub fn parse_audit_sync(text: &str) -> Result<AuditSync, String> {
    match text {
        "run" => Ok(AuditSync::Run),
        "record" => Ok(AuditSync::Record),
        other => Err(format!(
            "audit sync `{other}`: use `run` (one fsync before the run's output is returned) or `record` (one fsync per record)"
        )),
    }
}

type Entry = (String, (usize, usize), Vec<String>);

/// A top-level mapping of scalar keys to a scalar or a list of scalars.
fn parse(text: &str) -> Result<Vec<Entry>, (usize, usize, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut next = move || {
        parser
            .next_token()
            .map_err(|e| (e.marker().line(), e.marker().col() + 1, e.info().to_owned()))
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut depth = 0usize;
    let mut key: Option<(String, (usize, usize))> = None;
    let mut list: Option<Vec<String>> = None;
    loop {
        let (event, mark) = next()?;
        let pos = (mark.line(), mark.col() + 1);
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {}
            Event::MappingStart(..) if depth == 0 => depth = 1,
            Event::MappingEnd if depth == 1 => depth = 0,
            Event::Scalar(value, ..) => match (&key, &mut list) {
                (None, None) if depth == 1 => {
                    if entries.iter().any(|(k, ..)| *k == value) {
                        return Err((pos.0, pos.1, format!("duplicate key `{value}`")));
                    }
                    key = Some((value, pos));
                }
                (Some(_), Some(items)) => items.push(value),
                (Some(_), None) => {
                    if let Some((k, p)) = key.take() {
                        entries.push((k, p, vec![value]));
                    }
                }
                _ => return Err((pos.0, pos.1, "expected `key: value` lines".into())),
            },
            Event::SequenceStart(..) if key.is_some() && list.is_none() => list = Some(Vec::new()),
            Event::SequenceEnd if list.is_some() => {
                if let (Some((k, p)), Some(items)) = (key.take(), list.take()) {
                    entries.push((k, p, items));
                }
            }
            _ => {
                return Err((
                    pos.0,
                    pos.1,
                    "expected `key: value` or `key: [a, b]`".into(),
                ));
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paths_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("agentsec-project-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(FILE_NAME);
        std::fs::write(
            &file,
            "secrets: s.yaml\npolicy: [a.yaml, dir]\naudit_log: a.log\n",
        )
        .unwrap();
        let p = load(&file).unwrap();
        assert_eq!(p.secrets, Some(dir.join("s.yaml")));
        assert_eq!(p.policy, vec![dir.join("a.yaml"), dir.join("dir")]);
        assert_eq!(p.audit_log, Some(dir.join("a.log")));
        assert_eq!(p.age_key_file, None);
        std::fs::write(&file, "secrets: s.yaml\nsecret: x\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(err.ends_with(":2:1: unknown key `secret`; expected one of: secrets, policy, audit_log, age_key_file, audit_key, audit_sync"), "{err}");
        std::fs::write(&file, "audit_sync: record\n").unwrap();
        assert_eq!(load(&file).unwrap().audit_sync, Some(AuditSync::Record));
        std::fs::write(&file, "audit_sync: sometimes\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(
            err.contains(":1:1: audit sync `sometimes`: use `run`"),
            "{err}"
        );
        std::fs::write(&file, "secrets: [a, b]\n").unwrap();
        assert!(load(&file).unwrap_err().contains("takes one path"));
        std::fs::write(&file, "secrets: {a: b}\n").unwrap();
        assert!(load(&file).unwrap_err().contains(":1:"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
