//! docs/examples/github-actions-deploy.yml, run as a runner would: its steps'
//! commands as an unprivileged user with an empty HOME, a read-only checkout
//! and only `SOPS_AGE_KEY` from the secret store in the environment, against
//! a real PostgreSQL as the central audit store. No plaintext file is left
//! (or was written) anywhere the job could write.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use agentsec_tests::sink_peers::PgCluster;
use agentsec_tests::{Scratch, assert_no_leak, bin, demo_key, root, skill, sops};
use yaml_rust2::{Yaml, YamlLoader};

/// The user the job's commands run as when the tests run as root (root
/// ignores file modes, so a read-only checkout needs someone else).
const CI_USER: &str = "agentsec-ci";

/// Steps the test suite does itself (it builds agentsec and the skill from
/// this checkout).
const PROVIDED: &[&str] = &["Install agentsec", "Build the deploy skill"];

/// Files larger than this are not scanned (no plaintext file is that big;
/// it keeps the scan of /tmp bounded).
const MAX_SCANNED: u64 = 64 * 1024 * 1024;

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn ensure_user() {
    if Command::new("id")
        .arg(CI_USER)
        .output()
        .unwrap()
        .status
        .success()
    {
        return;
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/bin/bash",
            CI_USER,
        ])
        .output()
        .unwrap();
    assert!(
        Command::new("id")
            .arg(CI_USER)
            .output()
            .unwrap()
            .status
            .success(),
        "useradd {CI_USER}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every string leaf of a YAML document (the decrypted secrets).
fn leaves(node: &Yaml, out: &mut Vec<String>) {
    match node {
        Yaml::Hash(map) => map.values().for_each(|v| leaves(v, out)),
        Yaml::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Integer(i) => out.push(i.to_string()),
        _ => {}
    }
}

/// Files under `dir` (not following symlinks) changed since `since`.
fn files_since(dir: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            files_since(&path, since, out);
        } else if meta.is_file()
            && meta.len() <= MAX_SCANNED
            && meta.modified().is_ok_and(|m| m >= since)
        {
            out.push(path);
        }
    }
}

