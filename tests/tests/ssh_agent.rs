//! `agentsec ssh-agent` against the real OpenSSH tools: `ssh-add -l` lists exactly the keys
//! the policy lets the agent sign with, `ssh-keygen -Y sign` through it makes signatures
//! `ssh-keygen -Y verify` accepts, every signature is an audit record (fingerprint, caller),
//! key management requests and unbound peers are refused, and no key material reaches a
//! file, a log or the audit log.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agentsec_tests::openssh::{Key, indent, keygen, material};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key};

/// A running `agentsec ssh-agent`, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(s: &Scratch, agent: &str, policy: &str) -> Agent {
        Agent::start_with(s, agent, policy, &[])
    }

    /// As [`Agent::start`], with `env` added to the agent's environment.
    fn start_with(s: &Scratch, agent: &str, policy: &str, env: &[(&str, &OsStr)]) -> Agent {
        let socket = s.path("tmp/agent/ssh.sock");
        let stderr = s.path(&format!("work/agent-{}.err", agent.replace('/', "_")));
        let mut cmd = s.command(&bin("agentsec"));
        cmd.args(["ssh-agent", "--agent", agent, "--socket"])
            .arg(&socket)
            .args(["--secrets", "secrets.yaml", "--policy", policy])
            .args(["--audit-log", "audit.log"])
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let agent = Agent {
            child,
            socket,
            stderr,
        };
        assert_eq!(
            line.trim(),
            format!(
                "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
                agent.socket.display()
            ),
            "stderr: {}",
            std::fs::read_to_string(&agent.stderr).unwrap_or_default()
        );
        agent
    }

    /// An OpenSSH tool with `SSH_AUTH_SOCK` set to the agent.
    fn tool(&self, s: &Scratch, program: &str) -> Command {
        let mut cmd = s.command(Path::new(program));
        cmd.env("SSH_AUTH_SOCK", &self.socket);
        cmd
    }
}

fn setup(s: &Scratch) -> (Key, Key, Key) {
    let deploy = keygen(s, "deploy", &["-t", "ed25519"]);
    let other = keygen(s, "other", &["-t", "ed25519"]);
    let readable = keygen(s, "readable", &["-t", "ed25519"]);
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "ssh:\n  deploy_key: |\n{}  other_key: |\n{}  readable_key: |\n{}db:\n  password: not-a-key-7731\n",
            indent(&indent(&deploy.private)),
            indent(&indent(&other.private)),
            indent(&indent(&readable.private)),
        ),
    );
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n    ssh.other_key:\n      allowed_agents: [ops/other]\n      access_level: sign\n    ssh.readable_key:\n      allowed_agents: [ops/deploy]\n      access_level: readonly\n    db:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n",
    );
    (deploy, other, readable)
}

fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.stdin(Stdio::null()).output().unwrap())
}

