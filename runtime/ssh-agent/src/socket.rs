//! The agent's socket: mode 0600 in a directory of mode 0700 owned by the agent's user
//! (or, served for a group's members by `agentsec serve`, 0660 in a directory only its
//! owner writes).

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
    bind_with(path, None)
}

/// Binds `path` for the members of group `gid` (mode 0660, owned by the group), as
/// `agentsec serve --socket-group` does for its own socket: the callers are other users
/// (each bound to the agent id by the policy's `agents:`). The directory must belong to
/// this user and be writable by no one else (a 0750 or 0710 directory of the group).
///
/// # Errors
/// As [`bind`], or the group cannot be given the socket.
pub fn bind_for_group(path: &Path, gid: u32) -> Result<UnixListener, String> {
    bind_with(path, Some(gid))
}

fn bind_with(path: &Path, group: Option<u32>) -> Result<UnixListener, String> {
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
    let closed = if group.is_some() { 0o022 } else { 0o077 };
    if meta.mode() & closed != 0 {
        return Err(format!(
            "{}: the socket directory is open to other users (mode {:o}); `chmod {}` it or \
             choose another (--socket)",
            dir.display(),
            meta.mode() & 0o777,
            if group.is_some() { "750" } else { "700" }
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
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| format!("{}: cannot give it to group {gid}: {e}", path.display()))?;
    }
    Ok(listener)
}
