//! `agentsec ssh` against a real, unprivileged `sshd` on 127.0.0.1: the agent's key logs
//! in through a private agent socket that is gone afterwards, an agent id without the
//! grant cannot log in, `--secret-stdin` hands the remote command a secret it reads with
//! `read` while the secret is in no process's argv or environment (checked in `/proc`
//! while the remote command waits), and no key material or secret reaches a file.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use agentsec_tests::openssh::{Key, Sshd, indent, keygen, material};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, forms};
use sha2::Digest;

const DB_PASSWORD: &str = "pw-stdin-93c1f0e7-remote";

/// Two keys (ops/deploy's, ops/other's), a password ops/deploy may read, one it may not.
fn setup(s: &Scratch) -> (Key, Key) {
    let deploy = keygen(s, "deploy", &["-t", "ed25519"]);
    let other = keygen(s, "other", &["-t", "ed25519"]);
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "ssh:\n  deploy_key: |\n{}  other_key: |\n{}db:\n  password: {DB_PASSWORD}\n  admin: not-for-deploy-5521\n",
            indent(&indent(&deploy.private)),
            indent(&indent(&other.private)),
        ),
    );
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n    ssh.other_key:\n      allowed_agents: [ops/other]\n      access_level: sign\n    db.password:\n      allowed_agents: [ops/deploy]\n",
    );
    (deploy, other)
}

/// `agentsec ssh --agent AGENT [EXTRA...] -- SSH_ARGS...` in the scratch world.
fn agentsec_ssh(s: &Scratch, agent: &str, extra: &[&str], ssh_args: &[String]) -> Command {
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["ssh", "--agent", agent])
        .args(extra)
        .args(["--secrets", "secrets.yaml", "--policy", "policy.yaml"])
        .args(["--audit-log", "audit.log"])
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .arg("--")
        .args(ssh_args);
    cmd
}

fn leftover_sockets(s: &Scratch) -> Vec<String> {
    std::fs::read_dir(s.path("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("agentsec-ssh-"))
        .collect()
}

#[test]
fn runs_a_command_with_the_agents_key_and_refuses_an_agent_without_the_grant() {
    let s = Scratch::new();
    let (deploy, other) = setup(&s);
    let sshd = Sshd::start(&s, &deploy.public);

    let ok = Run::from(
        agentsec_ssh(
            &s,
            "ops/deploy",
            &[],
            &sshd.ssh_args("echo remote-ok; echo \"auth=${SSH_AUTH_SOCK:-none}\""),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap(),
    );
    assert_eq!(ok.code, 0, "{ok:?}\nsshd: {}", sshd.log());
    assert!(ok.stdout.contains("remote-ok"), "{ok:?}");
    // The agent is not forwarded.
    assert!(ok.stdout.contains("auth=none"), "{ok:?}");
    assert!(
        sshd.log().contains(&format!(
            "Accepted publickey for {} from 127.0.0.1",
            agentsec_tests::openssh::user()
        )),
        "{}",
        sshd.log()
    );
    assert!(sshd.log().contains(&deploy.fingerprint), "{}", sshd.log());
    // The private socket and its directory are gone with the command.
    assert!(
        leftover_sockets(&s).is_empty(),
        "{:?}",
        leftover_sockets(&s)
    );

    // ops/other's agent serves only ops/other's key, which the server does not accept.
    let refused = Run::from(
        agentsec_ssh(&s, "ops/other", &[], &sshd.ssh_args("echo should-not-run"))
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(!refused.stdout.contains("should-not-run"), "{refused:?}");
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "{refused:?}"
    );

    // Each login's signature is on the record, with the server's host key (ssh bound the
    // connection with session-bind@openssh.com).
    let records = s.audit_records();
    let signs: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["access_type"] == "sign" && r["detail"] != "key load")
        .collect();
    assert!(!signs.is_empty(), "{records:#?}");
    for r in &signs {
        assert_eq!(r["decision"], "allow", "{r:#?}");
        assert_eq!(r["skill"]["name"], "ssh-agent", "{r:#?}");
        let detail = r["detail"].as_str().unwrap();
        // ops/other's key is never asked to sign: the server refuses it at the query.
        assert_eq!(
            detail,
            format!("key {} host {}", deploy.fingerprint, sshd.host_fingerprint),
            "{r:#?}"
        );
    }
    assert!(
        records.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("ssh end: exit 0"))),
        "{records:#?}"
    );

    for key in [&deploy, &other] {
        for line in material(key) {
            for (path, bytes) in s.all_file_bytes() {
                assert_no_leak(&line, &bytes, &path.display().to_string());
            }
            for out in [&ok, &refused] {
                assert_no_leak(&line, out.stdout.as_bytes(), "stdout");
                assert_no_leak(&line, out.stderr.as_bytes(), "stderr");
            }
        }
    }
}

