//! `agentsec secrets edit FILE`: the decrypted plaintext goes to an editor through RAM only,
//! and is re-encrypted under the same data key when it changed.
//!
//! Where the plaintext lives while the editor runs, in order of preference:
//! 1. a memfd (Linux `memfd_create`): anonymous memory with no path on any file system. It is
//!    created without close-on-exec, so the editor inherits it and opens it as
//!    `/proc/self/fd/N` (its own descriptor N).
//! 2. a 0600 file in a fresh 0700 directory under `/dev/shm`, checked to be a tmpfs; the file
//!    is overwritten with zeros and both are removed afterwards.
//!
//! If neither is possible, the command refuses: the plaintext never goes to persistent disk.
//! Editors can still copy the buffer elsewhere (swap, backup and undo files): for vim and
//! neovim agentsec turns those off on the command line; configure other editors likewise.
//!
//! Outcomes: unchanged content leaves FILE byte for byte untouched and exits 0 with a message
//! (sops exits 200 there; "nothing to do" is not a failure for scripts); an editor that exits
//! non-zero aborts (exit 1) and FILE is untouched; content that does not parse is an error
//! naming line and column (the exit code of the parse error) and FILE is untouched (sops
//! re-opens the editor instead); an editor that cannot be started exits 201, as in sops.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_secrets::MAX_FILE_SIZE;
use zeroize::Zeroizing;

use super::{Failure, emit_options, fail, open, write_atomic};

/// sops' exit code when no editor can be run.
const NO_EDITOR: i32 = 201;

/// Linux `TMPFS_MAGIC` (`statfs(2)`): `/dev/shm` is used only if it is RAM-backed.
#[cfg(target_os = "linux")]
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The RAM-only buffer the editor works on.
enum Buffer {
    /// A memfd; the editor opens `/proc/self/fd/<fd>`.
    Memfd(File, i32),
    /// A file in a private directory on a tmpfs.
    Shm {
        file: File,
        path: PathBuf,
        // Removed (with the file) on drop.
        _dir: tempfile::TempDir,
    },
}

impl Buffer {
    fn create() -> Result<Buffer, Failure> {
        match Self::memfd() {
            Some(b) => Ok(b),
            None => Self::shm().map_err(|why| {
                fail(
                    format!(
                        "cannot edit: no RAM-only place for the plaintext (no memfd with \
                         /proc/self/fd, and {why}); refusing to write it to disk"
                    ),
                    1,
                )
            }),
        }
    }

    #[cfg(target_os = "linux")]
    fn memfd() -> Option<Buffer> {
        use std::os::fd::AsRawFd;
        if !Path::new("/proc/self/fd").is_dir() {
            return None;
        }
        // No MFD_CLOEXEC: the editor must inherit the descriptor.
        let fd = rustix::fs::memfd_create("agentsec-edit", rustix::fs::MemfdFlags::empty()).ok()?;
        let file = File::from(fd);
        let raw = file.as_raw_fd();
        Some(Buffer::Memfd(file, raw))
    }

    #[cfg(not(target_os = "linux"))]
    fn memfd() -> Option<Buffer> {
        None
    }

    #[cfg(target_os = "linux")]
    fn shm() -> Result<Buffer, String> {
        let base = Path::new("/dev/shm");
        let fs = rustix::fs::statfs(base).map_err(|e| format!("/dev/shm: {e}"))?;
        #[allow(
            clippy::useless_conversion,
            reason = "f_type is i64 on x86_64 and aarch64 but narrower on some targets"
        )]
        let f_type = i64::from(fs.f_type);
        if f_type != TMPFS_MAGIC {
            return Err("/dev/shm is not a tmpfs".to_owned());
        }
        // tempfile creates the directory 0700 and the file 0600.
        let dir = tempfile::Builder::new()
            .prefix("agentsec-edit-")
            .tempdir_in(base)
            .map_err(|e| format!("/dev/shm: {e}"))?;
        let path = dir.path().join("plaintext");
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&path).map_err(|e| format!("/dev/shm: {e}"))?;
        Ok(Buffer::Shm {
            file,
            path,
            _dir: dir,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn shm() -> Result<Buffer, String> {
        Err("no tmpfs known on this system".to_owned())
    }

    fn file(&self) -> &File {
        match self {
            Buffer::Memfd(f, _) | Buffer::Shm { file: f, .. } => f,
        }
    }

    /// The name the editor opens.
    fn editor_path(&self) -> PathBuf {
        match self {
            Buffer::Memfd(_, fd) => PathBuf::from(format!("/proc/self/fd/{fd}")),
            Buffer::Shm { path, .. } => path.clone(),
        }
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = self.file();
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(bytes)?;
        f.flush()
    }

    /// The content after editing, bounded by [`MAX_FILE_SIZE`]. Read by path for the tmpfs
    /// file, since editors may replace it by renaming.
    fn read(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut buf = Zeroizing::new(Vec::new());
        let reopened;
        let mut f = match self {
            Buffer::Memfd(f, _) => f,
            Buffer::Shm { path, .. } => {
                reopened = File::open(path).map_err(|e| e.to_string())?;
                &reopened
            }
        };
        f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
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
        // Best effort wipe: zeros over the tmpfs file's pages, and the memfd's pages released.
        if let Buffer::Shm { path, .. } = self
            && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path)
            && let Ok(meta) = f.metadata()
        {
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0).min(MAX_FILE_SIZE)];
            let _ = f.write_all(&zeros).and_then(|()| f.sync_all());
        }
        let _ = self.file().set_len(0);
    }
}

/// The editor command: `$SOPS_EDITOR`, else `$EDITOR`, else `vi`, split on whitespace (so
/// `code --wait` works; quoting is not interpreted).
fn editor_command(path: &Path) -> Result<Command, Failure> {
    let spec = ["SOPS_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let mut words = spec.split_whitespace();
    let Some(program) = words.next() else {
        return Err(fail("no editor: set SOPS_EDITOR or EDITOR", NO_EDITOR));
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
pub(super) fn edit(file: &Path) -> Result<(), Failure> {
    let mut f = open(file, None, false)?;
    let emit = emit_options();
    let before = f.emit(f.format(), emit)?;
    let buffer = Buffer::create()?;
    buffer
        .write(&before)
        .map_err(|e| fail(format!("cannot prepare the edit buffer: {e}"), 1))?;
    let mut cmd = editor_command(&buffer.editor_path())?;
    let status = cmd.status().map_err(|e| {
        fail(
            format!(
                "could not run the editor {:?}: {e}; set SOPS_EDITOR or EDITOR",
                cmd.get_program()
            ),
            NO_EDITOR,
        )
    })?;
    if !status.success() {
        return Err(fail(
            format!(
                "the editor exited with {status}; {} was not changed",
                file.display()
            ),
            1,
        ));
    }
    let after = buffer
        .read()
        .map_err(|why| fail(format!("cannot read the edited text back: {why}"), 2))?;
    drop(buffer);
    if *after == *before {
        eprintln!("{} has not changed; nothing written", file.display());
        return Ok(());
    }
    f.replace_plaintext(&after).map_err(|e| {
        fail(
            format!("{e}\n{} was not changed", file.display()),
            e.exit_code(),
        )
    })?;
    let out = f.reencrypt(false, emit)?;
    write_atomic(file, &out)
}
