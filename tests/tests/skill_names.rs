//! A skill's name counts only for a component from the operator's skills
//! directory (`--skills DIR`, `skills_dir:`); any other component is
//! unnamed and matches only `sha256:` entries. `policy check` warns on
//! name-only grants, `policy pin` turns them into digests, and `skills: []`
//! is an error.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use agentsec_tests::{Run, Scratch, bin, demo_key, root, skill, skills_dir};

const POLICY: &str = "# Only the health check may read production.\naccess_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [ops/release-manager]\n      skills: [db-healthcheck]   # the build we reviewed\n";

const INPUT: &str = r#"{"ops": [{"get": "databases.postgres.production.password"}]}"#;

/// The probe skill, renamed to `db_healthcheck.wasm` in `dir`.
fn impostor(s: &Scratch, dir: &str) -> PathBuf {
    let p = s.path(&format!("{dir}/db_healthcheck.wasm"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::copy(skill("probe"), &p).unwrap();
    p
}

fn run(s: &Scratch, component: &Path, policy: &Path, extra: &[&str]) -> Run {
    let input = if extra.contains(&"--input") {
        &[][..]
    } else {
        &["--input", INPUT][..]
    };
    let out = s
        .command(&bin("agentsec-run"))
        .arg(component)
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .args(input)
        .args(extra)
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .unwrap();
    Run::from(out)
}

/// Whether the probe's read was denied (the probe reports each call's
/// outcome as data and exits 0).
fn denied(r: &Run) -> bool {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.contains("\"err\":\"denied\"")
}

fn agentsec(s: &Scratch, args: &[&str]) -> Run {
    Run::from(s.command(&bin("agentsec")).args(args).output().unwrap())
}

fn sha256_of(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

#[test]
fn a_renamed_component_outside_the_skills_directory_is_unnamed() {
    let s = Scratch::new();
    let policy = s.write("work/policy.yaml", POLICY);
    let fake = impostor(&s, "work/downloads");
    let digest = sha256_of(&fake);
    for extra in [&[][..], &["--skills", skills_dir().to_str().unwrap()][..]] {
        let r = run(&s, &fake, &policy, extra);
        assert!(denied(&r), "{r:?}");
        assert!(
            r.stdout.contains("was not loaded from a skills directory")
                && r.stdout.contains(&format!("adding `{digest}`")),
            "{r:?}"
        );
    }
    // The real db-healthcheck from the skills directory is granted by name
    // (it then reads the other production fields, also granted).
    let real = run(
        &s,
        &skill("db-healthcheck"),
        &policy,
        &["--skills", skills_dir().to_str().unwrap(), "--input", "{}"],
    );
    assert_eq!(real.code, 0, "{real:?}");
    assert!(
        !real.stderr.contains("not loaded from a skills directory"),
        "{real:?}"
    );
    // The same real component without --skills is unnamed.
    let unnamed = run(&s, &skill("db-healthcheck"), &policy, &["--input", "{}"]);
    assert!(
        unnamed
            .stderr
            .contains("was not loaded from a skills directory"),
        "{unnamed:?}"
    );
}

#[test]
fn a_skills_directory_names_its_components_only_when_trusted() {
    let s = Scratch::new();
    let policy = s.write("work/policy.yaml", POLICY);
    // The operator's own directory: the name counts (they vouch for it).
    let fake = impostor(&s, "skills");
    let dir = s.path("skills");
    let ok = run(&s, &fake, &policy, &["--skills", dir.to_str().unwrap()]);
    assert!(!denied(&ok), "{ok:?}");
    // Via agentsec.yaml's `skills_dir:` too.
    s.write("work/agentsec.yaml", "skills_dir: ../skills\n");
    let ok = run(&s, &fake, &policy, &[]);
    assert!(!denied(&ok), "{ok:?}");
    std::fs::remove_file(s.path("work/agentsec.yaml")).unwrap();
    // A directory others can write names nothing: refused.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bad = run(&s, &fake, &policy, &["--skills", dir.to_str().unwrap()]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr
            .contains("writable by users other than its owner and root"),
        "{bad:?}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A symlink in the directory to a component elsewhere is not named.
    let outside = impostor(&s, "elsewhere");
    std::fs::remove_file(&fake).unwrap();
    std::os::unix::fs::symlink(&outside, &fake).unwrap();
    let link = run(&s, &fake, &policy, &["--skills", dir.to_str().unwrap()]);
    assert!(denied(&link), "{link:?}");
}

#[test]
fn check_warns_pin_rewrites_and_an_empty_skills_list_is_an_error() {
    let s = Scratch::new();
    let policy = s.write("work/policy.yaml", POLICY);
    let check = agentsec(
        &s,
        &["policy", "check", "--policy", policy.to_str().unwrap()],
    );
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .contains("grants its secrets to skill `db-healthcheck` by name only"),
        "{check:?}"
    );

    let fake = impostor(&s, "work/downloads");
    let digest = sha256_of(&fake);
    let shown = agentsec(
        &s,
        &[
            "policy",
            "pin",
            policy.to_str().unwrap(),
            fake.to_str().unwrap(),
            "--stdout",
        ],
    );
    assert_eq!(shown.code, 0, "{shown:?}");
    let pinned = POLICY.replace("[db-healthcheck]", &format!("[\"{digest}\"]"));
    assert_eq!(shown.stdout, pinned);
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        POLICY,
        "--stdout leaves the file"
    );
    let done = agentsec(
        &s,
        &[
            "policy",
            "pin",
            policy.to_str().unwrap(),
            fake.to_str().unwrap(),
        ],
    );
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        pinned,
        "comments kept, only the entry changed"
    );
    // Pinned: exactly that component is granted, wherever it lies.
    let r = run(&s, &fake, &policy, &[]);
    assert!(!denied(&r), "{r:?}");
    let check = agentsec(
        &s,
        &["policy", "check", "--policy", policy.to_str().unwrap()],
    );
    assert!(!check.stdout.contains("by name only"), "{check:?}");
    // A component no entry names is an error (exit 1), the file untouched.
    let none = agentsec(
        &s,
        &[
            "policy",
            "pin",
            policy.to_str().unwrap(),
            skill("needy").to_str().unwrap(),
        ],
    );
    assert_eq!(none.code, 1, "{none:?}");
    assert!(none.stderr.contains("no `skills:` entry"), "{none:?}");

    let empty = s.write("work/empty.yaml", &POLICY.replace("[db-healthcheck]", "[]"));
    let check = agentsec(
        &s,
        &["policy", "check", "--policy", empty.to_str().unwrap()],
    );
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stderr.contains("empty.yaml:6:")
            && check.stderr.contains("`skills: []` lists no skill"),
        "{check:?}"
    );
}

/// `policy pin` writes like `agentsec secrets` does: through a symlink to its
/// target (the link stays a link), keeping the mode; a FIFO given as the
/// policy is refused at once instead of blocking.
#[test]
fn pin_writes_through_a_symlink_and_refuses_a_fifo() {
    let s = Scratch::new();
    let target = s.write("work/real/policy.yaml", POLICY);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = s.path("work/policy.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fake = impostor(&s, "work/downloads");
    let digest = sha256_of(&fake);
    let done = agentsec(
        &s,
        &[
            "policy",
            "pin",
            link.to_str().unwrap(),
            fake.to_str().unwrap(),
        ],
    );
    assert_eq!(done.code, 0, "{done:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        POLICY.replace("[db-healthcheck]", &format!("[\"{digest}\"]"))
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );

    let fifo = s.path("work/fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = s
        .command(&bin("agentsec"))
        .args([
            "policy",
            "pin",
            fifo.to_str().unwrap(),
            fake.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("policy pin blocked on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_ne!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("FIFO"), "{stderr}");
}
