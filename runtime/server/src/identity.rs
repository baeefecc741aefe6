//! Who is on the other end: the OS identity of a socket peer (from the kernel) or of this
//! process, resolved to names the policy's `agents:` bindings use.
//!
//! `SO_PEERCRED` gives the peer's uid, gid and pid as they were when it connected;
//! `SO_PEERGROUPS` its supplementary groups, at the same moment. Neither can be forged
//! by the peer. Names come from the system's user and group databases (NSS), so
//! directory users resolve as `id` shows them.
//!
//! This is the crate's one module with `unsafe`: `SO_PEERGROUPS`, `getpwuid_r` and
//! `getgrgid_r` have no safe wrapper in rustix (which does `SO_PEERCRED`).
#![allow(
    unsafe_code,
    reason = "getsockopt(SO_PEERGROUPS), getpwuid_r and getgrgid_r; each call is commented"
)]

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd};

use agentsec_audit::CallerInfo;
use agentsec_policy::Peer;

/// Most supplementary groups read from a peer.
///
/// Reason: Linux's `NGROUPS_MAX` is 65536, but a process with more than a few hundred
/// groups is unheard of; the bound keeps the per-connection read small.
pub const MAX_PEER_GROUPS: usize = 1024;

/// The buffer for one `getpwuid_r` / `getgrgid_r` answer.
///
/// Reason: glibc's `sysconf(_SC_GETPW_R_SIZE_MAX)` suggests 1024; a group with many
/// members needs more, so a lookup retries with a larger buffer up to this.
const MAX_NSS_BUFFER: usize = 1 << 20;

/// An OS identity: uid, groups and (for a peer) pid, with names where the system has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsIdentity {
    /// The uid.
    pub uid: u32,
    /// Its user name.
    pub user: Option<String>,
    /// The process id, where known.
    pub pid: Option<u32>,
    /// The primary group first, then the supplementary groups, with names.
    pub groups: Vec<(u32, Option<String>)>,
}

impl OsIdentity {
    /// The peer of a connected unix socket, as the kernel recorded it at connect time.
    ///
    /// # Errors
    /// The socket is not a unix socket, or the kernel refused the query.
    pub fn of_peer(socket: &impl AsFd) -> std::io::Result<OsIdentity> {
        let cred = rustix::net::sockopt::socket_peercred(socket)?;
        let uid = cred.uid.as_raw();
        let gid = cred.gid.as_raw();
        let pid = u32::try_from(cred.pid.as_raw_nonzero().get()).ok();
        let mut gids = vec![gid];
        for g in peer_groups(socket)? {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
        Ok(OsIdentity::resolve(uid, pid, gids))
    }

    /// This process: its real uid and gid, supplementary groups and pid (a local run acts
    /// as whoever started it).
    ///
    /// # Errors
    /// The supplementary groups cannot be read.
    pub fn of_this_process() -> std::io::Result<OsIdentity> {
        let uid = rustix::process::getuid().as_raw();
        let mut gids = vec![rustix::process::getgid().as_raw()];
        for g in rustix::process::getgroups()? {
            if !gids.contains(&g.as_raw()) {
                gids.push(g.as_raw());
            }
        }
        let pid = u32::try_from(rustix::process::getpid().as_raw_nonzero().get()).ok();
        Ok(OsIdentity::resolve(uid, pid, gids))
    }

    fn resolve(uid: u32, pid: Option<u32>, gids: Vec<u32>) -> OsIdentity {
        OsIdentity {
            uid,
            user: user_name(uid),
            pid,
            groups: gids.into_iter().map(|g| (g, group_name(g))).collect(),
        }
    }

    /// Calls `f` with this identity as the policy sees it.
    pub fn with_peer<T>(&self, f: impl FnOnce(&Peer<'_>) -> T) -> T {
        let groups: Vec<(u32, Option<&str>)> = self
            .groups
            .iter()
            .map(|(g, name)| (*g, name.as_deref()))
            .collect();
        f(&Peer {
            uid: self.uid,
            user: self.user.as_deref(),
            groups: &groups,
        })
    }

    /// The `caller` object of audit records.
    pub fn caller_info(&self) -> CallerInfo {
        CallerInfo {
            uid: self.uid,
            user: self.user.clone(),
            pid: self.pid,
        }
    }
}

/// The supplementary groups of a unix-socket peer (`SO_PEERGROUPS`, Linux 4.13+).
fn peer_groups(socket: &impl AsFd) -> std::io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; MAX_PEER_GROUPS];
    let mut len = libc::socklen_t::try_from(groups.len() * size_of::<libc::gid_t>())
        .map_err(std::io::Error::other)?;
    // SAFETY: the buffer is `len` bytes of writable, aligned `gid_t`s that outlive the
    // call; the kernel writes at most `len` bytes and stores the length it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        // ERANGE: more groups than the buffer holds. Keep the primary group only
        // rather than fail the connection (documented: bind such callers by user).
        if err.raw_os_error() == Some(libc::ERANGE) {
            return Ok(Vec::new());
        }
        return Err(err);
    }
    groups.truncate(len as usize / size_of::<libc::gid_t>());
    Ok(groups)
}

/// The user name of `uid`, if the user database has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pwd`, `buf` (of `buf.len()` bytes) and `result` are valid for the
        // call; on success the strings `pwd` points to live in `buf`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < MAX_NSS_BUFFER {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` is a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return name.to_str().ok().map(str::to_owned);
    }
}

/// The group name of `gid`, if the group database has one.
pub fn group_name(gid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers, zero id).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_name`, for `getgrgid_r`.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &raw mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < MAX_NSS_BUFFER {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: on success `gr_name` is a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        return name.to_str().ok().map(str::to_owned);
    }
}

/// The gid of group `name`, if the group database has it (for `--socket-group`).
pub fn group_id(name: &str) -> Option<u32> {
    let c_name = std::ffi::CString::new(name).ok()?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: all-zero is a valid `group`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `group_name`, for `getgrnam_r` with a NUL-terminated name.
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &raw mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < MAX_NSS_BUFFER {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        return Some(grp.gr_gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_pair_peer_is_this_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = OsIdentity::of_peer(&a).unwrap();
        let me = OsIdentity::of_this_process().unwrap();
        assert_eq!(peer.uid, me.uid);
        assert_eq!(peer.pid, me.pid);
        assert_eq!(peer.groups[0], me.groups[0]);
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-agentsec"), None);
    }
}
