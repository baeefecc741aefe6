//! Audit sinks against real servers: a PostgreSQL 15 cluster and rsyslogd,
//! each started by the test on a free loopback port. Every record arrives
//! exactly once after de-duplication, across a sink restart during a burst
//! of runs and a SIGKILL of the shipper; `verify --from` names the host and
//! seq of tampering; `query --from --summary` answers across hosts.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agentsec_audit::{AccessType, AuditLog, Decision, Record, RunContext};
use agentsec_tests::probe::PROD_PASSWORD;
use agentsec_tests::sink_peers::{PgCluster, Rsyslog};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, root, skill};
use serde_json::json;

/// A PostgreSQL cluster with the table made by `agentsec audit sink-init`
/// (as the superuser) and the shipping role `agentsec`.
fn store(s: &Scratch) -> PgCluster {
    let pg = PgCluster::start();
    let init = agentsec(s, &["audit", "sink-init", &pg.url("postgres")]);
    assert_eq!(init.code, 0, "{init:?}");
    assert!(
        init.stdout
            .contains("role agentsec may SELECT and INSERT only"),
        "{init:?}"
    );
    // Idempotent.
    let again = agentsec(s, &["audit", "sink-init", &pg.url("postgres")]);
    assert_eq!(again.code, 0, "{again:?}");
    pg
}

fn agentsec(s: &Scratch, args: &[&str]) -> Run {
    Run::from(agentsec_cmd(s, args).output().unwrap())
}

fn agentsec_cmd(s: &Scratch, args: &[&str]) -> Command {
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(args).env("SOPS_AGE_KEY_FILE", demo_key());
    cmd
}

/// `agentsec-run probe` reading the production password (2 records per run).
fn probe(s: &Scratch, extra: &[&str]) -> Run {
    let input = json!({ "ops": [
        {"get": "databases.postgres.production.password", "expect": PROD_PASSWORD},
        {"get": "databases.postgres.production.port"},
    ]})
    .to_string();
    let out = s
        .command(&bin("agentsec-run"))
        .arg(skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .args(["--input", &input, "--audit-log"])
        .arg(s.audit_log())
        .args(extra)
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .unwrap();
    Run::from(out)
}

/// Appends `n` records to the log at `path` (what many runs would write).
fn write_log(path: &Path, agent: &str, n: usize) {
    let mut log = AuditLog::open(path).unwrap();
    let run = RunContext::new(agent, "deploy", "ab".repeat(32), "cd".repeat(16));
    for i in 0..n {
        let secret = format!("db.prod.password{}", i % 3);
        let record = Record::new(&run, &secret, AccessType::Read, Decision::Allow).rule("db");
        log.append_unsynced(&record).unwrap();
    }
    log.sync().unwrap();
}

/// (seq, hash) of every entry of the local log, in order.
fn local_hashes(path: &Path) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    agentsec_audit::read_entries(&agentsec_audit::log_files(path).unwrap(), |e| {
        out.push((e.seq, e.hash));
    })
    .unwrap();
    out
}

/// (seq, hash) of every row of the store for `host`, by seq.
fn stored_hashes(pg: &PgCluster, host: &str) -> Vec<(u64, String)> {
    let text = pg
        .psql(
            "agentsec",
            &format!(
                "SELECT seq || ' ' || hash FROM agentsec_audit WHERE host = '{host}' ORDER BY seq"
            ),
        )
        .unwrap();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (seq, hash) = l.split_once(' ').unwrap();
            (seq.parse().unwrap(), hash.to_owned())
        })
        .collect()
}

fn hostname() -> String {
    agentsec_cli_hostname()
}