/// Every `/proc/PID/cmdline` and `/proc/PID/environ` that can be read.
fn all_argv_and_env() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for file in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(file)) {
                out.push((format!("/proc/{name}/{file}"), bytes));
            }
        }
    }
    out
}

/// A Vault token in agentsec's environment (planted): ssh must not inherit it.
const PLANTED_TOKEN: &str = "hvs.planted-token-e41b9c";

#[test]
fn secret_stdin_reaches_the_remote_command_and_no_argv_or_environment() {
    let s = Scratch::new();
    let (deploy, _) = setup(&s);
    let sshd = Sshd::start(&s, &deploy.public);
    // The remote script: read the secret line, print its hash, then wait for a line of
    // the caller's own stdin (the test scans /proc meanwhile), and echo it.
    let script = "IFS= read -r line; printf '%s' \"$line\" | sha256sum; \
                  IFS= read -r rest; echo \"after:$rest\"";
    let mut child = agentsec_ssh(
        &s,
        "ops/deploy",
        &["--secret-stdin", "DB_PASSWORD=db.password"],
        &sshd.ssh_args(script),
    )
    // What unlocks a store never reaches ssh (agentsec ssh removes it from ssh's env).
    .env("VAULT_TOKEN", PLANTED_TOKEN)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let want = hex::encode(sha2::Sha256::digest(format!("DB_PASSWORD={DB_PASSWORD}")));
    assert!(
        first.starts_with(&want),
        "remote read {first:?}, not the secret line"
    );

    // The remote command is blocked on its second `read`: both sides are alive.
    let procs = all_argv_and_env();
    assert!(
        procs.iter().any(|(p, b)| p.ends_with("cmdline")
            && String::from_utf8_lossy(b).contains("IFS= read -r rest")),
        "the remote shell is not running"
    );
    assert!(
        procs.iter().any(|(p, b)| p.ends_with("cmdline")
            && String::from_utf8_lossy(b).contains("--secret-stdin")),
        "agentsec ssh is not running"
    );
    for (place, bytes) in &procs {
        assert_no_leak(DB_PASSWORD, bytes, place);
    }
    // The token: in agentsec ssh's own environment (it was started with it), in no other.
    for (place, bytes) in &procs {
        let Some(pid_dir) = place.strip_suffix("/environ") else {
            continue;
        };
        let cmdline = procs
            .iter()
            .find(|(p, _)| *p == format!("{pid_dir}/cmdline"))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        if !cmdline.contains("--secret-stdin") {
            assert_no_leak(PLANTED_TOKEN, bytes, place);
        }
    }

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"caller-line\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(rest.trim(), "after:caller-line", "{stderr}");

    // The read is on the record (skill `ssh`), never the value.
    let records = s.audit_records();
    let read = records
        .iter()
        .find(|r| r["access_type"] == "read" && r["secret_path"] == "db.password")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(read["decision"], "allow");
    assert_eq!(read["skill"]["name"], "ssh");
    for (path, bytes) in s.all_file_bytes() {
        assert_no_leak(DB_PASSWORD, &bytes, &path.display().to_string());
    }
    assert_no_leak(DB_PASSWORD, stderr.as_bytes(), "stderr");
    assert!(!forms(DB_PASSWORD).iter().any(|f| rest.contains(f.as_str())));
    assert!(leftover_sockets(&s).is_empty());
}

