//! Process hardening for a host that holds secrets.
//!
//! - No core dumps: `PR_SET_DUMPABLE` 0 (also stops same-user ptrace and
//!   makes `/proc/self/mem` and `/proc/self/environ` root-only) and a core
//!   size limit of 0.
//! - Secret memory is locked into RAM where the OS allows it, so it is not
//!   written to swap; best effort, with one warning when it cannot be done.
//!
//! This module holds the host's only `unsafe` outside the component cache:
//! `mlock`, which takes a raw address range.

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

/// What [`harden_process`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hardening {
    /// The process is no longer dumpable (no core dumps, no same-user ptrace).
    pub not_dumpable: bool,
    /// The core-file size limit is 0.
    pub no_core_files: bool,
}

/// Disables core dumps and ptrace-ability of this process. Call once, before
/// secrets are loaded.
pub fn harden_process() -> Hardening {
    let not_dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
    let no_core_files = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .is_ok();
    if !not_dumpable || !no_core_files {
        tracing::warn!(not_dumpable, no_core_files, "process hardening incomplete");
    }
    Hardening {
        not_dumpable,
        no_core_files,
    }
}

static MLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// Locks the pages holding `bytes` into RAM (best effort). Returns whether it
/// worked; warns once per process when it does not (typically
/// `RLIMIT_MEMLOCK`). The pages stay locked for the life of the process.
pub fn lock_in_memory(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    #[expect(unsafe_code, reason = "mlock takes a raw address range; see SAFETY")]
    // SAFETY: `mlock` only changes the residency of the pages that contain
    // `bytes`; it neither reads nor writes them and cannot invalidate any
    // Rust reference. The range is a live borrow, so it is mapped.
    let result = unsafe { rustix::mm::mlock(bytes.as_ptr().cast_mut().cast(), bytes.len()) };
    if let Err(e) = result {
        if !MLOCK_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "could not lock secret memory into RAM (it may be swapped); raise RLIMIT_MEMLOCK to enable");
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_disables_core_dumps() {
        let h = harden_process();
        assert!(h.not_dumpable && h.no_core_files, "{h:?}");
        assert_eq!(
            rustix::process::dumpable_behavior().ok(),
            Some(DumpableBehavior::NotDumpable)
        );
        let core = rustix::process::getrlimit(Resource::Core);
        assert_eq!(core.current, Some(0));
    }

    /// Kilobytes this process has locked in RAM (`VmLck`).
    fn locked_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn locking_puts_the_pages_in_ram_when_the_limit_allows() {
        const LEN: usize = 256 * 1024;
        let limit = rustix::process::getrlimit(Resource::Memlock).current;
        let allowed =
            rustix::process::geteuid().is_root() || limit.is_none_or(|l| l >= (LEN as u64) * 4);
        let secret = vec![7u8; LEN];
        let before = locked_kib();
        assert_eq!(lock_in_memory(&secret), allowed, "limit {limit:?}");
        if allowed {
            // At least the whole pages inside the buffer are now locked.
            assert!(
                locked_kib() >= before + (LEN as u64 / 1024) - 8,
                "VmLck {before} -> {} kB",
                locked_kib()
            );
        }
        // The bytes are untouched, and an empty range is trivially locked.
        assert!(secret.iter().all(|&b| b == 7));
        assert!(lock_in_memory(&[]));
    }
}