#[test]
fn lists_only_permitted_keys_signs_through_the_agent_and_audits_every_signature() {
    let s = Scratch::new();
    let (deploy, other, readable) = setup(&s);
    let agent = Agent::start(&s, "ops/deploy", "policy.yaml");

    // The socket: 0600 in a 0700 directory.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.socket), 0o600);
    assert_eq!(mode(agent.socket.parent().unwrap()), 0o700);

    // Exactly the key granted at `sign`: not the other agent's, not the readonly one, not
    // a leaf that is no key.
    let list = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(list.code, 0, "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{list:?}");
    assert!(lines[0].contains(&deploy.fingerprint), "{list:?}");
    assert!(lines[0].contains("ssh.deploy_key"), "{list:?}");
    assert!(lines[0].ends_with("(ED25519)"), "{list:?}");
    assert!(!list.stdout.contains(&other.fingerprint));
    assert!(!list.stdout.contains(&readable.fingerprint));

    // A signature through the agent (ssh-keygen finds the private half in the agent from
    // the public key file), accepted by ssh-keygen -Y verify.
    let data = s.write("work/message.txt", "release v1.2.3\n");
    let pub_file = s.path("tmp/deploy.pub");
    let sign = run(agent
        .tool(&s, "ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&pub_file)
        .arg(&data));
    assert_eq!(sign.code, 0, "{sign:?}");
    let signers = s.write(
        "work/allowed_signers",
        &format!("deploy@test {}", deploy.public),
    );
    let verify = Run::from(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "file", "-I", "deploy@test", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(s.path("work/message.txt.sig"))
            .stdin(std::fs::File::open(&data).unwrap())
            .output()
            .unwrap(),
    );
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(
        verify.stdout.contains("Good \"file\" signature"),
        "{verify:?}"
    );

    // Key management is refused; the key list is unchanged.
    let extra = keygen(&s, "extra", &["-t", "ed25519"]);
    let extra_file = s.write("tmp/extra-private", &extra.private);
    std::fs::set_permissions(&extra_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let add = run(agent.tool(&s, "ssh-add").arg(&extra_file));
    std::fs::remove_file(&extra_file).unwrap();
    assert_ne!(add.code, 0, "{add:?}");
    let remove_all = run(agent.tool(&s, "ssh-add").arg("-D"));
    assert_ne!(remove_all.code, 0, "{remove_all:?}");
    let remove = run(agent.tool(&s, "ssh-add").arg("-d").arg(&pub_file));
    assert_ne!(remove.code, 0, "{remove:?}");
    let askpass = s.write("tmp/askpass", "#!/bin/sh\necho lock-pass\n");
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock = run(agent
        .tool(&s, "ssh-add")
        .arg("-x")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0"));
    assert_ne!(lock.code, 0, "{lock:?}");
    let again = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(again.stdout, list.stdout, "{again:?}");

    // The audit log: the key's loading, one record for the signature with the fingerprint
    // and the caller, and the refused requests.
    drop(agent);
    let records = s.audit_records();
    let signs: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["access_type"] == "sign" && r["detail"] != "key load")
        .collect();
    assert_eq!(signs.len(), 1, "{records:#?}");
    let record = signs[0];
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["secret_path"], "ssh.deploy_key", "{record:#?}");
    assert_eq!(record["agent_id"], "ops/deploy");
    assert_eq!(record["skill"]["name"], "ssh-agent");
    assert_eq!(
        record["detail"],
        format!("key {}", deploy.fingerprint),
        "{record:#?}"
    );
    assert_eq!(record["caller"]["uid"], rustix::process::getuid().as_raw());
    assert!(record["caller"]["pid"].as_u64().unwrap() > 0, "{record:#?}");
    let loads: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["detail"] == "key load")
        .collect();
    // The deploy key and the `db` leaf (granted at sign, but no key: skipped).
    assert_eq!(loads.len(), 2, "{records:#?}");
    for refused in ["add refused", "remove refused", "lock/unlock refused"] {
        assert!(
            records
                .iter()
                .any(|r| r["decision"] == "deny"
                    && r["detail"].as_str().unwrap_or("").contains(refused)),
            "{refused}: {records:#?}"
        );
    }
    let stderr = std::fs::read_to_string(s.path("work/agent-ops_deploy.err")).unwrap();
    assert!(stderr.contains("not served: db.password"), "{stderr}");

    // No key material anywhere the test wrote (files, logs, audit log) or in any output.
    for key in [&deploy, &other, &readable, &extra] {
        for line in material(key) {
            for (path, bytes) in s.all_file_bytes() {
                assert_no_leak(&line, &bytes, &path.display().to_string());
            }
            for out in [&list, &sign, &verify, &add, &remove_all, &remove, &lock] {
                assert_no_leak(&line, out.stdout.as_bytes(), "stdout");
                assert_no_leak(&line, out.stderr.as_bytes(), "stderr");
            }
        }
    }
}

#[test]
fn a_peer_not_bound_to_the_agent_id_is_refused_and_recorded() {
    let s = Scratch::new();
    let (deploy, _, _) = setup(&s);
    let me = rustix::process::getuid().as_raw();
    s.write(
        "work/bound.yaml",
        &format!(
            "agents:\n  ops/deploy: {{ unix_users: [\"{me}\"] }}\naccess_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n"
        ),
    );
    let agent = Agent::start(&s, "ops/deploy", "bound.yaml");
    let bound = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(bound.code, 0, "{bound:?}");
    assert!(bound.stdout.contains(&deploy.fingerprint), "{bound:?}");

    // Open the socket to everyone: the file mode is not the only check, the kernel-proved
    // peer is.
    let dir = agent.socket.parent().unwrap();
    for p in [s.dir.path(), &s.path("tmp"), dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ssh-add",
            "-l",
        ])
        .env_clear()
        .env("SSH_AUTH_SOCK", &agent.socket));
    assert_ne!(nobody.code, 0, "{nobody:?}");
    assert!(!nobody.stdout.contains(&deploy.fingerprint), "{nobody:?}");
    drop(agent);
    let records = s.audit_records();
    let refusal = records
        .iter()
        .find(|r| r["caller"]["uid"] == 65534)
        .unwrap_or_else(|| panic!("no record of the refused peer: {records:#?}"));
    assert_eq!(refusal["decision"], "deny");
    assert_eq!(refusal["access_type"], "run");
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .starts_with("identity: "),
        "{refusal:#?}"
    );
    assert!(
        !records
            .iter()
            .any(|r| r["caller"]["uid"] == 65534 && r["decision"] == "allow"),
        "{records:#?}"
    );
}

