//! `agentsec.yaml` is a trust boundary: the search stops at the repository
//! root and at `$HOME`, and a file (or a directory on the way) that someone
//! else could have written is refused, naming it; `--show-config` and
//! `AGENTSEC_LOG=info` say which file is in force.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use agentsec_tests::{Run, Scratch, bin, demo_key, root, skill};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A real run of the probe skill with every setting given as a flag except
/// what an `agentsec.yaml` found from `cwd` may add.
fn run_from(s: &Scratch, cwd: &Path) -> Run {
    let out = s
        .command(&bin("agentsec-run"))
        .arg(skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.path("work/audit.log"))
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .current_dir(cwd)
        .output()
        .unwrap();
    Run::from(out)
}

fn show_config(s: &Scratch, cwd: &Path) -> Run {
    let out = s
        .command(&bin("agentsec-run"))
        .arg("--show-config")
        .env("AGENTSEC_LOG", "info")
        .current_dir(cwd)
        .output()
        .unwrap();
    Run::from(out)
}

/// A planted file: it would redirect the audit log somewhere else.
fn plant(s: &Scratch, rel: &str) -> std::path::PathBuf {
    s.write(
        rel,
        "audit_log: planted.log\nage_key_file: planted-key.txt\n",
    )
}

#[test]
fn a_file_planted_in_a_world_writable_directory_is_refused() {
    let s = Scratch::new();
    let shared = s.path("shared");
    let job = s.path("shared/job");
    std::fs::create_dir_all(&job).unwrap();
    let file = plant(&s, "shared/agentsec.yaml");
    chmod(&shared, 0o1777); // like /tmp
    let run = run_from(&s, &job);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!("refusing {}", file.display()))
            && run
                .stderr
                .contains("writable by users other than its owner and root (mode 1777"),
        "{run:?}"
    );
    assert!(!s.path("shared/planted.log").exists());
    // The file itself writable by others, in a private directory: refused too.
    chmod(&shared, 0o755);
    chmod(&file, 0o666);
    let run = run_from(&s, &job);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("mode 0666"), "{run:?}");
    // Fixed: the file is in force, and says so.
    chmod(&file, 0o644);
    let shown = show_config(&s, &job);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.starts_with(&format!(
            "agentsec.yaml: {}\n",
            file.canonicalize().unwrap().display()
        )),
        "{shown:?}"
    );
    assert!(
        shown.stdout.contains("audit_log: ../planted.log"),
        "{shown:?}"
    );
    assert!(
        shown.stderr.contains("using this agentsec.yaml"),
        "{shown:?}"
    );
}

/// A second OS user (CI runs as root, which can create one).
fn other_user() -> (u32, u32) {
    let name = "agentsec-other";
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    if id("-u").is_none() {
        let out = Command::new("useradd")
            .args(["--no-create-home", "--system", name])
            .output()
            .unwrap();
        assert!(
            out.status.success() || id("-u").is_some(),
            "this test creates a second user and must run as root (as CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

#[test]
fn a_file_or_directory_owned_by_another_user_is_refused() {
    let (uid, gid) = other_user();
    let s = Scratch::new();
    let dir = s.path("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let file = plant(&s, "proj/agentsec.yaml");
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    let run = run_from(&s, &dir);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!("refusing {}", file.display()))
            && run.stderr.contains(&format!("owned by uid {uid}")),
        "{run:?}"
    );
    // Ours again, but its directory belongs to the other user.
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let run = run_from(&s, &dir);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!("owned by uid {uid}")),
        "{run:?}"
    );
    // A directory on the way that the other user owns stops the search
    // before it reaches (and trusts) the file above.
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    let sub = s.path("proj/theirs");
    std::fs::create_dir_all(&sub).unwrap();
    std::os::unix::fs::chown(&sub, Some(uid), Some(gid)).unwrap();
    let shown = show_config(&s, &sub);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.starts_with("agentsec.yaml: none in force"),
        "{shown:?}"
    );
}

#[test]
fn the_search_stops_at_the_repository_root_and_at_home() {
    let s = Scratch::new();
    let above = plant(&s, "outer/agentsec.yaml");
    let sub = s.path("outer/repo/src");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(s.path("outer/repo/.git")).unwrap();
    let shown = show_config(&s, &sub);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.starts_with("agentsec.yaml: none in force"),
        "{shown:?}"
    );
    // A worktree's `.git` is a file: the same boundary.
    std::fs::remove_dir(s.path("outer/repo/.git")).unwrap();
    s.write("outer/repo/.git", "gitdir: /elsewhere\n");
    let shown = show_config(&s, &sub);
    assert!(
        shown.stdout.starts_with("agentsec.yaml: none in force"),
        "{shown:?}"
    );
    // Without the repository boundary, the file above is found.
    std::fs::remove_file(s.path("outer/repo/.git")).unwrap();
    let shown = show_config(&s, &sub);
    assert!(
        shown.stdout.starts_with(&format!(
            "agentsec.yaml: {}",
            above.canonicalize().unwrap().display()
        )),
        "{shown:?}"
    );
    // $HOME is a boundary too: a file above it is not read.
    let out = s
        .command(&bin("agentsec-run"))
        .arg("--show-config")
        .env("HOME", s.path("outer/repo"))
        .current_dir(&sub)
        .output()
        .unwrap();
    let shown = Run::from(out);
    assert!(
        shown.stdout.starts_with("agentsec.yaml: none in force"),
        "{shown:?}"
    );
    // The same, for machines.
    let out = s
        .command(&bin("agentsec-run"))
        .args(["--show-config", "--format", "json"])
        .env("HOME", s.path("outer/repo"))
        .current_dir(&sub)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["file"], serde_json::Value::Null, "{json}");
    // A real run with the repository boundary ignores the planted file.
    std::fs::create_dir_all(s.path("outer/repo/.git")).unwrap();
    let run = run_from(&s, &sub);
    assert_eq!(run.code, 0, "{run:?}");
}
