//! `agentsec secrets`: decrypt, encrypt and maintain SOPS files, compatible with the `sops`
//! CLI (3.11 output; exit codes as sops where they overlap: MAC mismatch 51, no usable key
//! 128, value that will not decrypt 25, missing file 100, no metadata 1, bad `--extract`
//! 91, output conversion 4, already encrypted 203).
//!
//! Which command when:
//! - `updatekeys`: the *recipients* changed (someone joined or left, a key was replaced). It
//!   re-wraps the existing data key for the recipients of the matching `.sops.yaml` rule; the
//!   values and their ciphertexts stay as they are.
//! - `rotate`: the *data key* must change (a removed recipient may have copied it, or on a
//!   schedule). It generates a new data key and re-encrypts every value.
//!
//! Removing a recipient protects only future versions: whoever held the old key can still
//! read every old version of the file in version control. Rotate the data key and the
//! credentials themselves.

mod edit;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentsec_policy::SecretPath;
use agentsec_sops::{
    DecryptOptions, EmitOptions, EncryptConfig, ExtractPath, Format, Identities, SopsConfig,
    SopsError, SopsFile, encrypt_plaintext,
};
use clap::Subcommand;
use zeroize::Zeroizing;

/// `agentsec secrets` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt FILE to stdout, byte-identical to `sops decrypt`.
    Decrypt {
        /// The SOPS file.
        file: PathBuf,
        /// Print only this part: a dotted path (`db.password`, `list.1`) or sops' bracket form
        /// (`'["db"]["password"]'`, `'["list"][1]'`). List indices do not count comments.
        #[arg(long)]
        extract: Option<String>,
        /// Read FILE as this format (yaml, json, dotenv, ini, binary) instead of by name.
        #[arg(long, value_name = "T")]
        input_type: Option<String>,
        /// Print in this format (default: the input format).
        #[arg(long, value_name = "T")]
        output_type: Option<String>,
        /// Skip the MAC check. Recovery only: the output may have been tampered with.
        #[arg(long)]
        ignore_mac: bool,
    },
    /// Encrypt a plaintext FILE for age recipients (from --age or the first matching
    /// .sops.yaml creation rule, searched from the current directory upward).
    Encrypt {
        /// The plaintext file.
        file: PathBuf,
        /// Comma-separated age recipients; overrides the .sops.yaml keys.
        #[arg(long, value_name = "R1,R2")]
        age: Option<String>,
        /// Replace FILE instead of printing to stdout.
        #[arg(long)]
        in_place: bool,
    },
    /// Open the decrypted FILE in $SOPS_EDITOR or $EDITOR (default vi) and re-encrypt it with
    /// the same data key when it changed. The plaintext stays in memory (a memfd, or a private
    /// file on the /dev/shm tmpfs), never on disk. Unchanged: FILE untouched, exit 0.
    Edit {
        /// The SOPS file.
        file: PathBuf,
    },
    /// Set the value at PATH (`db.password` or `'["db"]["password"]'`) to the JSON value read
    /// from stdin, in place. A path that does not parse is refused (exit 7), as is an index
    /// past the end of a list or a key on a list; the file is then untouched.
    Set {
        /// The SOPS file.
        file: PathBuf,
        /// Where: a dotted path or sops' bracket form (never empty).
        path: String,
    },
    /// Remove the key or list element at PATH, in place (exit 7 for a path that does not
    /// parse, 1 for one that names nothing; the file is then untouched).
    Unset {
        /// The SOPS file.
        file: PathBuf,
        /// Where: a dotted path or sops' bracket form (never empty).
        path: String,
    },
    /// Re-wrap the data key for the recipients of the matching .sops.yaml rule (use after
    /// adding or removing a recipient). The data key stays the same (values are
    /// written again under it, with new IVs); for a new data key see `rotate`.
    Updatekeys {
        /// The SOPS file.
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Generate a new data key and re-encrypt every value, in place (use after removing a
    /// recipient, or on a schedule). Rotate the credentials themselves too: old versions in
    /// version control stay readable to former recipients.
    Rotate {
        /// The SOPS file.
        file: PathBuf,
    },
    /// Generate an age identity: written to FILE (mode 0600, never overwritten) or printed;
    /// the public key is printed on stdout.
    Keygen {
        /// Where to write the identity.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Runs one `agentsec secrets` command.
pub fn run(command: Command) -> ExitCode {
    match dispatch(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("{message}");
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

struct Failure {
    message: String,
    code: i32,
}

impl From<SopsError> for Failure {
    fn from(e: SopsError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

fn fail(message: impl Into<String>, code: i32) -> Failure {
    Failure {
        message: message.into(),
        code,
    }
}

fn format_of(file: &Path, name: Option<&str>) -> Result<Format, Failure> {
    match name {
        Some(n) => Ok(Format::from_name(n)),
        None => Ok(Format::from_path(file)?),
    }
}

fn read(file: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = agentsec_sops::MAX_FILE_SIZE as u64;
    match agentsec_policy::bounded::read_file(file, limit, &mut buf) {
        Ok(()) => Ok(buf),
        Err(e) if e.is_not_found() => Err(fail(
            format!(
                "Error: cannot operate on non-existent file {:?}",
                std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf())
            ),
            100,
        )),
        Err(e) => Err(fail(format!("could not read {}: {e}", file.display()), 2)),
    }
}

fn config() -> Result<Option<SopsConfig>, Failure> {
    let cwd = std::env::current_dir().map_err(|e| fail(e.to_string(), 5))?;
    Ok(SopsConfig::find(&cwd)?)
}

fn emit_options() -> EmitOptions {
    config().ok().flatten().map(|c| c.emit).unwrap_or_default()
}

fn open(file: &Path, input: Option<&str>, ignore_mac: bool) -> Result<SopsFile, Failure> {
    let format = format_of(file, input)?;
    let bytes = read(file)?;
    let ids = Identities::from_process_env()?;
    let opts = if ignore_mac {
        DecryptOptions::ignoring_mac()
    } else {
        DecryptOptions::default()
    };
    Ok(SopsFile::decrypt(
        &bytes,
        format,
        &file.display().to_string(),
        &ids,
        opts,
    )?)
}

fn stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| fail(format!("could not write output: {e}"), 3))
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Decrypt {
            file,
            extract,
            input_type,
            output_type,
            ignore_mac,
        } => {
            // `--extract ''` prints the whole file, as in sops (a read, never a write).
            let path = extract
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(ExtractPath::parse)
                .transpose()?;
            let f = open(&file, input_type.as_deref(), ignore_mac)?;
            let output = output_type
                .as_deref()
                .map(Format::from_name)
                .unwrap_or(f.format());
            // `sops decrypt` reads only the stores settings of .sops.yaml (the indent).
            let opts = emit_options();
            let out = match path {
                Some(p) => f.extract(&p, output, opts)?,
                None => f.emit(output, opts)?,
            };
            stdout(&out)
        }
        Command::Encrypt {
            file,
            age,
            in_place,
        } => {
            let format = format_of(&file, None)?;
            let bytes = read(&file)?;
            let cfg = config()?;
            let mut enc = match cfg.as_ref().map(|c| c.rule_for(&file)).transpose()? {
                Some(Some(rule)) => rule.config,
                _ => EncryptConfig::default(),
            };
            if let Some(list) = age.or_else(|| std::env::var("SOPS_AGE_RECIPIENTS").ok()) {
                enc.key_groups = vec![
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ];
                enc.shamir_threshold = None;
            }
            if enc.key_groups.iter().all(Vec::is_empty) {
                return Err(fail(
                    "config file not found, or has no creation rules, and no keys provided \
                     through command line options",
                    61,
                ));
            }
            let out = encrypt_plaintext(&bytes, format, &file.display().to_string(), &enc)?;
            if in_place {
                write_atomic(&file, &out)
            } else {
                stdout(&out)
            }
        }
        Command::Edit { file } => edit::edit(&file),
        Command::Set { file, path } => {
            let path = write_path(&path, "set")?;
            let mut bytes = Zeroizing::new(Vec::new());
            let limit = agentsec_sops::MAX_FILE_SIZE as u64;
            agentsec_policy::bounded::read_stream(std::io::stdin().lock(), limit, &mut bytes)
                .map_err(|e| fail(format!("could not read the value from stdin: {e}"), 2))?;
            let value = Zeroizing::new(
                String::from_utf8(std::mem::take(&mut *bytes))
                    .map_err(|_| fail("the value on stdin is not UTF-8 text".to_owned(), 2))?,
            );
            let mut f = open(&file, None, false)?;
            f.set(&path, value.trim_end_matches('\n'))?;
            let out = f.reencrypt(false, emit_options())?;
            write_atomic(&file, &out)
        }
        Command::Unset { file, path } => {
            let path = write_path(&path, "unset")?;
            let mut f = open(&file, None, false)?;
            f.unset(&path)?;
            let out = f.reencrypt(false, emit_options())?;
            write_atomic(&file, &out)
        }
        Command::Rotate { file } => {
            let f = open(&file, None, false)?;
            let out = f.reencrypt(true, emit_options())?;
            write_atomic(&file, &out)
        }
        Command::Updatekeys { file, yes } => {
            let cfg = config()?.ok_or_else(|| fail("config file not found", 61))?;
            let rule = cfg
                .rule_for(&file)?
                .ok_or_else(|| fail("config file has no creation rules", 61))?;
            let f = open(&file, None, false)?;
            if !yes {
                eprintln!(
                    "The file's key groups will become: {:?}",
                    rule.config.key_groups
                );
                eprint!("Is this okay? (y/n):");
                let mut answer = String::new();
                std::io::stdin()
                    .read_line(&mut answer)
                    .map_err(|e| fail(e.to_string(), 1))?;
                if answer.trim() != "y" {
                    return Err(fail("Changes not applied", 1));
                }
            }
            let out = f.with_recipients(&rule.config.key_groups, None, cfg.emit)?;
            write_atomic(&file, &out)?;
            eprintln!("File {} synced with new keys", file.display());
            Ok(())
        }
        Command::Keygen { output } => keygen(output.as_deref()),
    }
}

/// The path of a `set` or `unset`: the one path parser ([`SecretPath`]), dotted or bracket
/// form. Anything else, the empty path included (it never means "the whole document" for a
/// write), is refused with sops' exit code 7 before the file is read.
fn write_path(text: &str, command: &str) -> Result<ExtractPath, Failure> {
    SecretPath::parse(text).map(ExtractPath::from).map_err(|e| {
        fail(
            format!(
                "Invalid {command} path: {e}. Write a dotted path (`db.password`, `list.0`) or \
                 sops' bracket form (`[\"db\"][\"password\"]`, `[\"list\"][0]`)"
            ),
            7,
        )
    })
}

fn keygen(output: Option<&Path>) -> Result<(), Failure> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let created = time_stamp();
    let body = Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    match output {
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(|e| {
                fail(
                    format!(
                        "could not create {} (never overwritten): {e}",
                        path.display()
                    ),
                    1,
                )
            })?;
            f.write_all(body.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| fail(format!("could not write {}: {e}", path.display()), 3))?;
            eprintln!("Public key: {public}");
            stdout(format!("{public}\n").as_bytes())
        }
        None => {
            // As age-keygen does: when the key goes to a file or a pipe rather
            // than a terminal, say on stderr which public key it belongs to.
            if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                eprintln!("Public key: {public}");
            }
            stdout(body.as_bytes())
        }
    }
}