#[test]
fn every_key_type_makes_signatures_ssh_keygen_verifies() {
    let s = Scratch::new();
    let keys = [
        ("ed25519", keygen(&s, "ed", &["-t", "ed25519"]), "(ED25519)"),
        (
            "rsa",
            keygen(&s, "rsa", &["-t", "rsa", "-b", "3072"]),
            "(RSA)",
        ),
        (
            "ecdsa",
            keygen(&s, "ec", &["-t", "ecdsa", "-b", "256"]),
            "(ECDSA)",
        ),
    ];
    let mut plain = String::from("ssh:\n");
    for (name, key, _) in &keys {
        plain.push_str(&format!("  {name}: |\n{}", indent(&indent(&key.private))));
    }
    s.sops_encrypt("work/secrets.yaml", &plain);
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n",
    );
    let agent = Agent::start(&s, "ops/deploy", "policy.yaml");
    let list = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(list.stdout.lines().count(), 3, "{list:?}");
    let data = s.write("work/message.txt", "release v2\n");
    let mut outputs = vec![list];
    for (name, key, kind) in &keys {
        let line = outputs[0]
            .stdout
            .lines()
            .find(|l| l.contains(&key.fingerprint))
            .unwrap_or_else(|| panic!("{name} not listed: {:?}", outputs[0]));
        assert!(
            line.contains(&format!("ssh.{name}")) && line.ends_with(kind),
            "{line}"
        );
        let pub_file = s.path(&format!(
            "tmp/{}.pub",
            &key.public.split_whitespace().nth(2).unwrap()
        ));
        let sig = s.path("work/message.txt.sig");
        let _ = std::fs::remove_file(&sig);
        let sign = run(agent
            .tool(&s, "ssh-keygen")
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(&pub_file)
            .arg(&data));
        assert_eq!(sign.code, 0, "{name}: {sign:?}");
        let signers = s.write("work/allowed_signers", &format!("k@test {}", key.public));
        let verify = Run::from(
            Command::new("ssh-keygen")
                .args(["-Y", "verify", "-n", "file", "-I", "k@test", "-f"])
                .arg(&signers)
                .arg("-s")
                .arg(&sig)
                .stdin(std::fs::File::open(&data).unwrap())
                .output()
                .unwrap(),
        );
        assert_eq!(verify.code, 0, "{name}: {verify:?}");
        outputs.push(sign);
        outputs.push(verify);
    }
    drop(agent);
    let records = s.audit_records();
    for (name, key, _) in &keys {
        assert!(
            records.iter().any(|r| r["access_type"] == "sign"
                && r["decision"] == "allow"
                && r["secret_path"] == format!("ssh.{name}")
                && r["detail"] == format!("key {}", key.fingerprint)),
            "{name}: {records:#?}"
        );
    }
    for (_, key, _) in &keys {
        for line in material(key) {
            for (path, bytes) in s.all_file_bytes() {
                assert_no_leak(&line, &bytes, &path.display().to_string());
            }
            for out in &outputs {
                assert_no_leak(&line, out.stdout.as_bytes(), "stdout");
                assert_no_leak(&line, out.stderr.as_bytes(), "stderr");
            }
        }
    }
}

