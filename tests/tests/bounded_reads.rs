//! Every file and stream agentsec reads is bounded by a named limit checked
//! while reading, and a non-regular file where a regular one is meant is
//! refused at once: `/dev/zero`, a FIFO (which would block forever), a
//! directory, an oversized file. Through the real `agentsec-run`.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentsec_tests::{Run, Scratch, bin, demo_key, root, skill};

/// Longer than any of these runs takes, far shorter than "forever".
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `cmd`; fails the test (after killing it) if it outlives [`DEADLINE`].
fn run_bounded(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Run::from(child.wait_with_output().unwrap());
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "agentsec-run blocked for {DEADLINE:?}: {:?}",
                Run::from(out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) -> PathBuf {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
    path.to_owned()
}

struct Args {
    skill: PathBuf,
    secrets: PathBuf,
    policy: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, PathBuf)>,
}

impl Args {
    fn new() -> Args {
        Args {
            skill: skill("probe"),
            secrets: root().join("demo/secrets.yaml"),
            policy: root().join("tests/testdata/policies/e2e.yaml"),
            extra: vec!["--input".into(), r#"{"ops": []}"#.into()],
            env: vec![("SOPS_AGE_KEY_FILE".into(), demo_key())],
        }
    }

    fn run(self, s: &Scratch) -> Run {
        let mut cmd = s.command(&bin("agentsec-run"));
        cmd.arg(&self.skill)
            .args(["--agent", "ops/release-manager", "--secrets"])
            .arg(&self.secrets)
            .arg("--policy")
            .arg(&self.policy)
            .arg("--audit-log")
            .arg(s.audit_log())
            .args(&self.extra);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_bounded(cmd)
    }
}

fn assert_refused(run: &Run, what: &[&str]) {
    assert_eq!(run.code, 2, "{run:?}");
    for w in what {
        assert!(run.stderr.contains(w), "stderr should say {w:?}: {run:?}");
    }
}

#[test]
fn input_from_dev_zero_a_fifo_or_a_huge_file_is_refused() {
    let s = Scratch::new();
    let mut a = Args::new();
    a.extra = vec!["--input".into(), "@/dev/zero".into()];
    assert_refused(
        &a.run(&s),
        &["--input @/dev/zero", "character device, not a regular file"],
    );

    let fifo = mkfifo(&s.path("work/input.fifo"));
    let mut a = Args::new();
    a.extra = vec!["--input".into(), format!("@{}", fifo.display())];
    assert_refused(&a.run(&s), &["FIFO"]);

    let mut a = Args::new();
    a.extra = vec!["--input".into(), format!("@{}", s.path("work").display())];
    assert_refused(&a.run(&s), &["a directory"]);

    // Over the default limit (16 MiB): refused by size, not read whole.
    let big = s.path("work/big.json");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(17 << 20).unwrap();
    let mut a = Args::new();
    a.extra = vec!["--input".into(), format!("@{}", big.display())];
    assert_refused(
        &a.run(&s),
        &["larger than the 16777216-byte limit", "--max-input"],
    );

    // The limit is a flag (and `sandbox.max_input`).
    let small = s.write(
        "work/small.json",
        &format!("{{\"pad\": \"{}\"}}", "x".repeat(2048)),
    );
    let mut a = Args::new();
    a.extra = vec![
        "--input".into(),
        format!("@{}", small.display()),
        "--max-input".into(),
        "1KiB".into(),
    ];
    assert_refused(&a.run(&s), &["1024-byte limit"]);
    let mut a = Args::new();
    a.extra = vec!["--input".into(), format!("@{}", small.display())];
    assert_eq!(a.run(&s).code, 0, "within the default limit");
}

#[test]
fn input_from_an_endless_stdin_stops_at_the_limit() {
    let s = Scratch::new();
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.audit_log())
        .args(["--input", "@-", "--max-input", "1MiB"])
        .env("SOPS_AGE_KEY_FILE", demo_key());
    let mut child = cmd
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < DEADLINE, "reading stdin did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert_refused(&run, &["--input @-", "1048576-byte limit"]);
}

#[test]
fn a_component_that_is_a_device_a_fifo_or_a_directory_is_refused() {
    let s = Scratch::new();
    for (path, says) in [
        (PathBuf::from("/dev/zero"), "character device"),
        (mkfifo(&s.path("work/skill.wasm")), "FIFO"),
        (s.path("work"), "a directory"),
    ] {
        let mut a = Args::new();
        a.skill = path;
        assert_refused(&a.run(&s), &["cannot read skill", says]);
    }
    // A file that grows past the limit is caught while reading: a sparse
    // file reports its size honestly, so use the size check through it.
    let big = s.path("work/big.wasm");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let mut a = Args::new();
    a.skill = big;
    assert_refused(&a.run(&s), &["component size limit"]);
}

#[test]
fn a_fifo_or_directory_as_secrets_policy_or_key_is_refused_without_blocking() {
    let s = Scratch::new();
    let fifo = mkfifo(&s.path("work/pipe.yaml"));

    let mut a = Args::new();
    a.secrets = fifo.clone();
    assert_refused(&a.run(&s), &["FIFO"]);
    let mut a = Args::new();
    a.secrets = s.path("work");
    assert_refused(&a.run(&s), &["a directory"]);
    let mut a = Args::new();
    a.secrets = PathBuf::from("/dev/zero");
    assert_refused(&a.run(&s), &["character device"]);

    let mut a = Args::new();
    a.policy = fifo.clone();
    assert_refused(&a.run(&s), &["FIFO"]);
    // A FIFO among the *.yaml files of a policy directory is refused, not
    // skipped (a skipped file could hold a deny).
    let dir = s.path("work/policies");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("tests/testdata/policies/e2e.yaml"),
        dir.join("a.yaml"),
    )
    .unwrap();
    mkfifo(&dir.join("b.yaml"));
    let mut a = Args::new();
    a.policy = dir;
    assert_refused(&a.run(&s), &["b.yaml", "FIFO"]);

    // The age key file (SOPS_AGE_KEY_FILE) and the audit key.
    let mut a = Args::new();
    a.env = vec![("SOPS_AGE_KEY_FILE".into(), fifo.clone())];
    assert_refused(&a.run(&s), &["FIFO"]);
    let mut a = Args::new();
    a.extra
        .extend(["--audit-key".into(), fifo.display().to_string()]);
    assert_refused(&a.run(&s), &["audit key", "FIFO"]);
}

#[test]
fn an_agentsec_yaml_that_is_a_fifo_does_not_block_and_a_huge_one_is_refused() {
    let s = Scratch::new();
    mkfifo(&s.path("work/agentsec.yaml"));
    let run = Args::new().run(&s);
    assert_ne!(run.code, -1, "{run:?}");

    let s = Scratch::new();
    s.write("work/agentsec.yaml", &format!("# {}\n", "x".repeat(70_000)));
    let run = Args::new().run(&s);
    assert_refused(&run, &["agentsec.yaml", "limit"]);
}