/// What `agentsec` ships under by default (`uname -n`).
fn agentsec_cli_hostname() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn postgres_sink_restarted_during_a_burst_gets_every_record_exactly_once() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    // The shipping role may read and add rows, never change or remove them.
    assert!(
        pg.psql("agentsec", "SELECT count(*) FROM agentsec_audit")
            .is_ok()
    );
    for sql in [
        "UPDATE agentsec_audit SET hash = ''",
        "DELETE FROM agentsec_audit",
        "TRUNCATE agentsec_audit",
        "DROP TABLE agentsec_audit",
    ] {
        let err = pg.psql("agentsec", sql).unwrap_err();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }

    let mut warned = 0;
    for i in 0..9 {
        if i == 3 {
            pg.stop();
        }
        if i == 6 {
            pg.start_server();
        }
        let run = probe(&s, &["--audit-sink", &url]);
        assert_eq!(run.code, 0, "run {i}: {run:?}");
        if (3..6).contains(&i) {
            // The run succeeds (`ship: async`), and says what is pending.
            assert!(
                run.stderr
                    .contains("not yet shipped to postgres://agentsec@127.0.0.1"),
                "run {i}: {}",
                run.stderr
            );
            warned += 1;
        }
        assert_no_leak(
            PROD_PASSWORD,
            run.stderr.as_bytes(),
            "stderr of a run with a sink",
        );
    }
    assert_eq!(warned, 3);
    // Runs 6.. shipped the backlog from the cursor: nothing is left.
    let local = local_hashes(&s.audit_log());
    assert!(local.len() >= 18, "{}", local.len());
    assert_eq!(stored_hashes(&pg, &hostname()), local);
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            s.audit_log().to_str().unwrap(),
            "--audit-sink",
            &url,
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    assert!(ship.stdout.contains("shipped 0, 0 left"), "{ship:?}");

    // The store holds no value, in any form, in any column.
    let dump = pg.psql("postgres", "SELECT * FROM agentsec_audit").unwrap();
    assert_no_leak(PROD_PASSWORD, dump.as_bytes(), "the central store");
}

#[test]
fn audit_ship_killed_mid_shipping_resumes_and_de_duplicates() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    let log = s.path("work/big.log");
    write_log(&log, "ops/ci", 20_000);
    let log_arg = log.to_str().unwrap();

    // Kill the shipper once the store has some but not all of the log.
    let mut child = agentsec_cmd(&s, &["audit", "ship", log_arg, "--audit-sink", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut partial = 0u64;
    for _ in 0..2000 {
        partial = pg
            .psql("agentsec", "SELECT count(*) FROM agentsec_audit")
            .unwrap()
            .parse()
            .unwrap();
        if partial > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(partial > 0, "nothing was shipped before the kill");
    assert!(
        partial < 20_000 || status.success(),
        "the kill came too late to test anything"
    );

    // The cursor is never past what the store has.
    let cursor_dir = agentsec_audit::sink::cursor_dir(&log);
    let cursor: serde_json::Value = std::fs::read_dir(&cursor_dir)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "cursor"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .unwrap_or(json!({"seq": 0}));
    let at = cursor["seq"].as_u64().unwrap();
    let stored: u64 = pg
        .psql("agentsec", "SELECT count(*) FROM agentsec_audit")
        .unwrap()
        .parse()
        .unwrap();
    assert!(at <= stored, "cursor {at} is past the {stored} rows stored");

    // Restarted: it resumes from the cursor and finishes.
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            log_arg,
            "--audit-sink",
            &url,
            "--format",
            "json",
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    assert_eq!(ship.json()[0]["pending"], 0);
    assert_eq!(ship.json()[0]["cursor"], 20_000);
    assert_eq!(stored_hashes(&pg, &hostname()), local_hashes(&log));

    // A crash after the INSERT and before the cursor moved (rewind it by
    // hand): the batch is sent again and de-duplicated, not doubled.
    let path = std::fs::read_dir(&cursor_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "cursor"))
        .unwrap();
    let mut rewound: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let local = local_hashes(&log);
    rewound["seq"] = json!(19_000);
    rewound["hash"] = json!(local[18_999].1);
    std::fs::write(&path, rewound.to_string()).unwrap();
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            log_arg,
            "--audit-sink",
            &url,
            "--format",
            "json",
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    assert_eq!(ship.json()[0]["shipped"], 1000);
    let count: u64 = pg
        .psql("agentsec", "SELECT count(*) FROM agentsec_audit")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(count, 20_000);

    // The sink down: `audit ship` retries, then exits 1 with the records kept.
    write_log(&log, "ops/ci", 5);
    pg.stop();
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            log_arg,
            "--audit-sink",
            &url,
            "--retry-for",
            "300ms",
        ],
    );
    assert_eq!(ship.code, 1, "{ship:?}");
    assert!(ship.stdout.contains("shipped 0, 5 left"), "{ship:?}");
    assert!(ship.stderr.contains("left unshipped"), "{ship:?}");
    pg.start_server();
    let ship = agentsec(&s, &["audit", "ship", log_arg, "--audit-sink", &url]);
    assert_eq!(ship.code, 0, "{ship:?}");
    assert_eq!(stored_hashes(&pg, &hostname()), local_hashes(&log));
}