#[test]
fn sighup_reloads_the_policy_and_the_keys_it_grants() {
    let s = Scratch::new();
    let (deploy, other, _) = setup(&s);
    let agent = Agent::start(&s, "ops/deploy", "policy.yaml");
    let before = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(before.stdout.lines().count(), 1, "{before:?}");
    // Grant the other key too (the rotation's overlap), and reload.
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n    ssh.other_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n",
    );
    let pid = rustix::process::Pid::from_raw(i32::try_from(agent.child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let mut after = run(agent.tool(&s, "ssh-add").arg("-l"));
    for _ in 0..100 {
        if after.stdout.lines().count() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = run(agent.tool(&s, "ssh-add").arg("-l"));
    }
    assert_eq!(after.stdout.lines().count(), 2, "{after:?}");
    assert!(after.stdout.contains(&deploy.fingerprint), "{after:?}");
    assert!(after.stdout.contains(&other.fingerprint), "{after:?}");
}

#[test]
fn a_key_restricted_to_hosts_signs_nothing_unbound() {
    let s = Scratch::new();
    let (deploy, _, _) = setup(&s);
    s.write(
        "work/hosts.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n      ssh_hosts: [\"SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU\"]\n",
    );
    let agent = Agent::start(&s, "ops/deploy", "hosts.yaml");
    // Listed (the key is loaded), but `ssh-keygen -Y sign` binds no session: refused.
    let list = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert!(list.stdout.contains(&deploy.fingerprint), "{list:?}");
    let data = s.write("work/message.txt", "release v3\n");
    let sign = run(agent
        .tool(&s, "ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&deploy.pub_file)
        .arg(&data));
    assert_ne!(sign.code, 0, "{sign:?}");
    assert!(!s.path("work/message.txt.sig").exists());
    drop(agent);
    let records = s.audit_records();
    assert!(
        records.iter().any(|r| r["access_type"] == "sign"
            && r["decision"] == "deny"
            && r["detail"]
                == format!(
                    "key {}; the host is not in the rule's ssh_hosts",
                    deploy.fingerprint
                )),
        "{records:#?}"
    );
    let stderr = std::fs::read_to_string(agent_stderr(&s)).unwrap();
    assert!(stderr.contains("not bound to a host"), "{stderr}");
}

fn agent_stderr(s: &Scratch) -> PathBuf {
    s.path("work/agent-ops_deploy.err")
}

/// `ssh-add -l` until `done` holds for its output (the agent polls files every second).
fn list_until(s: &Scratch, agent: &Agent, done: impl Fn(&str) -> bool) -> Run {
    let mut list = run(agent.tool(s, "ssh-add").arg("-l"));
    for _ in 0..100 {
        if done(&list.stdout) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        list = run(agent.tool(s, "ssh-add").arg("-l"));
    }
    list
}

#[test]
fn a_changed_policy_or_secrets_file_is_reloaded_without_a_signal() {
    let s = Scratch::new();
    let (deploy, other, _) = setup(&s);
    let agent = Agent::start(&s, "ops/deploy", "policy.yaml");
    let before = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(before.stdout.lines().count(), 1, "{before:?}");

    // The policy grants the other key too: picked up by the file poll.
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n    ssh.other_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n",
    );
    let both = list_until(&s, &agent, |out| out.lines().count() == 2);
    assert!(both.stdout.contains(&other.fingerprint), "{both:?}");

    // A rotation: the SOPS leaf switches to a new key (re-encrypted with the real sops).
    let next = keygen(&s, "next", &["-t", "ed25519"]);
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "ssh:\n  deploy_key: |\n{}  other_key: |\n{}",
            indent(&indent(&next.private)),
            indent(&indent(&other.private)),
        ),
    );
    let rotated = list_until(&s, &agent, |out| out.contains(&next.fingerprint));
    assert!(rotated.stdout.contains(&next.fingerprint), "{rotated:?}");
    assert!(!rotated.stdout.contains(&deploy.fingerprint), "{rotated:?}");

    // A broken policy keeps the keys in force, and says so.
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    ssh.x: [\n",
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let kept = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert_eq!(kept.stdout, rotated.stdout, "{kept:?}");
    drop(agent);
    let records = s.audit_records();
    let reloads: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["access_type"] == "reload")
        .collect();
    assert!(
        reloads.iter().filter(|r| r["decision"] == "allow").count() >= 2,
        "{records:#?}"
    );
    assert!(
        reloads.iter().any(|r| r["decision"] == "deny"),
        "{records:#?}"
    );
    let stderr = std::fs::read_to_string(agent_stderr(&s)).unwrap();
    assert!(stderr.contains("reload failed, keys unchanged"), "{stderr}");
    for key in [&deploy, &other, &next] {
        for line in material(key) {
            for (path, bytes) in s.all_file_bytes() {
                assert_no_leak(&line, &bytes, &path.display().to_string());
            }
        }
    }
}

