//! Real PostgreSQL and rsyslog servers for the audit-sink tests, each on a
//! free loopback port in its own directory, stopped on drop.
//!
//! PostgreSQL refuses to run as root: as root, the cluster runs as the
//! system user [`PG_USER`] (created if missing); otherwise as the caller.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The unprivileged system user the test cluster runs as when tests run as root.
pub const PG_USER: &str = "agentsec-pg";

/// Where Debian's PostgreSQL 15 keeps its programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn pg_bin(name: &str) -> PathBuf {
    let debian = Path::new(PG_BIN).join(name);
    if debian.exists() {
        debian
    } else {
        PathBuf::from(name)
    }
}

fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    // `id -u` keeps this crate free of unsafe and extra dependencies.
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(1)
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL 15 cluster on 127.0.0.1 with `trust` authentication
/// (loopback only), superuser `postgres`, a database `audit`.
pub struct PgCluster {
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl PgCluster {
    /// Initialises and starts a new cluster (tests/run.sh installs PostgreSQL).
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).expect("sock dir");
        if is_root() {
            let exists = Command::new("id").arg(PG_USER).output().expect("id");
            if !exists.status.success() {
                let out = Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        PG_USER,
                    ])
                    .output()
                    .expect("useradd");
                // Another test may have created it meanwhile.
                let again = Command::new("id").arg(PG_USER).output().expect("id");
                if !again.status.success() {
                    check("useradd", &out);
                }
            }
            let mode = Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .output()
                .expect("chmod");
            check("chmod", &mode);
            let own = Command::new("chown")
                .arg(PG_USER)
                .arg(dir.path())
                .arg(&sock)
                .output()
                .expect("chown");
            check("chown", &own);
        }
        let cluster = PgCluster {
            port: free_port(),
            dir,
        };
        let out = cluster
            .as_pg(&pg_bin("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb (tests/run.sh installs postgresql)");
        check("initdb", &out);
        cluster.start_server();
        let out = Command::new("psql")
            .args(cluster.psql_args("postgres", "postgres"))
            .args(["-c", "CREATE DATABASE audit"])
            .output()
            .expect("psql");
        check("create database", &out);
        cluster
    }

    fn as_pg(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", PG_USER, "--"]).arg(program);
            cmd.current_dir(self.dir.path());
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Starts the server (again, after [`PgCluster::stop`]), on the same port.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().join("sock").display()
        );
        let out = self
            .as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("sock/server.log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .expect("pg_ctl start");
        check("pg_ctl start", &out);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes `user` log in over TCP with its password (`scram-sha-256`; every other
    /// user keeps `trust`), by putting a line first in `pg_hba.conf` and reloading.
    pub fn require_password(&self, user: &str) {
        let hba = self.dir.path().join("data/pg_hba.conf");
        let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        let line = format!("host all {user} 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(&hba, format!("{line}{old}")).expect("write pg_hba.conf");
        let out = self
            .as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("reload")
            .output()
            .expect("pg_ctl reload");
        check("pg_ctl reload", &out);
        // A reload is asynchronous: wait until a login without the password fails.
        let deadline = Instant::now() + START_TIMEOUT;
        while self.psql(user, "SELECT 1").is_ok() {
            assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once (connections are cut, as in a crash).
    pub fn stop(&self) {
        let out = self
            .as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .expect("pg_ctl stop");
        check("pg_ctl stop", &out);
    }

    /// `postgres://USER@127.0.0.1:PORT/audit`.
    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/audit", self.port)
    }

    fn psql_args(&self, user: &str, db: &str) -> Vec<String> {
        let port = self.port.to_string();
        [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            user,
            "-d",
            db,
            "-X",
            "-w",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// Runs `sql` in database `audit` as `user`; the output (unaligned,
    /// tuples only) or the error.
    pub fn psql(&self, user: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(self.psql_args(user, "audit"))
            .args(["-c", sql])
            .output()
            .expect("psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// An rsyslogd listening on TCP (imtcp, octet counting) on 127.0.0.1,
/// writing every message it receives, raw, to one file.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    /// The TCP port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl Rsyslog {
    /// Starts rsyslogd in the foreground with its own config (tests/run.sh
    /// installs rsyslog).
    pub fn start() -> Rsyslog {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let out = dir.path().join("messages.log");
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imtcp\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"agentsec\")\n\
                 ruleset(name=\"agentsec\") {{ action(type=\"omfile\" file=\"{out}\" template=\"raw\" flushOnTXEnd=\"on\" asyncWriting=\"off\") }}\n",
                work = dir.path().display(),
                out = out.display(),
            ),
        )
        .expect("rsyslog.conf");
        let pidfile = dir.path().join("rsyslogd.pid");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(&pidfile)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd (tests/run.sh installs rsyslog)");
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog {
            dir,
            port,
            child: Some(child),
        }
    }

    /// The messages received so far, one per line (waits up to `wait` for
    /// at least `at_least` of them).
    pub fn messages(&self, at_least: usize, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        loop {
            let text =
                std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= at_least || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