#[test]
fn a_refused_secret_stops_ssh_before_it_starts() {
    let s = Scratch::new();
    let (deploy, _) = setup(&s);
    let sshd = Sshd::start(&s, &deploy.public);
    let refused = Run::from(
        agentsec_ssh(
            &s,
            "ops/deploy",
            &[
                "--secret-stdin",
                "db.password",
                "--secret-stdin",
                "db.admin",
            ],
            &sshd.ssh_args("echo should-not-run"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap(),
    );
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("agentsec ssh: error: refused, ssh was not started:"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("db.admin"), "{refused:?}");
    assert!(!refused.stdout.contains("should-not-run"));
    // ssh never connected (the one connection logged is the start-up probe's).
    let log = sshd.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "{log}"
    );
    assert!(log.matches("Connection from").count() <= 1, "{log}");
    assert!(
        s.audit_records()
            .iter()
            .any(|r| r["secret_path"] == "db.admin" && r["decision"] == "deny")
    );

    // A bad NAME or an empty path is a usage error (125) before anything is read.
    let bad = Run::from(
        agentsec_ssh(
            &s,
            "ops/deploy",
            &["--secret-stdin", "X="],
            &sshd.ssh_args("true"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap(),
    );
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(bad.stderr.contains("the secret path is empty"), "{bad:?}");
}

/// `policy.yaml` granting ops/deploy its key at `sign` with `ssh_hosts: [HOST]`.
fn restricted_policy(s: &Scratch, host: &str) {
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n      ssh_hosts: [\"{host}\"]\n"
        ),
    );
}

#[test]
fn a_key_restricted_to_another_host_key_is_refused_and_the_refusal_names_the_host() {
    let s = Scratch::new();
    let (deploy, _) = setup(&s);
    let sshd = Sshd::start(&s, &deploy.public);
    // Some other server's host key.
    let elsewhere = keygen(&s, "elsewhere-host", &["-t", "ed25519"]).fingerprint;
    restricted_policy(&s, &elsewhere);
    let refused = Run::from(
        agentsec_ssh(&s, "ops/deploy", &[], &sshd.ssh_args("echo should-not-run"))
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(!refused.stdout.contains("should-not-run"));
    let records = s.audit_records();
    let deny = records
        .iter()
        .find(|r| r["access_type"] == "sign" && r["decision"] == "deny")
        .unwrap_or_else(|| panic!("no refused signature: {records:#?}"));
    assert_eq!(deny["secret_path"], "ssh.deploy_key");
    assert_eq!(deny["rule"], "ssh.deploy_key");
    assert_eq!(
        deny["detail"],
        format!(
            "key {} host {}; the host is not in the rule's ssh_hosts",
            deploy.fingerprint, sshd.host_fingerprint
        ),
        "{deny:#?}"
    );
    assert!(
        !records.iter().any(|r| r["access_type"] == "sign"
            && r["decision"] == "allow"
            && r["detail"] != "key load"),
        "{records:#?}"
    );

    // Restricted to this server's host key, the same key logs in.
    restricted_policy(&s, &sshd.host_fingerprint);
    let ok = Run::from(
        agentsec_ssh(&s, "ops/deploy", &[], &sshd.ssh_args("echo bound-ok"))
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("bound-ok"));
    assert!(s.audit_records().iter().any(|r| r["access_type"] == "sign"
        && r["decision"] == "allow"
        && r["detail"] == format!("key {} host {}", deploy.fingerprint, sshd.host_fingerprint)));
}