/// A `confirm: true` key: the agent asks SSH_ASKPASS before every signature, with a
/// prompt naming the key; a yes signs, a no refuses (recorded), and the program sees
/// nothing of the agent's environment beyond what a dialog needs.
#[test]
fn a_confirm_key_signs_only_after_askpass_says_yes() {
    let s = Scratch::new();
    let (deploy, _, _) = setup(&s);
    s.write(
        "work/confirm.yaml",
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n      confirm: true\n",
    );
    // The askpass program: writes its prompt and environment beside it, and answers with
    // the contents of `answer` (a missing file: exit 1, a no).
    let dir = s.path("tmp/askpass");
    std::fs::create_dir_all(&dir).unwrap();
    let askpass = s.write(
        "tmp/askpass/askpass",
        &format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > {d}/prompt\nenv > {d}/env\nexec cat {d}/answer\n",
            d = dir.display()
        ),
    );
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let planted = "vault-token-planted-5c1d";
    let token_file = s.write("tmp/planted-token", planted);
    let agent = Agent::start_with(
        &s,
        "ops/deploy",
        "confirm.yaml",
        &[
            ("SSH_ASKPASS", askpass.as_os_str()),
            ("VAULT_TOKEN", OsStr::new(planted)),
            ("DISPLAY", OsStr::new(":7")),
        ],
    );
    let data = s.write("work/message.txt", "release v4\n");
    let sign = |agent: &Agent| {
        let _ = std::fs::remove_file(s.path("work/message.txt.sig"));
        run(agent
            .tool(&s, "ssh-keygen")
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(&deploy.pub_file)
            .arg(&data))
    };

    // Yes: an empty answer with status 0, as OpenSSH's agent reads it.
    s.write("tmp/askpass/answer", "");
    let yes = sign(&agent);
    assert_eq!(yes.code, 0, "{yes:?}");
    let prompt = std::fs::read_to_string(dir.join("prompt")).unwrap();
    assert!(
        prompt.starts_with("Allow use of key ssh.deploy_key?"),
        "{prompt}"
    );
    assert!(prompt.contains(&deploy.fingerprint), "{prompt}");
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    assert!(env.contains("SSH_ASKPASS_PROMPT=confirm"), "{env}");
    assert!(env.contains("DISPLAY=:7"), "{env}");
    assert!(!env.contains(planted), "{env}");
    assert!(!env.contains("SOPS_AGE_KEY_FILE"), "{env}");

    // No: the program prints `no`; and then it is gone (cannot run): refused too.
    s.write("tmp/askpass/answer", "no\n");
    let no = sign(&agent);
    assert_ne!(no.code, 0, "{no:?}");
    assert!(!s.path("work/message.txt.sig").exists());
    std::fs::remove_file(dir.join("answer")).unwrap();
    let missing = sign(&agent);
    assert_ne!(missing.code, 0, "{missing:?}");
    drop(agent);

    // Without SSH_ASKPASS a confirm key signs nothing, and the record says why.
    let bare = Agent::start(&s, "ops/deploy", "confirm.yaml");
    let unasked = sign(&bare);
    assert_ne!(unasked.code, 0, "{unasked:?}");
    drop(bare);

    let records = s.audit_records();
    let signed = records
        .iter()
        .filter(|r| {
            r["access_type"] == "sign"
                && r["decision"] == "allow"
                && r["detail"] == format!("key {}", deploy.fingerprint)
        })
        .count();
    assert_eq!(signed, 1, "{records:#?}");
    let declined: Vec<&str> = records
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .filter(|d| d.contains("confirmation: "))
        .collect();
    assert_eq!(declined.len(), 3, "{records:#?}");
    assert!(declined[0].contains("the user declined"), "{declined:?}");
    assert!(declined[1].contains("the user declined"), "{declined:?}");
    assert!(
        declined[2].contains("SSH_ASKPASS is not set"),
        "{declined:?}"
    );
    for (path, bytes) in s.all_file_bytes() {
        if path != token_file {
            assert_no_leak(planted, &bytes, &path.display().to_string());
        }
        for line in material(&deploy) {
            assert_no_leak(&line, &bytes, &path.display().to_string());
        }
    }
}