/// Rewrites entry `seq` of an unkeyed log and every entry after it, as an
/// attacker with write access but no key would (the chain stays valid).
fn rewrite_local(path: &Path, seq: u64, new_secret: &str) {
    use sha2::{Digest, Sha256};
    let text = std::fs::read_to_string(path).unwrap();
    let mut prev = String::new();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let this = v["seq"].as_u64().unwrap();
        if this >= seq {
            if this == seq {
                v["secret_path"] = json!(new_secret);
            }
            v["prev"] = json!(prev);
            let obj = v.as_object_mut().unwrap();
            obj.remove("hash");
            let canonical = serde_json::to_string(&v).unwrap();
            let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
            let mut written = canonical;
            written.pop();
            written.push_str(&format!(",\"hash\":\"{hash}\"}}"));
            prev = hash;
            out.push_str(&written);
        } else {
            prev = v["hash"].as_str().unwrap().to_owned();
            out.push_str(line);
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn verify_from_checks_every_host_and_names_the_tampered_one() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    let alpha = s.path("alpha/audit.log");
    let beta = s.path("beta/audit.log");
    std::fs::create_dir_all(alpha.parent().unwrap()).unwrap();
    std::fs::create_dir_all(beta.parent().unwrap()).unwrap();
    write_log(&alpha, "ops/alpha", 10);
    write_log(&beta, "ops/beta", 12);
    for (log, host) in [(&alpha, "alpha"), (&beta, "beta")] {
        let ship = agentsec(
            &s,
            &[
                "audit",
                "ship",
                log.to_str().unwrap(),
                "--audit-sink",
                &url,
                "--host",
                host,
            ],
        );
        assert_eq!(ship.code, 0, "{ship:?}");
    }
    let logs = [alpha.to_str().unwrap(), beta.to_str().unwrap()];
    let ok = agentsec(&s, &["audit", "verify", "--from", &url, logs[0], logs[1]]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("ok: host alpha log"), "{ok:?}");
    assert!(ok.stdout.contains("ok: host beta log"), "{ok:?}");
    assert!(ok.stdout.contains("10 entries"), "{ok:?}");

    // Beta's local log rewritten after shipping (a consistent chain, so a
    // local verify alone passes): the store tells the histories apart.
    rewrite_local(&beta, 4, "db.prod.other");
    let local = agentsec(&s, &["audit", "verify", logs[1]]);
    assert_eq!(
        local.code, 0,
        "the forged chain is internally valid: {local:?}"
    );
    let forked = agentsec(&s, &["audit", "verify", "--from", &url, logs[0], logs[1]]);
    assert_eq!(forked.code, 1, "{forked:?}");
    assert!(
        forked.stdout.contains("MISMATCH: ") && forked.stdout.contains("beta/audit.log: host beta"),
        "{forked:?}"
    );
    assert!(forked.stdout.contains("histories forked"), "{forked:?}");
    assert!(
        forked.stdout.contains(&format!("ok: {}", logs[0])),
        "{forked:?}"
    );
    // Shipping the forged log is refused: the store keeps the original.
    let ship = agentsec(&s, &["audit", "ship", logs[1], "--audit-sink", &url]);
    assert_ne!(ship.code, 0, "{ship:?}");
    assert!(
        ship.stderr.contains("rewritten after it was shipped"),
        "{ship:?}"
    );

    // The store itself tampered with (by its superuser): an edited row, a
    // deleted row; each named by host and seq.
    pg.psql(
        "postgres",
        "UPDATE agentsec_audit SET line = replace(line, 'db.prod.password', 'db.prod.passwerd') WHERE host = 'beta' AND seq = 7",
    )
    .unwrap();
    let edited = agentsec(&s, &["audit", "verify", "--from", &url, "--format", "json"]);
    assert_eq!(edited.code, 1, "{edited:?}");
    let report = edited.json();
    let chains = report["chains"].as_array().unwrap();
    let by_host = |h: &str| chains.iter().find(|c| c["host"] == h).unwrap().clone();
    assert_eq!(by_host("alpha")["ok"], true);
    assert_eq!(by_host("beta")["ok"], false);
    assert_eq!(by_host("beta")["head_seq"], 6);
    let error = by_host("beta")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("entry seq 7 was edited"), "{error}");

    pg.psql(
        "postgres",
        "DELETE FROM agentsec_audit WHERE host = 'alpha' AND seq = 5",
    )
    .unwrap();
    let gap = agentsec(&s, &["audit", "verify", "--from", &url]);
    assert_eq!(gap.code, 1, "{gap:?}");
    assert!(
        gap.stdout.contains("BROKEN: host alpha log") && gap.stdout.contains("seq 5 is missing"),
        "{gap:?}"
    );
    assert!(
        gap.stdout.contains("BROKEN: host beta log")
            && gap.stdout.contains("entry seq 7 was edited"),
        "{gap:?}"
    );
    // Reordered rows (a third host): two entries swapped by seq column.
    let gamma = s.path("gamma/audit.log");
    std::fs::create_dir_all(gamma.parent().unwrap()).unwrap();
    write_log(&gamma, "ops/gamma", 5);
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            gamma.to_str().unwrap(),
            "--audit-sink",
            &url,
            "--host",
            "gamma",
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    pg.psql(
        "postgres",
        "UPDATE agentsec_audit SET seq = seq + 1000 WHERE host = 'gamma' AND seq IN (2, 3)",
    )
    .unwrap();
    pg.psql(
        "postgres",
        "UPDATE agentsec_audit SET seq = 1005 - seq WHERE host = 'gamma' AND seq IN (1002, 1003)",
    )
    .unwrap();
    let reordered = agentsec(&s, &["audit", "verify", "--from", &url]);
    assert_eq!(reordered.code, 1, "{reordered:?}");
    assert!(
        reordered.stdout.contains("BROKEN: host gamma log")
            && reordered
                .stdout
                .contains("rows were reordered: the row at seq 2 holds entry seq 3"),
        "{reordered:?}"
    );
}

