//! `agentsec serve` and `agentsec-run --connect` through real processes and real OS users:
//! identity from `SO_PEERCRED` against the policy's `agents:` bindings, no confused
//! deputy, reload, SIGTERM and SIGKILL, concurrency.
//!
//! The daemon runs as root (the service user here); two users created by the test
//! (`useradd`, CI is root) connect through a socket of group `agentsec-t-clients`.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agentsec_tests::openssh::{indent, keygen, material};
use agentsec_tests::probe::{PROD_PASSWORD, PROD_PASSWORD_PATH};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, root, skill};
use serde_json::{Value, json};

const DEPLOY: &str = "agentsec-t-deploy";
const EVE: &str = "agentsec-t-eve";
const CLIENTS: &str = "agentsec-t-clients";

/// uid and gid of a test user, and the clients group's gid, created once.
struct Users {
    deploy: u32,
    eve: u32,
    clients: u32,
}

fn id_of(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().unwrap();
    assert!(out.status.success(), "id {args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn users() -> &'static Users {
    static USERS: OnceLock<Users> = OnceLock::new();
    USERS.get_or_init(|| {
        let has_group = Command::new("getent")
            .args(["group", CLIENTS])
            .output()
            .unwrap();
        if !has_group.status.success() {
            let st = Command::new("groupadd").arg(CLIENTS).status().unwrap();
            assert!(st.success(), "groupadd (the test needs root)");
        }
        for user in [DEPLOY, EVE] {
            if !Command::new("id")
                .arg(user)
                .output()
                .unwrap()
                .status
                .success()
            {
                let st = Command::new("useradd")
                    .args(["-M", "-N", "-s", "/usr/sbin/nologin", "-G", CLIENTS, user])
                    .status()
                    .unwrap();
                assert!(st.success(), "useradd {user} (the test needs root)");
            }
        }
        let clients = {
            let out = Command::new("getent")
                .args(["group", CLIENTS])
                .output()
                .unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .split(':')
                .nth(2)
                .unwrap()
                .parse()
                .unwrap()
        };
        Users {
            deploy: id_of(&["-u", DEPLOY]),
            eve: id_of(&["-u", EVE]),
            clients,
        }
    })
}

/// The policy of these tests: `ops/release-manager` bound to the deploy user,
/// `ops/operator` to root (so the test itself can speak the raw protocol), identity
/// required.
fn policy(grant_changelog: bool) -> String {
    let changelog = if grant_changelog {
        "    communication.github:\n      allowed_agents: [ops/operator]\n"
    } else {
        ""
    };
    format!(
        "identity: required\n\
         agents:\n  ops/release-manager: {{ unix_users: [{DEPLOY}] }}\n  ops/operator: {{ unix_users: [root] }}\n\
         access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [ops/release-manager, ops/operator]\n{changelog}"
    )
}

/// A daemon for one test, killed on drop.
struct Daemon {
    s: Scratch,
    /// World-traversable directory with the socket, a client binary and a component.
    shared: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn start(policy_text: &str, extra: &[&str]) -> Daemon {
        Daemon::start_in(Scratch::new(), policy_text, extra, None)
    }

    /// As [`Daemon::start`] in `s`, with `secrets` (a SOPS file) instead of the demo's.
    fn start_in(s: Scratch, policy_text: &str, extra: &[&str], secrets: Option<&Path>) -> Daemon {
        let users = users();
        // The service's files: only root can read them.
        let etc = s.path("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
        s.write("etc/policy.yaml", policy_text);
        let secrets = secrets.map_or_else(|| root().join("demo/secrets.yaml"), Path::to_path_buf);
        std::fs::copy(secrets, etc.join("secrets.yaml")).unwrap();
        std::fs::copy(demo_key(), etc.join("age-key.txt")).unwrap();
        std::fs::set_permissions(
            etc.join("age-key.txt"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let skills = s.path("etc/skills");
        std::fs::create_dir_all(&skills).unwrap();
        std::fs::set_permissions(&skills, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(skill("probe"), skills.join("probe.wasm")).unwrap();
        // A symlink in the skills directory that points at the key: never served.
        std::os::unix::fs::symlink(etc.join("age-key.txt"), skills.join("key.wasm")).unwrap();
        let shared = tempfile::Builder::new()
            .prefix("agentsec-serve-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The clients' binary and component, readable by the test users (the target
        // directory is under /root). A hard link: no copy of a large debug binary.
        let client = shared.join("agentsec-run");
        if std::fs::hard_link(bin("agentsec-run"), &client).is_err() {
            std::fs::copy(bin("agentsec-run"), &client).unwrap();
        }
        std::fs::copy(skill("probe"), shared.join("probe.wasm")).unwrap();
        std::fs::set_permissions(
            shared.join("probe.wasm"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let _ = users.clients;
        let mut cmd = s.command(&bin("agentsec"));
        cmd.arg("serve")
            .arg("--socket")
            .arg(shared.join("agentsec.sock"))
            .args(["--socket-group", CLIENTS])
            .arg("--skills")
            .arg(&skills)
            .arg("--policy")
            .arg(etc.join("policy.yaml"))
            .arg("--secrets")
            .arg(etc.join("secrets.yaml"))
            .arg("--audit-log")
            .arg(etc.join("audit.log"))
            .args(extra)
            .env("SOPS_AGE_KEY_FILE", etc.join("age-key.txt"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let mut d = Daemon {
            s,
            shared,
            child: Some(child),
        };
        d.wait_ready();
        d
    }

    fn socket(&self) -> PathBuf {
        self.shared.join("agentsec.sock")
    }

    fn audit_log(&self) -> PathBuf {
        self.s.path("etc/audit.log")
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Readiness: the socket appears only once the policy and the store are loaded.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.socket().exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(
                    self.child.as_mut().unwrap().stderr.as_mut().unwrap(),
                    &mut err,
                );
                panic!("agentsec serve exited ({status}) before listening: {err}");
            }
            assert!(Instant::now() < deadline, "agentsec serve did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `agentsec-run --connect` as `uid` (gid: the clients group), from the shared
    /// directory.
    fn client(&self, uid: u32, skill: &str, agent: &str, input: &Value) -> Run {
        let mut cmd = Command::new(self.shared.join("agentsec-run"));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AGENTSEC_SOCKET", self.socket())
            .current_dir(&self.shared)
            .args([skill, "--connect", "--agent", agent, "--input"])
            .arg(input.to_string())
            .uid(uid)
            .gid(users().clients);
        Run::from(cmd.output().unwrap())
    }

    /// One raw JSON-RPC exchange as root (`ops/operator`).
    fn raw(&self, request: &Value) -> Value {
        let mut stream = UnixStream::connect(self.socket()).unwrap();
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        stream.write_all(&line).unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let st = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn wait(&mut self) -> (i32, String) {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.shared);
    }
}

fn get_password() -> Value {
    json!({"ops": [{"get": PROD_PASSWORD_PATH, "expect": PROD_PASSWORD}]})
}

fn decoded(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json().as_array().cloned().unwrap()
}

/// The bound user runs the demo skill through the daemon; the other is refused, on the
/// record with its uid; neither can read the key; a run through the daemon prints what a
/// local run prints.
#[test]
fn the_bound_user_runs_and_the_other_is_refused_on_the_record() {
    let users = users();
    let d = Daemon::start(&policy(false), &[]);
    for skill in ["probe.wasm", "probe"] {
        let ok = d.client(users.deploy, skill, "ops/release-manager", &get_password());
        let results = decoded(&ok);
        assert_eq!(results[0]["matches"], true, "{ok:?}");
        assert_no_leak(PROD_PASSWORD, ok.stdout.as_bytes(), "the client's stdout");
    }
    let refused = d.client(
        users.eve,
        "probe.wasm",
        "ops/release-manager",
        &get_password(),
    );
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "uid {} (user `{EVE}`) may not act as agent `ops/release-manager`",
            users.eve
        )),
        "{refused:?}"
    );
    assert!(refused.stdout.is_empty());
    // Unbound ids are refused too (identity: required).
    let unbound = d.client(users.eve, "probe.wasm", "ops/nobody", &get_password());
    assert_eq!(unbound.code, 3, "{unbound:?}");
    assert!(unbound.stderr.contains("identity: required"), "{unbound:?}");

    let records = d.records();
    let allowed: Vec<_> = records
        .iter()
        .filter(|r| r["access_type"] == "read" && r["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 2, "{records:#?}");
    for r in &allowed {
        assert_eq!(r["caller"]["uid"], users.deploy);
        assert_eq!(r["caller"]["user"], DEPLOY);
        assert!(r["caller"]["pid"].as_u64().is_some());
        assert_eq!(r["agent_id"], "ops/release-manager");
        // The daemon names the store as a local run does.
        assert_eq!(r["store"]["kind"], "sops", "{r}");
    }
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r["caller"]["uid"] == users.eve)
        .collect();
    assert_eq!(denied.len(), 2, "{records:#?}");
    for r in denied {
        assert_eq!(r["decision"], "deny");
        assert_eq!(r["access_type"], "run");
        assert_eq!(r["caller"]["user"], EVE);
        assert!(
            r["detail"].as_str().unwrap().starts_with("identity: "),
            "{r}"
        );
    }
    // Neither user can read the key or the secrets.
    for uid in [users.deploy, users.eve] {
        for file in ["etc/age-key.txt", "etc/secrets.yaml", "etc/audit.log"] {
            let cat = Command::new("/bin/cat")
                .arg(d.s.path(file))
                .uid(uid)
                .gid(users.clients)
                .output()
                .unwrap();
            assert!(!cat.status.success(), "uid {uid} read {file}");
        }
    }
    let log = std::fs::read(d.audit_log()).unwrap();
    assert_no_leak(PROD_PASSWORD, &log, "the audit log");

    // The same run locally prints the same bytes and exit code.
    let local = Command::new(bin("agentsec-run"))
        .arg(skill("probe"))
        .args(["--agent", "ops/operator", "--input"])
        .arg(get_password().to_string())
        .arg("--policy")
        .arg(d.s.path("etc/policy.yaml"))
        .arg("--secrets")
        .arg(d.s.path("etc/secrets.yaml"))
        .arg("--audit-log")
        .arg(d.s.path("local-audit.log"))
        .env("SOPS_AGE_KEY_FILE", d.s.path("etc/age-key.txt"))
        .current_dir(d.s.path("work"))
        .output()
        .unwrap();
    let remote = Command::new(bin("agentsec-run"))
        .arg(skill("probe"))
        .args(["--connect"])
        .arg(d.socket())
        .args(["--agent", "ops/operator", "--input"])
        .arg(get_password().to_string())
        .current_dir(d.s.path("work"))
        .output()
        .unwrap();
    assert_eq!(local.status.code(), Some(0));
    assert_eq!(local.status.code(), remote.status.code());
    assert_eq!(local.stdout, remote.stdout);
    assert_eq!(local.stderr, remote.stderr);
}

/// The daemon opens only files of its own skills directory: names with `/`, `..`, an
/// absolute path or a symlink out of the directory are refused, and nothing is run.
#[test]
fn a_client_cannot_make_the_daemon_read_a_file() {
    let d = Daemon::start(&policy(false), &[]);
    let key = d.s.path("etc/age-key.txt");
    for name in [
        key.display().to_string(),
        "../age-key.txt".to_owned(),
        "../../etc/age-key.txt".to_owned(),
        "key".to_owned(),
        "key.wasm".to_owned(),
        ".".to_owned(),
        "..".to_owned(),
        "probe/../../age-key.txt".to_owned(),
    ] {
        let answer = d.raw(&json!({"jsonrpc": "2.0", "id": 1, "method": "run",
            "params": {"agent": "ops/operator", "skill": {"installed": name}, "input": "{}"}}));
        let result = &answer["result"];
        assert_eq!(result["exit_code"], 2, "{name}: {answer}");
        let stderr = base64_decode(result["stderr"].as_str().unwrap());
        assert!(!stderr.contains("AGE-SECRET-KEY"), "{name}: {stderr}");
        assert!(
            stderr.contains("not a skill name")
                || stderr.contains("resolves outside")
                || stderr.contains("no skill"),
            "{name}: {stderr}"
        );
    }
    // The protocol's own errors: unknown methods, junk, bad params.
    let unknown = d.raw(&json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover"}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    assert_eq!(unknown["id"], 7);
    let bad = d.raw(&json!({"jsonrpc": "2.0", "id": 8, "method": "run", "params": {"agent": 1}}));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let status = d.raw(&json!({"jsonrpc": "2.0", "id": 9, "method": "status"}));
    assert!(
        status["result"]["workers"].as_u64().unwrap() >= 1,
        "{status}"
    );
    let records = d.records();
    assert!(
        records.iter().all(|r| r["access_type"] != "read"),
        "{records:#?}"
    );
}

fn base64_decode(text: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

/// Writes `text` to `path` the way editors and config managers do: a new file renamed
/// over the old one.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `check` until it holds (the daemon polls the files every second).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn github_read(d: &Daemon) -> Value {
    let run = Command::new(bin("agentsec-run"))
        .arg(skill("probe"))
        .arg("--connect")
        .arg(d.socket())
        .args(["--agent", "ops/operator", "--input"])
        .arg(json!({"ops": [{"get": "communication.github.token"}]}).to_string())
        .current_dir(d.s.path("work"))
        .output()
        .unwrap();
    let run = Run::from(run);
    decoded(&run)[0].clone()
}

/// A grant, then a revocation, under a running daemon: the next runs follow. A broken
/// policy keeps the old one in force, and each reload is an audit event.
#[test]
fn policy_changes_apply_without_a_restart_and_a_broken_one_is_refused() {
    let d = Daemon::start(&policy(false), &[]);
    let file = d.s.path("etc/policy.yaml");
    assert_eq!(github_read(&d)["err"], "denied");
    replace_file(&file, &policy(true));
    eventually("the grant applies", || github_read(&d)["ok"] == true);
    // A broken policy: refused, the grant stays.
    replace_file(
        &file,
        "identity: required\naccess_control:\n  secrets:\n    x:\n      allowed_agents: [\"[\"]\n",
    );
    eventually("the broken policy is refused on the record", || {
        d.records()
            .iter()
            .any(|r| r["access_type"] == "reload" && r["decision"] == "deny")
    });
    assert_eq!(github_read(&d)["ok"], true);
    // SIGHUP reloads at once (here: the revocation).
    std::fs::write(&file, policy(false)).unwrap();
    d.signal("HUP");
    eventually("the revocation applies", || {
        github_read(&d)["err"] == "denied"
    });
    let reloads: Vec<_> = d
        .records()
        .into_iter()
        .filter(|r| r["access_type"] == "reload")
        .collect();
    assert!(
        reloads.iter().filter(|r| r["decision"] == "allow").count() >= 2,
        "{reloads:#?}"
    );
    let refused = reloads.iter().find(|r| r["decision"] == "deny").unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("policy refused, the previous version stays in force"),
        "{refused}"
    );
    assert_eq!(refused["caller"]["uid"], 0);
    let verify = Command::new(bin("agentsec"))
        .args(["audit", "verify"])
        .arg(d.audit_log())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// Many clients at once: every run answered, every record there, exact in count.
#[test]
fn concurrent_clients_get_exact_results_and_records() {
    let d = Daemon::start(&policy(false), &["--workers", "2"]);
    let threads = 8;
    let per_thread = 6;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    let run = d.client(
                        users().deploy,
                        "probe",
                        "ops/release-manager",
                        &get_password(),
                    );
                    assert_eq!(decoded(&run)[0]["matches"], true, "{run:?}");
                }
            });
        }
    });
    let records = d.records();
    let reads = records
        .iter()
        .filter(|r| r["access_type"] == "read" && r["decision"] == "allow")
        .count();
    assert_eq!(reads, threads * per_thread);
    let runs: std::collections::HashSet<_> = records.iter().map(|r| r["run_id"].clone()).collect();
    assert_eq!(runs.len(), threads * per_thread);
}

/// SIGTERM: the run in progress completes and is answered; the socket goes away first.
/// SIGKILL during a burst: the chain verifies and every value released has its record.
#[test]
fn sigterm_lets_runs_finish_and_sigkill_loses_no_record() {
    let mut d = Daemon::start(&policy(false), &[]);
    let slow = {
        let socket = d.socket();
        let work = d.s.path("work");
        std::thread::spawn(move || {
            let out = Command::new(bin("agentsec-run"))
                .arg(skill("probe"))
                .arg("--connect")
                .arg(socket)
                .args(["--agent", "ops/operator", "--input"])
                .arg(json!({"ops": [{"get": PROD_PASSWORD_PATH}, {"sleep_ms": 1500}]}).to_string())
                .current_dir(work)
                .output()
                .unwrap();
            Run::from(out)
        })
    };
    eventually("the slow run started", || {
        d.records().iter().any(|r| r["access_type"] == "read")
    });
    d.signal("TERM");
    eventually("the socket is removed", || !d.socket().exists());
    let run = slow.join().unwrap();
    assert_eq!(decoded(&run)[1]["slept"], 1500, "{run:?}");
    let (code, stderr) = d.wait();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");

    // SIGKILL in the middle of a burst.
    let d = Daemon::start(&policy(false), &[]);
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..20 {
                    let out = Command::new(bin("agentsec-run"))
                        .arg(skill("probe"))
                        .arg("--connect")
                        .arg(d.socket())
                        .args(["--agent", "ops/operator", "--input"])
                        .arg(get_password().to_string())
                        .current_dir(d.s.path("work"))
                        .output()
                        .unwrap();
                    if out.status.success() {
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
        eventually("the burst is under way", || {
            done.load(std::sync::atomic::Ordering::SeqCst) >= 10
        });
        d.signal("KILL");
    });
    let verify = Command::new(bin("agentsec"))
        .args(["audit", "verify"])
        .arg(d.audit_log())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let released = d
        .records()
        .iter()
        .filter(|r| r["access_type"] == "read" && r["decision"] == "allow")
        .count();
    let answered = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        answered >= 10 && released >= answered,
        "released {released}, answered {answered}"
    );
    let log = std::fs::read(d.audit_log()).unwrap();
    assert_no_leak(PROD_PASSWORD, &log, "the audit log");
}

/// `--check` validates and exits; a second daemon on a live socket is refused; a local
/// run is bound by the same `agents:` rule (root is not bound to ops/release-manager).
#[test]
fn check_refusing_a_live_socket_and_the_local_rule() {
    let d = Daemon::start(&policy(false), &[]);
    let etc = d.s.path("etc");
    let base = |cmd: &mut Command, log: &Path| {
        cmd.arg("--policy")
            .arg(etc.join("policy.yaml"))
            .arg("--secrets")
            .arg(etc.join("secrets.yaml"))
            .arg("--audit-log")
            .arg(log)
            .env("SOPS_AGE_KEY_FILE", etc.join("age-key.txt"))
            .current_dir(d.s.path("work"));
    };
    let mut check = Command::new(bin("agentsec"));
    check
        .args(["serve", "--check", "--skills"])
        .arg(etc.join("skills-ok"));
    std::fs::create_dir_all(etc.join("skills-ok")).unwrap();
    std::fs::set_permissions(
        etc.join("skills-ok"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::copy(skill("probe"), etc.join("skills-ok/probe.wasm")).unwrap();
    base(&mut check, &etc.join("check.log"));
    let out = Run::from(check.output().unwrap());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("configuration ok"), "{out:?}");

    let mut broken = Command::new(bin("agentsec"));
    broken
        .args(["serve", "--check", "--policy"])
        .arg(d.s.write("work/bad.yaml", "identity: sometimes\n"))
        .arg("--secrets")
        .arg(etc.join("secrets.yaml"));
    let out = Run::from(broken.current_dir(d.s.path("work")).output().unwrap());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.starts_with("agentsec serve: error: "), "{out:?}");
    assert!(out.stderr.contains("bad.yaml:1:11"), "{out:?}");

    let mut second = Command::new(bin("agentsec"));
    second.arg("serve").arg("--socket").arg(d.socket());
    base(&mut second, &etc.join("second.log"));
    let out = Run::from(second.output().unwrap());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("another agentsec serve is listening"),
        "{out:?}"
    );

    let mut local = Command::new(bin("agentsec-run"));
    local
        .arg(skill("probe"))
        .args(["--agent", "ops/release-manager", "--input"])
        .arg(get_password().to_string());
    base(&mut local, &d.s.path("work/local.log"));
    let out = Run::from(local.output().unwrap());
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("uid 0 (user `root`) may not act as agent `ops/release-manager`"),
        "{out:?}"
    );
    let log = std::fs::read_to_string(d.s.path("work/local.log")).unwrap();
    assert!(
        log.contains("\"caller\":{\"uid\":0,\"user\":\"root\""),
        "{log}"
    );
    assert!(log.contains("\"decision\":\"deny\""), "{log}");
}

/// `--max-agent-rate`: over it a run is refused before it starts (exit 4), on the record;
/// another agent id is not affected.
#[test]
fn an_agent_over_its_rate_is_refused_on_the_record() {
    let d = Daemon::start(&policy(false), &["--max-agent-rate", "1"]);
    let start = |agent: &str| {
        Command::new(bin("agentsec-run"))
            .arg(skill("probe"))
            .arg("--connect")
            .arg(d.socket())
            .args(["--agent", agent, "--input"])
            .arg(get_password().to_string())
            .current_dir(d.s.path("work"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Both at once: one second's worth is one run, whatever the machine's load (runs one
    // after the other could be more than a second apart, and the bucket refills).
    let (a, b) = (start("ops/operator"), start("ops/operator"));
    let mut runs = [a, b].map(|c| Run::from(c.wait_with_output().unwrap()));
    runs.sort_by_key(|r| r.code);
    let [first, second] = runs;
    assert_eq!(decoded(&first)[0]["matches"], true, "{first:?}");
    assert_eq!(second.code, 4, "{second:?}");
    assert!(
        second
            .stderr
            .contains("over its rate of 1 runs per second (--max-agent-rate)"),
        "{second:?}"
    );
    let records = d.records();
    let refused = records
        .iter()
        .find(|r| r["detail"] == "limit: agent run rate exceeded")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(refused["decision"], "deny");
    assert_eq!(refused["caller"]["uid"], 0);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["access_type"] == "read")
            .count(),
        1
    );
}

/// `agentsec serve --ssh-agent ID`: a per-agent SSH agent socket in the daemon (mode 0660,
/// of the socket group), serving the keys the policy lets ID sign with to the OS user the
/// policy binds to ID; another user is refused on the record; every signature is in the
/// daemon's audit log with the caller's uid; a policy change reloads the keys.
#[test]
fn serve_runs_a_per_agent_ssh_agent_for_the_bound_user() {
    let users = users();
    let s = Scratch::new();
    let key = keygen(&s, "deploy", &["-t", "ed25519"]);
    let secrets = s.sops_encrypt(
        "work/ssh-secrets.yaml",
        &format!("ssh:\n  deploy_key: |\n{}", indent(&indent(&key.private))),
    );
    let sign_rule = "    ssh.deploy_key:\n      allowed_agents: [ops/release-manager]\n      access_level: sign\n";
    let granted = format!("{}{sign_rule}", policy(false));
    let mut d = Daemon::start_in(
        s,
        &granted,
        &["--ssh-agent", "ops/release-manager"],
        Some(&secrets),
    );
    let socket = d.shared.join("ssh-agent-ops_release-manager.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), users.clients);

    // A directory of the deploy user's for its files (the signature is written there).
    let work = d.shared.join("deploy-work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(users.deploy), Some(users.clients)).unwrap();
    std::fs::copy(&key.pub_file, work.join("deploy.pub")).unwrap();
    std::fs::write(work.join("message.txt"), "release v6\n").unwrap();
    let as_user = |uid: u32, program: &str, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SSH_AUTH_SOCK", &socket)
            .current_dir(&work)
            .args(args)
            .stdin(Stdio::null())
            .uid(uid)
            .gid(users.clients);
        Run::from(cmd.output().unwrap())
    };

    let list = as_user(users.deploy, "ssh-add", &["-l"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(list.stdout.lines().count(), 1, "{list:?}");
    assert!(list.stdout.contains(&key.fingerprint), "{list:?}");
    assert!(list.stdout.contains("ssh.deploy_key"), "{list:?}");
    let sign = as_user(
        users.deploy,
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-n",
            "file",
            "-f",
            "deploy.pub",
            "message.txt",
        ],
    );
    assert_eq!(sign.code, 0, "{sign:?}");
    let signers = work.join("allowed_signers");
    std::fs::write(&signers, format!("deploy@test {}", key.public)).unwrap();
    let verify = Run::from(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "file", "-I", "deploy@test", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(work.join("message.txt.sig"))
            .stdin(std::fs::File::open(work.join("message.txt")).unwrap())
            .output()
            .unwrap(),
    );
    assert_eq!(verify.code, 0, "{verify:?}");

    // Eve is a member of the socket's group but not bound to the agent id: refused.
    let eve = as_user(users.eve, "ssh-add", &["-l"]);
    assert_ne!(eve.code, 0, "{eve:?}");
    assert!(!eve.stdout.contains(&key.fingerprint), "{eve:?}");

    // The grant removed: the daemon reloads and the agent serves no key.
    replace_file(&d.s.path("etc/policy.yaml"), &policy(false));
    eventually("the key is no longer served", || {
        !as_user(users.deploy, "ssh-add", &["-l"])
            .stdout
            .contains(&key.fingerprint)
    });

    d.signal("TERM");
    let (code, stderr) = d.wait();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !socket.exists(),
        "the agent's socket is removed at shutdown"
    );
    let records = d.records();
    let signed: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["access_type"] == "sign"
                && r["decision"] == "allow"
                && r["detail"] == format!("key {}", key.fingerprint)
        })
        .collect();
    assert_eq!(signed.len(), 1, "{records:#?}");
    assert_eq!(signed[0]["caller"]["uid"], users.deploy);
    assert_eq!(signed[0]["agent_id"], "ops/release-manager");
    assert!(
        records.iter().any(|r| r["decision"] == "deny"
            && r["caller"]["uid"] == users.eve
            && r["detail"].as_str().unwrap_or("").starts_with("identity:")),
        "{records:#?}"
    );
    assert!(
        records.iter().any(|r| r["access_type"] == "reload"
            && r["detail"]
                .as_str()
                .unwrap_or("")
                .contains("ssh-agent keys reloaded")),
        "{records:#?}"
    );
    for line in material(&key) {
        for (path, bytes) in d.s.all_file_bytes() {
            assert_no_leak(&line, &bytes, &path.display().to_string());
        }
        for out in [&list, &sign, &verify, &eve] {
            assert_no_leak(&line, out.stdout.as_bytes(), "stdout");
            assert_no_leak(&line, out.stderr.as_bytes(), "stderr");
        }
        assert_no_leak(&line, stderr.as_bytes(), "serve's stderr");
    }
}