/// A `lifetime` key is listed and signs until its lifetime after the agent loaded it;
/// then it is neither listed nor signs, and a reload does not renew it.
#[test]
fn a_key_with_a_lifetime_is_served_until_it_runs_out() {
    let s = Scratch::new();
    let (deploy, _, _) = setup(&s);
    let policy = "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n      lifetime: 5s\n";
    s.write("work/lifetime.yaml", policy);
    let agent = Agent::start(&s, "ops/deploy", "lifetime.yaml");
    let started = std::time::Instant::now();
    let list = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert!(list.stdout.contains(&deploy.fingerprint), "{list:?}");
    let data = s.write("work/message.txt", "release v5\n");
    let sign = || {
        run(agent
            .tool(&s, "ssh-keygen")
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(&deploy.pub_file)
            .arg(&data))
    };
    let early = sign();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(early.code, 0, "{early:?}");

    // A reload (the same policy written again, a SIGHUP) keeps the first load's time.
    s.write("work/lifetime.yaml", policy);
    let pid = rustix::process::Pid::from_raw(i32::try_from(agent.child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(5).saturating_sub(started.elapsed()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let gone = run(agent.tool(&s, "ssh-add").arg("-l"));
    assert!(!gone.stdout.contains(&deploy.fingerprint), "{gone:?}");
    std::fs::remove_file(s.path("work/message.txt.sig")).unwrap();
    let late = sign();
    assert_ne!(late.code, 0, "{late:?}");
    assert!(!s.path("work/message.txt.sig").exists());
    drop(agent);
    // One signature, the early one (ssh-keygen does not even ask for an unlisted key).
    let records = s.audit_records();
    let signed = records
        .iter()
        .filter(|r| r["access_type"] == "sign" && r["detail"] != "key load")
        .count();
    assert_eq!(signed, 1, "{records:#?}");
}

/// `confirm` and `lifetime` belong to `sign` rules; anywhere else, or malformed, the
/// policy is refused with the file, the line and the fix.
#[test]
fn confirm_and_lifetime_are_checked_where_they_are_written() {
    let s = Scratch::new();
    for (policy, expected) in [
        (
            "access_control:\n  secrets:\n    db.password:\n      allowed_agents: [a/b]\n      confirm: true\n",
            "`confirm` applies only to keys an SSH agent signs with",
        ),
        (
            "access_control:\n  secrets:\n    ssh.k:\n      allowed_agents: [a/b]\n      access_level: sign\n      lifetime: forever\n",
            "invalid lifetime: `forever` is not a duration",
        ),
        (
            "access_control:\n  secrets:\n    ssh.k:\n      allowed_agents: [a/b]\n      access_level: sign\n      lifetime: 400d\n",
            "outside 1s..=365d",
        ),
        (
            "access_control:\n  secrets:\n    ssh.k:\n      allowed_agents: [a/b]\n      access_level: sign\n      confirm: \"yes\"\n",
            "write `confirm: true` or `confirm: false` without quotes",
        ),
    ] {
        s.write("work/p.yaml", policy);
        let check = run(s
            .command(&bin("agentsec"))
            .args(["policy", "check", "--policy", "p.yaml"]));
        assert_ne!(check.code, 0, "{check:?}");
        assert!(check.stderr.contains("p.yaml:"), "{check:?}");
        assert!(check.stderr.contains(expected), "{expected}: {check:?}");
    }
}

/// `agentsec policy diff` reports a dropped `confirm`, a longer `lifetime` and a dropped
/// `ssh_hosts` as widening, and the opposite changes as not.
#[test]
fn policy_diff_counts_looser_key_use_as_widening() {
    let s = Scratch::new();
    let rule = |extra: &str| {
        format!(
            "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n{extra}"
        )
    };
    let host = "SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU";
    let strict = rule(&format!(
        "      confirm: true\n      lifetime: 1h\n      ssh_hosts: [\"{host}\"]\n"
    ));
    let loose = rule("      lifetime: 8h\n");
    s.write("work/strict.yaml", &strict);
    s.write("work/loose.yaml", &loose);
    let diff = |old: &str, new: &str| {
        run(s
            .command(&bin("agentsec"))
            .args(["policy", "diff", old, new]))
    };
    let widened = diff("strict.yaml", "loose.yaml");
    for line in [
        "ssh.deploy_key: ssh_hosts dropped (any host) (widens: yes)",
        "ssh.deploy_key: confirm dropped (signatures no longer asked for) (widens: yes)",
        "ssh.deploy_key: lifetime 1h -> 8h (widens: yes)",
    ] {
        assert!(widened.stdout.contains(line), "{line}: {widened:?}");
    }
    let narrowed = diff("loose.yaml", "strict.yaml");
    for line in [
        "ssh.deploy_key: ssh_hosts set (widens: no)",
        "ssh.deploy_key: confirm set (widens: no)",
        "ssh.deploy_key: lifetime 8h -> 1h (widens: no)",
    ] {
        assert!(narrowed.stdout.contains(line), "{line}: {narrowed:?}");
    }
    assert!(!narrowed.stdout.contains("widens: yes"), "{narrowed:?}");
}