#[test]
fn query_from_the_store_with_summary_answers_across_hosts() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    let alpha = s.path("alpha/audit.log");
    let beta = s.path("beta/audit.log");
    std::fs::create_dir_all(alpha.parent().unwrap()).unwrap();
    std::fs::create_dir_all(beta.parent().unwrap()).unwrap();
    write_log(&alpha, "ops/alpha", 6);
    write_log(&beta, "ops/beta", 4);
    for (log, host) in [(&alpha, "alpha"), (&beta, "beta")] {
        let ship = agentsec(
            &s,
            &[
                "audit",
                "ship",
                log.to_str().unwrap(),
                "--audit-sink",
                &url,
                "--host",
                host,
            ],
        );
        assert_eq!(ship.code, 0, "{ship:?}");
    }
    let q = agentsec(
        &s,
        &[
            "audit",
            "query",
            "--from",
            &url,
            "--agent",
            "ops/alpha",
            "--format",
            "json",
        ],
    );
    assert_eq!(q.code, 0, "{q:?}");
    let lines: Vec<serde_json::Value> = q
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert!(
        lines
            .iter()
            .all(|l| l["host"] == "alpha" && l["entry"]["agent_id"] == "ops/alpha")
    );

    let summary = agentsec(
        &s,
        &[
            "audit",
            "query",
            "--from",
            &url,
            "--summary",
            "--format",
            "json",
        ],
    );
    assert_eq!(summary.code, 0, "{summary:?}");
    let rows: Vec<serde_json::Value> = summary
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // alpha read password0..2 twice each; beta password0 twice, 1 and 2 once.
    assert_eq!(rows.len(), 6, "{rows:?}");
    let row = rows
        .iter()
        .find(|r| r["host"] == "beta" && r["secret_path"] == "db.prod.password0")
        .unwrap();
    assert_eq!(row["agent_id"], "ops/beta");
    assert_eq!(row["count"], 2);
    assert!(row["first"].as_str().unwrap() <= row["last"].as_str().unwrap());
    let human = agentsec(
        &s,
        &[
            "audit",
            "query",
            "--from",
            &url,
            "--summary",
            "--secret",
            "db.prod.password1",
        ],
    );
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.contains("HOST")
            && human.stdout.contains("alpha")
            && human.stdout.contains("beta"),
        "{human:?}"
    );
    // Locally too, under this host's name.
    let local = agentsec(
        &s,
        &[
            "audit",
            "query",
            alpha.to_str().unwrap(),
            "--summary",
            "--format",
            "json",
        ],
    );
    assert_eq!(local.code, 0, "{local:?}");
    assert_eq!(local.stdout.lines().count(), 3, "{local:?}");
}

