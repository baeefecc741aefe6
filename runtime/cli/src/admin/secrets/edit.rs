//! `agentsec secrets edit FILE`: the decrypted plaintext goes to an editor through RAM only,
//! and is re-encrypted under the same data key when it changed.
//!
//! The editor gets a real path (editors that save by writing a new file and renaming it over
//! the old one, such as `sed -i`, many GUI editors and `code --wait`, need one): a 0600 file,
//! named like FILE so that the editor picks its syntax, in a fresh 0700 directory on a
//! RAM-backed file system. The places tried, in order, are `$XDG_RUNTIME_DIR` and `/dev/shm`;
//! each is used only if `statfs(2)` says it is a tmpfs or ramfs. If none is, the command
//! refuses: the plaintext never goes to a disk-backed file system. Afterwards every file in
//! the directory (the editor's backups included) is overwritten with zeros and removed.
//!
//! The directory is locked (`flock`) while the edit runs. A run that was killed (`kill -9`)
//! cannot clean up, so each edit first removes the unlocked `agentsec-edit-*` directories of
//! the same user that a killed run left in those places.
//!
//! Editors can still copy the buffer elsewhere (swap, backup and undo files): for vim and
//! neovim agentsec turns those off on the command line; configure other editors likewise.
//!
//! Outcomes: unchanged content leaves FILE byte for byte untouched and exits 0 with a message
//! (sops exits 200 there; "nothing to do" is not a failure for scripts); an editor that exits
//! non-zero aborts (exit 1) and FILE is untouched; content that does not parse is an error
//! naming line and column (the exit code of the parse error) and FILE is untouched (sops
//! re-opens the editor instead); an editor that cannot be started exits 201, as in sops. FILE
//! is replaced atomically (see `write_atomic`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_sops::MAX_FILE_SIZE;
use zeroize::Zeroizing;

use super::{emit_options, note, open, write_atomic};
use crate::error::SecretsError;

/// Linux `TMPFS_MAGIC` (`statfs(2)`).
const TMPFS_MAGIC: i64 = 0x0102_1994;
/// Linux `RAMFS_MAGIC` (`statfs(2)`).
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Prefix of the private directories (`agentsec-edit-XXXXXX`).
const DIR_PREFIX: &str = "agentsec-edit-";

/// The plaintext file the editor works on, in a private directory on a RAM-backed file system.
struct Buffer {
    path: PathBuf,
    /// Locked for as long as the edit runs; removed (with what is in it) on drop.
    dir: Option<tempfile::TempDir>,
    _lock: File,
}

/// Whether `dir` is on a tmpfs or ramfs.
fn ram_backed(dir: &Path) -> Result<(), String> {
    let fs = rustix::fs::statfs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    #[allow(
        clippy::useless_conversion,
        reason = "f_type is i64 on x86_64 and aarch64 but narrower on some targets"
    )]
    let f_type = i64::from(fs.f_type);
    if f_type == TMPFS_MAGIC || f_type == RAMFS_MAGIC {
        Ok(())
    } else {
        Err(format!("{} is not a tmpfs or ramfs", dir.display()))
    }
}

/// The places a buffer may go, in order.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        let x = PathBuf::from(x);
        if x.is_absolute() {
            out.push(x);
        }
    }
    out.push(PathBuf::from("/dev/shm"));
    out
}

/// Removes directories of ours that a killed edit left in `base`: `agentsec-edit-*`, owned by
/// us, and not locked by a running edit. Their files are overwritten with zeros first.
fn remove_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if !ours || !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let Ok(dir) = File::open(&path) else { continue };
        if rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            // A running edit holds it.
            continue;
        }
        wipe_dir(&path);
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Overwrites every regular file directly in `dir` with zeros (best effort).
fn wipe_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(entry.path()) {
            let len = usize::try_from(meta.len()).unwrap_or(0).min(MAX_FILE_SIZE);
            let _ = f.write_all(&vec![0u8; len]).and_then(|()| f.sync_all());
        }
    }
}

impl Buffer {
    /// A private directory in the first RAM-backed candidate, holding `name`.
    fn create(name: &str) -> Result<Buffer, SecretsError> {
        let mut why = Vec::new();
        for base in candidates() {
            if let Err(e) = ram_backed(&base) {
                why.push(e);
                continue;
            }
            remove_stale(&base);
            match Self::create_in(&base, name) {
                Ok(b) => return Ok(b),
                Err(e) => why.push(format!("{}: {e}", base.display())),
            }
        }
        Err(SecretsError::Failed(format!(
            "cannot edit: no RAM-backed place for the plaintext ({}); refusing to write it \
             to a disk-backed file system. Set XDG_RUNTIME_DIR to a directory on a tmpfs",
            why.join("; ")
        )))
    }

    fn create_in(base: &Path, name: &str) -> std::io::Result<Buffer> {
        // Created 0700 by mkdir itself (no window with a wider mode).
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(base)?;
        let lock = File::open(dir.path())?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
        // The editor inherits the lock: if agentsec is killed, the directory stays in use
        // (and is not removed as stale) for as long as the editor runs.
        rustix::io::fcntl_setfd(&lock, rustix::io::FdFlags::empty())?;
        let path = dir.path().join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(&path)?;
        Ok(Buffer {
            path,
            dir: Some(dir),
            _lock: lock,
        })
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        f.write_all(bytes)?;
        f.flush()
    }