#[test]
fn the_documented_workflow_runs_with_only_the_age_key_and_writes_no_plaintext() {
    let workflow_text =
        std::fs::read_to_string(root().join("docs/examples/github-actions-deploy.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&workflow_text).unwrap();
    let job = &docs[0]["jobs"]["deploy"];
    let steps = job["steps"].as_vec().unwrap();
    // docs/ci.md shows the same steps.
    let ci_md = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    for step in steps {
        if let Some(run) = step["run"].as_str()
            && !PROVIDED.contains(&step["name"].as_str().unwrap_or(""))
        {
            for line in run.lines() {
                assert!(ci_md.contains(line.trim()), "docs/ci.md lacks `{line}`");
            }
        }
    }

    let s = Scratch::new();
    let pg = PgCluster::start();
    let init = s
        .command(&bin("agentsec"))
        .args(["audit", "sink-init", &pg.url("postgres")])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // The checkout: what the repository holds (encrypted secrets, policy)
    // and the skill the "Build" step would have made; then read-only.
    let checkout = s.path("checkout");
    std::fs::create_dir_all(checkout.join("policies")).unwrap();
    std::fs::create_dir_all(checkout.join("skills")).unwrap();
    std::fs::copy(
        root().join("demo/secrets.prod.yaml"),
        checkout.join("secrets.prod.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("policies/demo.yaml"),
        checkout.join("policies/demo.yaml"),
    )
    .unwrap();
    std::fs::copy(
        skill("db-healthcheck"),
        checkout.join("skills/db-healthcheck.wasm"),
    )
    .unwrap();
    let home = s.path("runner-home");
    let runner_temp = s.path("runner-temp");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&runner_temp).unwrap();
    let root_user = is_root();
    if root_user {
        ensure_user();
        sh("chmod", &["755", s.dir.path().to_str().unwrap()]);
        sh(
            "chown",
            &[
                CI_USER,
                home.to_str().unwrap(),
                runner_temp.to_str().unwrap(),
            ],
        );
    }
    sh("chmod", &["-R", "a-w", checkout.to_str().unwrap()]);

    let age_key = std::fs::read_to_string(demo_key()).unwrap();
    let age_key = age_key
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    // The runner's user must be able to run the binaries: the target directory may be
    // under root's home (0700), so they are linked into a directory it can read.
    let bin_tmp = tempfile::Builder::new()
        .prefix("agentsec-ci-bin-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(bin_tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["agentsec-run", "agentsec"] {
        let to = bin_tmp.path().join(name);
        if std::fs::hard_link(bin(name), &to).is_err() {
            std::fs::copy(bin(name), &to).unwrap();
        }
    }
    let bin_dir = bin_tmp.path().to_owned();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display());
    let started = SystemTime::now();
    let mut outputs = Vec::new();
    for step in steps {
        let name = step["name"].as_str().unwrap_or("");
        let Some(run) = step["run"].as_str() else {
            continue;
        };
        if PROVIDED.contains(&name) {
            continue;
        }
        // The environment a runner gives a step: the job's and the step's
        // `env:`, secrets resolved from the CI secret store (which holds
        // only SOPS_AGE_KEY here), and the runner's own variables.
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path.clone()),
            ("HOME".into(), home.display().to_string()),
            ("RUNNER_TEMP".into(), runner_temp.display().to_string()),
            ("CI".into(), "true".into()),
        ];
        for scope in [&job["env"], &step["env"]] {
            if let Some(map) = scope.as_hash() {
                for (k, v) in map {
                    let key = k.as_str().unwrap().to_owned();
                    let value = match v.as_str().unwrap() {
                        "${{ secrets.SOPS_AGE_KEY }}" => age_key.clone(),
                        other if other.starts_with("${{ secrets.") => String::new(),
                        _ if key == "AUDIT_SINK" => pg.url("agentsec"),
                        other => other.to_owned(),
                    };
                    env.push((key, value));
                }
            }
        }
        let mut cmd = if root_user {
            let mut c = Command::new("runuser");
            c.args(["-u", CI_USER, "--", "env", "-i"]);
            c
        } else {
            let mut c = Command::new("env");
            c.arg("-i");
            c
        };
        for (k, v) in &env {
            cmd.arg(format!("{k}={v}"));
        }
        let out = cmd
            .args([
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "-c",
                run,
            ])
            .current_dir(&checkout)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "step `{name}` failed:\n{stdout}\n{stderr}"
        );
        outputs.push((name.to_owned(), stdout, stderr));
    }
    let (_, deploy_out, _) = outputs.iter().find(|(n, ..)| n == "Deploy check").unwrap();
    let report: serde_json::Value = serde_json::from_str(deploy_out).unwrap();
    assert_eq!(report["checks"]["password"], "ok", "{report}");
    assert_eq!(report["healthy"], true, "{report}");
    let (_, ship_out, _) = outputs
        .iter()
        .find(|(n, ..)| n == "Ship the audit log")
        .unwrap();
    assert!(ship_out.contains(", 0 left"), "{ship_out}");

    // Every record is in the store.
    let log = runner_temp.join("agentsec-audit.log");
    let local = std::fs::read_to_string(&log).unwrap().lines().count();
    let stored: usize = pg
        .psql("agentsec", "SELECT count(*) FROM agentsec_audit")
        .unwrap()
        .parse()
        .unwrap();
    assert!(local >= 4, "{local}");
    assert_eq!(stored, local);

    // The values of the secrets file (decrypted here, in memory only).
    let plain = Command::new(sops())
        .args(["decrypt"])
        .arg(root().join("demo/secrets.prod.yaml"))
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .unwrap();
    assert!(plain.status.success());
    let doc = YamlLoader::load_from_str(&String::from_utf8(plain.stdout).unwrap()).unwrap();
    let mut values = Vec::new();
    leaves(&doc[0], &mut values);
    // Short values (ports, booleans) would match by chance anywhere.
    values.retain(|v| v.len() >= 8);
    assert!(values.len() >= 5, "{values:?}");

    // Everything the job could have written: its HOME, $RUNNER_TEMP and the
    // world-writable directories (files changed since the job started), and
    // the checkout, which must be unchanged.
    let mut files = Vec::new();
    for dir in [
        home.as_path(),
        runner_temp.as_path(),
        Path::new("/tmp"),
        Path::new("/var/tmp"),
        Path::new("/dev/shm"),
    ] {
        files_since(dir, started, &mut files);
    }
    files.retain(|f| !f.starts_with(s.path("tmp")) || f.starts_with(&home));
    let mut checkout_files = Vec::new();
    files_since(&checkout, SystemTime::UNIX_EPOCH, &mut checkout_files);
    assert_eq!(
        checkout_files.len(),
        3,
        "the checkout changed: {checkout_files:?}"
    );
    let dump = pg.psql("postgres", "SELECT * FROM agentsec_audit").unwrap();
    for value in &values {
        for file in &files {
            // Other tests' scratch files under /tmp hold demo values by
            // design; only files the job's user owns (or could own) count.
            if root_user {
                use std::os::unix::fs::MetadataExt as _;
                let owner = std::fs::metadata(file).map(|m| m.uid()).unwrap_or(0);
                let ci_uid: u32 = String::from_utf8_lossy(
                    &Command::new("id")
                        .args(["-u", CI_USER])
                        .output()
                        .unwrap()
                        .stdout,
                )
                .trim()
                .parse()
                .unwrap();
                if owner != ci_uid {
                    continue;
                }
            }
            let bytes = std::fs::read(file).unwrap_or_default();
            assert_no_leak(value, &bytes, &file.display().to_string());
        }
        assert_no_leak(value, dump.as_bytes(), "the central audit store");
        for (name, out, err) in &outputs {
            assert_no_leak(value, out.as_bytes(), &format!("stdout of step {name}"));
            assert_no_leak(value, err.as_bytes(), &format!("stderr of step {name}"));
        }
    }
    // The job wrote something (its audit log, its compiled-skill cache): the
    // scan looked at real files.
    assert!(files.iter().any(|f| f == &log), "{files:?}");
}