#[test]
fn syslog_sink_delivers_rfc5424_octet_counted_messages_to_rsyslog() {
    let s = Scratch::new();
    let syslog = Rsyslog::start();
    let url = format!("syslog+tcp://127.0.0.1:{}", syslog.port);
    let run = probe(&s, &["--audit-sink", &url]);
    assert_eq!(run.code, 0, "{run:?}");
    let local = std::fs::read_to_string(s.audit_log()).unwrap();
    let n = local.lines().count();
    let got = syslog.messages(n, Duration::from_secs(10));
    assert_eq!(got.len(), n, "{got:?}");
    for (message, line) in got.iter().zip(local.lines()) {
        let seq = serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
            .as_u64()
            .unwrap();
        assert!(
            message.starts_with("<86>1 ") || message.starts_with("<85>1 "),
            "{message}"
        );
        assert!(
            message.contains(" agentsec - audit [agentsec@32473 log_id=\""),
            "{message}"
        );
        assert!(message.contains(&format!(" seq=\"{seq}\" ")), "{message}");
        assert!(message.ends_with(line), "{message}\n{line}");
        assert_no_leak(PROD_PASSWORD, message.as_bytes(), "a syslog message");
    }
    // The next run ships only its own records (the cursor moved).
    let run = probe(&s, &["--audit-sink", &url]);
    assert_eq!(run.code, 0, "{run:?}");
    let total = std::fs::read_to_string(s.audit_log())
        .unwrap()
        .lines()
        .count();
    let got = syslog.messages(total, Duration::from_secs(10));
    assert_eq!(got.len(), total, "{got:?}");
    drop(syslog);
    // Down: the run still succeeds and says the records wait.
    let run = probe(&s, &["--audit-sink", &url]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("not yet shipped to syslog+tcp://127.0.0.1"),
        "{run:?}"
    );
}