    /// The content after editing, bounded by [`MAX_FILE_SIZE`]. Read by path, since editors
    /// may have replaced the file by renaming; it must still be a regular file (not a link).
    fn read(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.path)
            .map_err(|e| e.to_string())?;
        let meta = f.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("the edited file is no longer a regular file".to_owned());
        }
        let mut buf = Zeroizing::new(Vec::new());
        f.take(MAX_FILE_SIZE as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        if buf.len() > MAX_FILE_SIZE {
            return Err(format!("larger than {MAX_FILE_SIZE} bytes (MAX_FILE_SIZE)"));
        }
        Ok(buf)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // Best effort wipe: zeros over every file the editor left (backups too), then removal.
        if let Some(dir) = self.dir.take() {
            wipe_dir(dir.path());
            let _ = dir.close();
        }
    }
}

/// The editor command: `$SOPS_EDITOR`, else `$EDITOR`, else `vi`, split on whitespace (so
/// `code --wait` works; quoting is not interpreted).
fn editor_command(path: &Path) -> Result<Command, SecretsError> {
    let spec = ["SOPS_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let mut words = spec.split_whitespace();
    let Some(program) = words.next() else {
        return Err(SecretsError::NoEditor(
            "no editor: set SOPS_EDITOR or EDITOR".to_owned(),
        ));
    };
    let mut cmd = Command::new(program);
    if is_vim(program) {
        // No swap, backup, undo or viminfo file: they would copy the plaintext to disk.
        cmd.args([
            "-n",
            "-i",
            "NONE",
            "--cmd",
            "set nobackup nowritebackup noundofile",
        ]);
    }
    cmd.args(words).arg(path);
    Ok(cmd)
}

fn is_vim(program: &str) -> bool {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let given = name(Path::new(program));
    let resolved = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .and_then(|p| std::fs::canonicalize(p).ok())
        .map(|p| name(&p))
        .unwrap_or_default();
    [given, resolved]
        .iter()
        .any(|n| n.starts_with("vim") || n.starts_with("nvim"))
}

/// Runs `agentsec secrets edit FILE`.
/// The document a new file starts from, as sops' `edit` of a file that does not exist.
fn template(format: agentsec_sops::Format) -> &'static str {
    use agentsec_sops::Format;
    match format {
        Format::Json => {
            "{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\",\n\t\"example_array\": [\n\t\t\"example_value1\",\n\t\t\"example_value2\"\n\t],\n\t\"example_number\": 1234.56789,\n\t\"example_booleans\": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n"
        }
        Format::Dotenv => {
            "hello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\n"
        }
        Format::Ini => {
            "[Section]\nhello = Welcome to SOPS! Edit this file as you please!\nexample_key = example_value\n"
        }
        Format::Binary => "Welcome to SOPS! Edit this file as you please!\n",
        _ => {
            "hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n# Example comment\nexample_array:\n    - example_value1\n    - example_value2\nexample_number: 1234.56789\nexample_booleans:\n    - true\n    - false\n"
        }
    }
}

/// `edit` of a FILE that does not exist: the template in the editor, then the text encrypted
/// for the matching `.sops.yaml` rule (keys are checked before the editor opens).
fn edit_new(file: &Path) -> Result<(), SecretsError> {
    let format = agentsec_sops::Format::from_path(file)?;
    let config = super::rule_config(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or_else(|| "plaintext".to_owned());
    let buffer = Buffer::create(&name)?;
    buffer
        .write(template(format).as_bytes())
        .map_err(|e| SecretsError::Failed(format!("cannot prepare the edit buffer: {e}")))?;
    let mut cmd = editor_command(&buffer.path)?;
    let status = cmd.status().map_err(|e| {
        SecretsError::NoEditor(format!(
            "could not run the editor {:?}: {e}; set SOPS_EDITOR or EDITOR",
            cmd.get_program()
        ))
    })?;
    if !status.success() {
        return Err(SecretsError::Failed(format!(
            "the editor exited with {status}; {} was not created",
            file.display()
        )));
    }
    let after = buffer
        .read()
        .map_err(|why| SecretsError::Read(format!("cannot read the edited text back: {why}")))?;
    drop(buffer);
    let out =
        agentsec_sops::encrypt_plaintext(&after, format, &file.display().to_string(), &config)
            .map_err(|source| SecretsError::EditRejected {
                file: file.to_owned(),
                source,
            })?;
    write_atomic(file, &out)
}

pub(super) fn edit(file: &Path) -> Result<(), SecretsError> {
    if !file.exists() && file.symlink_metadata().is_err() {
        return edit_new(file);
    }
    let mut f = open(file, None, false)?;
    let emit = emit_options();
    let before = f.emit(f.format(), emit)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or_else(|| "plaintext".to_owned());
    let buffer = Buffer::create(&name)?;
    buffer
        .write(&before)
        .map_err(|e| SecretsError::Failed(format!("cannot prepare the edit buffer: {e}")))?;
    let mut cmd = editor_command(&buffer.path)?;
    let status = cmd.status().map_err(|e| {
        SecretsError::NoEditor(format!(
            "could not run the editor {:?}: {e}; set SOPS_EDITOR or EDITOR",
            cmd.get_program()
        ))
    })?;
    if !status.success() {
        return Err(SecretsError::Failed(format!(
            "the editor exited with {status}; {} was not changed",
            file.display()
        )));
    }
    let after = buffer
        .read()
        .map_err(|why| SecretsError::Read(format!("cannot read the edited text back: {why}")))?;
    drop(buffer);
    if *after == *before {
        note(format_args!(
            "{} has not changed; nothing written",
            file.display()
        ));
        return Ok(());
    }
    f.replace_plaintext(&after)
        .map_err(|source| SecretsError::EditRejected {
            file: file.to_owned(),
            source,
        })?;
    let out = f.reencrypt(false, emit)?;
    write_atomic(file, &out)
}