fn time_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// The marker in the names of our temporary files: `.NAME.agentsec-tmp-XXXXXX` beside the
/// file NAME being replaced. A run killed between creating and renaming one leaves it behind
/// (ciphertext only); the next write of NAME removes it.
const TMP_MARKER: &str = ".agentsec-tmp-";

/// [`write_atomic`] for the other `agentsec` commands that rewrite a file.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic(path, bytes).map_err(|f| f.message)
}

/// Writes `bytes` to `path` atomically, the way the reader sees it: either the old or the new
/// content, never a mix.
///
/// - A symlink is followed to its final target and the target is replaced (sops writes through
///   the link too); the link stays a link.
/// - The new file gets the old file's owner, group and mode (`fchown`, then `fchmod`, on the
///   temporary file before the rename); if the owner cannot be kept (not root and not the
///   owner), nothing is written.
/// - A file with more than one hard link is refused: a rename would split the links (the
///   others would keep the old content), and writing in place is not atomic.
/// - The temporary file is `.NAME.agentsec-tmp-XXXXXX` in the target's directory, created
///   0600, fsynced, renamed over the target, and the directory fsynced. Stale ones of ours
///   (left by a killed run) are removed first.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    let target = resolve_target(path)?;
    let err = |e: std::io::Error| fail(format!("could not write {}: {e}", target.display()), 3);
    let meta = match std::fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    if let Some(m) = &meta {
        if !m.is_file() {
            return Err(fail(
                format!("{} is not a regular file; not changed", target.display()),
                3,
            ));
        }
        if m.nlink() > 1 {
            return Err(fail(
                format!(
                    "{} has {} hard links; replacing it would split them (the other names \
                     would keep the old content), so it was not changed. Remove the other \
                     links (find them with `find / -samefile {}`) or use a symlink instead",
                    target.display(),
                    m.nlink(),
                    target.display()
                ),
                3,
            ));
        }
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}{TMP_MARKER}");
    remove_stale_temps(dir, &prefix);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(6)
        .tempfile_in(dir)
        .map_err(err)?;
    if let Some(m) = &meta {
        // Owner first: chown clears set-id bits, the mode is set after it.
        std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid())).map_err(|e| {
            fail(
                format!(
                    "cannot keep the owner {}:{} of {} ({e}); not changed. Run as that user \
                     or as root",
                    m.uid(),
                    m.gid(),
                    target.display()
                ),
                3,
            )
        })?;
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
                m.mode() & 0o7777,
            ))
            .map_err(err)?;
    }
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file a write to `path` must replace: `path` itself, or the final target of the symlink
/// chain at `path` (relative links resolved against their own directory).
fn resolve_target(path: &Path) -> Result<PathBuf, Failure> {
    /// Symlinks followed before giving up (Linux's own limit, `MAXSYMLINKS`, is 40).
    const MAX_SYMLINK_HOPS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|e| {
                    fail(
                        format!("cannot read the symlink {}: {e}", current.display()),
                        3,
                    )
                })?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(fail(
        format!(
            "{}: more than {MAX_SYMLINK_HOPS} symlinks to follow; not changed",
            path.display()
        ),
        3,
    ))
}

/// Removes temporary files a killed run of ours left in `dir` for the same file (names
/// starting with `prefix`), if they are regular files owned by us. Best effort: a failure
/// here does not stop the write.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if rest.len() != 6 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        if let Ok(m) = entry.path().symlink_metadata()
            && m.file_type().is_file()
            && m.uid() == me
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