#[test]
fn sink_urls_and_config_are_checked_before_the_run() {
    let s = Scratch::new();
    let run = probe(
        &s,
        &[
            "--audit-sink",
            "postgres://agentsec:hunter2@127.0.0.1/audit",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("must not carry a password"), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
    let run = probe(&s, &["--audit-sink", "kafka://x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "use postgres://USER@HOST:PORT/DB, syslog+tcp://HOST:PORT or syslog+unix:///PATH"
        ),
        "{run:?}"
    );
    assert!(!s.audit_log().exists(), "nothing ran");
    let ship = agentsec(&s, &["audit", "ship", "--audit-sink", "kafka://x"]);
    assert_eq!(ship.code, 2, "{ship:?}");
}

#[test]
fn records_name_the_store_file_its_hash_and_the_env() {
    use sha2::{Digest, Sha256};
    let s = Scratch::new();
    let run = probe(&s, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let file = root().join("demo/secrets.yaml");
    let sha = hex::encode(Sha256::digest(std::fs::read(&file).unwrap()));
    for record in s.audit_records() {
        assert_eq!(
            record["store"],
            json!({"kind": "sops", "path": file.display().to_string(), "sha256": sha}),
            "{record}"
        );
    }
    // `--env` picks secrets.NAME.yaml next to the default file, and says so.
    s.write(
        "work/agentsec.yaml",
        &format!("secrets: {}\n", root().join("demo/secrets.yaml").display()),
    );
    let mut stores = Vec::new();
    for env in ["dev", "prod"] {
        let before = s.audit_records().len();
        let out = s
            .command(&bin("agentsec-run"))
            .arg(skill("probe"))
            .args(["--agent", "ops/release-manager", "--env", env, "--policy"])
            .arg(root().join("tests/testdata/policies/e2e.yaml"))
            .args([
                "--input",
                r#"{"ops":[{"get":"databases.postgres.production.port"}]}"#,
                "--audit-log",
            ])
            .arg(s.audit_log())
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .output()
            .unwrap();
        let records = s.audit_records();
        assert!(
            records.len() > before,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = records[before]["store"].clone();
        let path = root().join(format!("demo/secrets.{env}.yaml"));
        assert_eq!(store["env"], env, "{store}");
        assert_eq!(store["path"], path.display().to_string(), "{store}");
        assert_eq!(
            store["sha256"],
            hex::encode(Sha256::digest(std::fs::read(&path).unwrap()))
        );
        stores.push(store);
    }
    assert_ne!(stores[0], stores[1]);
    let verify = agentsec(&s, &["audit", "verify", s.audit_log().to_str().unwrap()]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn ship_sync_waits_for_every_sink_and_fails_closed_when_one_is_down() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    s.write(
        "work/agentsec.yaml",
        &format!("audit:\n  sinks: [{url}]\n  ship: sync\n"),
    );
    let show = s
        .command(&bin("agentsec-run"))
        .args(["--show-config", "--format", "json"])
        .output()
        .unwrap();
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["ship"], "sync");
    assert_eq!(show["audit_sinks"], json!([url]));
    for _ in 0..2 {
        let run = probe(&s, &[]);
        assert_eq!(run.code, 0, "{run:?}");
        // No shipping after the run in sync mode: every record went before
        // its value was released.
        assert!(!run.stderr.contains("not yet shipped"), "{run:?}");
        assert_eq!(
            stored_hashes(&pg, &hostname()),
            local_hashes(&s.audit_log())
        );
    }
    // The sink goes down: the first request fails closed, nothing released.
    pg.stop();
    let run = probe(&s, &[]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("was not acknowledged"), "{run:?}");
    assert_no_leak(
        PROD_PASSWORD,
        run.stdout.as_bytes(),
        "stdout of a run whose sink is down",
    );
    assert_no_leak(
        PROD_PASSWORD,
        run.stderr.as_bytes(),
        "stderr of a run whose sink is down",
    );
    // Back up: the record of the refused request is shipped first, and
    // nothing is lost or doubled.
    pg.start_server();
    let run = probe(&s, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        stored_hashes(&pg, &hostname()),
        local_hashes(&s.audit_log())
    );
}

#[test]
fn a_rotating_log_ships_across_its_segments_and_resumes_after_them() {
    let s = Scratch::new();
    let pg = store(&s);
    let url = pg.url("agentsec");
    let log = s.path("work/rotating.log");
    let append = |n: usize| {
        let mut audit =
            AuditLog::open_with(&log, agentsec_audit::LogOptions::new().max_size(4096)).unwrap();
        let run = RunContext::new("ops/ci", "deploy", "ab".repeat(32), "cd".repeat(16));
        for _ in 0..n {
            let record = Record::new(&run, "db.password", AccessType::Read, Decision::Allow);
            audit.append(&record).unwrap();
        }
    };
    append(60);
    assert!(agentsec_audit::log_files(&log).unwrap().len() > 3);
    let ship = agentsec(
        &s,
        &["audit", "ship", log.to_str().unwrap(), "--audit-sink", &url],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    // More segments later: the shipped ones are skipped, the rest follow.
    append(60);
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            log.to_str().unwrap(),
            "--audit-sink",
            &url,
            "--format",
            "json",
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    assert_eq!(ship.json()[0]["shipped"], 60);
    assert_eq!(stored_hashes(&pg, &hostname()), local_hashes(&log));
    let verify = agentsec(
        &s,
        &["audit", "verify", "--from", &url, log.to_str().unwrap()],
    );
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn syslog_unix_sink_sends_one_datagram_per_record() {
    let s = Scratch::new();
    let socket_path = s.path("tmp/log.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let log = s.path("work/unix.log");
    write_log(&log, "ops/ci", 3);
    let url = format!("syslog+unix://{}", socket_path.display());
    let ship = agentsec(
        &s,
        &[
            "audit",
            "ship",
            log.to_str().unwrap(),
            "--audit-sink",
            &url,
            "--host",
            "ci-runner-7",
        ],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let mut buf = vec![0u8; 65536];
        let n = socket.recv(&mut buf).unwrap();
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(message.starts_with("<86>1 "), "{message}");
        assert!(
            message.contains(" ci-runner-7 agentsec - audit "),
            "{message}"
        );
        assert!(
            message.contains(&format!(" seq=\"{}\" ", i + 1)),
            "{message}"
        );
        assert!(message.ends_with(line.as_str()), "{message}");
    }
    // Nothing is sent twice once acknowledged.
    let ship = agentsec(
        &s,
        &["audit", "ship", log.to_str().unwrap(), "--audit-sink", &url],
    );
    assert_eq!(ship.code, 0, "{ship:?}");
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert!(socket.recv(&mut buf).is_err());
}
