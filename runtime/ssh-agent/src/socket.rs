//! The agent's socket: mode 0600 in a directory of mode 0700 owned by the agent's user.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Where `agentsec ssh-agent --agent ID` listens without `--socket`: beside `agentsec
/// serve`'s socket (`$XDG_RUNTIME_DIR/agentsec/`, `/run/agentsec/` for root), named after
/// the agent id (`/` becomes `_`).
pub fn default_socket(agent: &str) -> PathBuf {
    let serve = agentsec_server::default_socket();
    let dir = serve
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    dir.join(format!("ssh-agent-{}.sock", agent.replace('/', "_")))
}

/// Binds `path` (mode 0600). Its directory is created with mode 0700 when missing; an
/// existing one must belong to this user and be closed to others. A stale socket (nothing
/// listening) is replaced; a live one is an error.
///
/// # Errors
/// The directory is open to others or not ours, the socket is in use, or binding failed;
/// the message says which and what to do.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: cannot create the socket directory: {e}", dir.display()))?;
    }
    let meta = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{}: the socket directory belongs to uid {}, not to this user (uid {me}); use a \
             directory of your own (--socket)",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: the socket directory is open to other users (mode {:o}); `chmod 700` it or \
             choose another (--socket)",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{}: an agent is already listening there; stop it or choose another --socket",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("{}: cannot remove the stale socket: {e}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("{}: cannot listen: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}
