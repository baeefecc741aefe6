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

    #[test]
    fn locking_small_buffers_is_harmless() {
        let secret = vec![7u8; 64];
        // Either outcome is allowed (it depends on RLIMIT_MEMLOCK); it must not crash.
        let _ = lock_in_memory(&secret);
        assert!(lock_in_memory(&[]));
        assert_eq!(secret[0], 7);
    }
}
