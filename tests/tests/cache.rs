//! The compiled-component cache: reused across processes, bound to its
//! component by a keyed MAC, loaded from the descriptor that was checked, and
//! never used where another user could have written it.
//!
//! These tests run as root (as CI does) and create a second OS user for the
//! attacker; a test that cannot create one fails rather than passes.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use agentsec_host::{HostConfig, Runtime};
use agentsec_tests::{Run, Scratch, root, skill};

/// The cache directory `agentsec-run` uses in a scratch world.
fn cache_dir(s: &Scratch) -> PathBuf {
    s.path("cache/agentsec/components")
}

fn host(dir: &Path) -> Runtime {
    Runtime::new(HostConfig::default().with_cache_dir(dir)).unwrap()
}

/// `agentsec-run probe` with no operations: probe answers `[]`; any other
/// component answers something else (or fails to link).
fn run_probe(s: &Scratch) -> Run {
    s.run_skill(
        "probe",
        "ops/release-manager",
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &["--input", r#"{"ops": []}"#],
    )
}

fn assert_ran_probe(run: &Run) {
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "[]", "the probe itself ran: {run:?}");
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// The artifact files (not the key) in `dir`.
fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The artifact of the component at `component` in `dir`.
fn artifact_of(dir: &Path, component: &Path) -> PathBuf {
    let digest = sha256_hex(component);
    let found: Vec<_> = artifacts(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&digest)
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// A second OS user for the duration of a test (removed on drop).
struct OtherUser {
    name: String,
    uid: u32,
}

impl OtherUser {
    fn new() -> OtherUser {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // useradd takes a lock on /etc/passwd: serialise within this process.
        static LOCK: Mutex<()> = Mutex::new(());
        let _guard = LOCK.lock().unwrap();
        let name = format!(
            "asc{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut last = None;
        for _ in 0..20 {
            let out = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--user-group",
                ])
                .arg(&name)
                .output()
                .unwrap();
            if out.status.success() {
                last = None;
                break;
            }
            last = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            last.is_none(),
            "useradd {name} failed (tests run as root): {last:?}"
        );
        let out = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_ne!(uid, 0);
        OtherUser { name, uid }
    }

    /// Runs `sh -c script` as this user.
    fn sh(&self, script: &str) {
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                &self.name,
                "--regid",
                &self.name,
                "--clear-groups",
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "as {}: {script}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

#[test]
fn a_second_process_loads_the_compiled_component_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("components");
    let first = host(&cache).load_file(&skill("probe")).unwrap();
    assert!(!first.from_cache(), "cold cache compiles");
    let second = host(&cache).load_file(&skill("probe")).unwrap();
    assert!(second.from_cache(), "warm cache is used");
    assert_eq!(first.sha256(), second.sha256());

    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the cache directory is private");
    let key = std::fs::metadata(cache.join("key")).unwrap();
    assert_eq!(
        key.permissions().mode() & 0o777,
        0o600,
        "the MAC key is private"
    );
    assert_eq!(key.len(), 32);
    let found = artifacts(&cache);
    assert_eq!(found.len(), 1, "{found:?}");

    // An artifact that others could have replaced is not trusted.
    std::fs::set_permissions(&found[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    let third = host(&cache).load_file(&skill("probe")).unwrap();
    assert!(
        !third.from_cache(),
        "a group/world-writable artifact is ignored and recompiled"
    );
}

#[test]
fn a_flipped_byte_or_another_key_means_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("components");
    host(&cache).load_file(&skill("probe")).unwrap();
    let artifact = artifact_of(&cache, &skill("probe"));

    // One byte in the middle of the compiled code: the MAC fails.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    let again = host(&cache).load_file(&skill("probe")).unwrap();
    assert!(!again.from_cache(), "a modified artifact is not loaded");
    assert_ne!(
        std::fs::read(&artifact).unwrap(),
        bytes,
        "and it was rewritten"
    );
    assert!(
        host(&cache)
            .load_file(&skill("probe"))
            .unwrap()
            .from_cache()
    );

    // A different key (same mode and owner): every artifact is foreign.
    std::fs::write(cache.join("key"), [0x5a_u8; 32]).unwrap();
    let other_key = host(&cache).load_file(&skill("probe")).unwrap();
    assert!(
        !other_key.from_cache(),
        "an artifact made with another key is not loaded"
    );
    assert!(
        host(&cache)
            .load_file(&skill("probe"))
            .unwrap()
            .from_cache(),
        "re-stored under the current key"
    );

    // A key others can read is refused (and so is the whole cache).
    std::fs::set_permissions(cache.join("key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        !host(&cache)
            .load_file(&skill("probe"))
            .unwrap()
            .from_cache()
    );

    // Junk of the right name is ignored.
    std::fs::set_permissions(cache.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&artifact, b"not a compiled component").unwrap();
    assert!(
        !host(&cache)
            .load_file(&skill("probe"))
            .unwrap()
            .from_cache()
    );
}

#[test]
fn an_artifact_of_another_component_under_this_name_is_not_loaded() {
    let s = Scratch::new();
    let cache = cache_dir(&s);
    host(&cache).load_file(&skill("probe")).unwrap();
    host(&cache).load_file(&skill("needy")).unwrap();
    let probe_artifact = artifact_of(&cache, &skill("probe"));
    let needy_artifact = artifact_of(&cache, &skill("needy"));
    // A valid artifact, made by this user with this key, of a different
    // component, planted under the probe's name.
    std::fs::rename(&needy_artifact, &probe_artifact).unwrap();
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(
        host(&cache)
            .load_file(&skill("probe"))
            .unwrap()
            .from_cache(),
        "the probe's own artifact was written back"
    );
}

#[test]
fn a_cache_directory_another_user_made_is_refused() {
    let s = Scratch::new();
    let attacker = OtherUser::new();
    // A shared, sticky, world-writable place (like /tmp) as XDG_CACHE_HOME.
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.path("cache"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let cache = cache_dir(&s);
    attacker.sh(&format!(
        "mkdir -p {0} && chmod 0777 {0} {0}/..",
        cache.display()
    ));
    assert_eq!(std::fs::metadata(&cache).unwrap().uid(), attacker.uid);

    // This user compiles another component "into" it; the attacker then
    // renames whatever appeared to the probe's name.
    let needy = host(&cache).load_file(&skill("needy")).unwrap();
    assert!(!needy.from_cache());
    attacker.sh(&format!(
        "cd {} && for f in *.cwasm; do [ -e \"$f\" ] && mv \"$f\" {}-$(echo \"$f\" | cut -d- -f2); done; true",
        cache.display(),
        sha256_hex(&skill("probe"))
    ));
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(
        run.stderr.contains("refusing the compiled-component cache")
            || run.stderr.contains("neither this user nor root"),
        "the refusal is visible: {run:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "nothing was written where another user can write: {left:?}"
    );

    // The same when only the cache directory itself is the attacker's.
    std::fs::remove_dir_all(s.path("cache/agentsec")).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(
        s.path("cache/agentsec"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    Command::new("chown")
        .arg(&attacker.name)
        .arg(&cache)
        .status()
        .unwrap();
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(run.stderr.contains("not by this user"), "{run:?}");
    assert!(std::fs::read_dir(&cache).unwrap().next().is_none());
}

#[test]
fn a_cache_directory_others_can_write_is_refused_at_every_level() {
    let s = Scratch::new();
    let cache = cache_dir(&s);
    // The cache directory itself, ours but world-writable.
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(
        run.stderr.contains("writable by group or others"),
        "{run:?}"
    );
    assert!(artifacts(&cache).is_empty(), "nothing written there");

    // A group-writable, non-sticky level above it.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        s.path("cache/agentsec"),
        std::fs::Permissions::from_mode(0o770),
    )
    .unwrap();
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(run.stderr.contains("not sticky"), "{run:?}");
    assert!(artifacts(&cache).is_empty(), "nothing written there");

    // Fixed modes: the cache works again.
    std::fs::set_permissions(
        s.path("cache/agentsec"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let run = run_probe(&s);
    assert_ran_probe(&run);
    assert!(!run.stderr.contains("cache"), "{run:?}");
    assert_eq!(artifacts(&cache).len(), 1);
}

#[test]
fn exchanging_artifacts_during_runs_never_runs_the_wrong_skill() {
    let s = Scratch::new();
    let cache = cache_dir(&s);
    host(&cache).load_file(&skill("probe")).unwrap();
    host(&cache).load_file(&skill("needy")).unwrap();
    let probe_artifact = artifact_of(&cache, &skill("probe"));
    let needy_artifact = artifact_of(&cache, &skill("needy"));

    // Swap the two names as fast as possible, atomically
    // (renameat2(RENAME_EXCHANGE)), for as long as the runs last.
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &probe_artifact,
                    rustix::fs::CWD,
                    &needy_artifact,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .is_ok()
                {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    for _ in 0..8 {
        assert_ran_probe(&run_probe(&s));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    assert!(swaps > 100, "the racer ran ({swaps} swaps)");
}
