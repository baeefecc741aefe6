//! The real OpenSSH tools for the SSH tests: keys made by `ssh-keygen` (the private half
//! kept in memory only), the key material a leak check looks for, and an unprivileged
//! `sshd` on a free 127.0.0.1 port with its own host key and `AuthorizedKeysFile`, stopped
//! when its guard is dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Scratch;
use crate::peers::free_port;

/// A generated key: its private text (kept in memory only), public line and fingerprint.
pub struct Key {
    /// The OpenSSH private key.
    pub private: String,
    /// The `.pub` line.
    pub public: String,
    /// `SHA256:...`.
    pub fingerprint: String,
    /// Where the `.pub` file is.
    pub pub_file: PathBuf,
}

/// `ssh-keygen ARGS` into `tmp/NAME`; the private file is removed at once (only the public
/// half stays on disk).
pub fn keygen(s: &Scratch, name: &str, args: &[&str]) -> Key {
    let path = s.path(&format!("tmp/{name}"));
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    let private = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let pub_file = path.with_extension("pub");
    let public = std::fs::read_to_string(&pub_file).unwrap();
    let fingerprint = fingerprint(&pub_file);
    Key {
        private,
        public,
        fingerprint,
        pub_file,
    }
}

/// `SHA256:...` of a public key file, as `ssh-keygen -l` prints it.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pub_file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// The private key's base64 lines after the first (the first holds only the header and
/// the public key), less any line that is all public key (the `.pub` file holds it):
/// key material that must appear nowhere.
pub fn material(key: &Key) -> Vec<String> {
    let lines: Vec<String> = key
        .private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .skip(1)
        .filter(|l| !key.public.contains(*l))
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= 2, "too little private material to scan for");
    lines
}

/// `text` indented by two spaces (a YAML block scalar's lines).
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The user the tests run as (the one `sshd` lets log in).
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A running `sshd` on 127.0.0.1, killed on drop.
pub struct Sshd {
    child: Child,
    /// Its port.
    pub port: u16,
    /// `SHA256:...` of its host key.
    pub host_fingerprint: String,
    /// Its log (`-e`: what it writes to stderr).
    pub log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// Starts `sshd -D -e` with a fresh ed25519 host key in `sshd/` of the scratch
    /// directory, `authorized_keys` as its only `AuthorizedKeysFile`, public-key
    /// authentication only, `UsePAM no`. As root it needs its privilege-separation
    /// directory `/run/sshd` (made if missing) and is run by absolute path.
    pub fn start(s: &Scratch, authorized_keys: &str) -> Sshd {
        let dir = s.path("sshd");
        std::fs::create_dir_all(&dir).unwrap();
        let host_key = dir.join("host_key");
        if !host_key.exists() {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f"])
                .arg(&host_key)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        let host_fingerprint = fingerprint(&host_key.with_extension("pub"));
        let keys = dir.join("authorized_keys");
        std::fs::write(&keys, authorized_keys).unwrap();
        // Only root can make it, and only root needs it.
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("sshd is not installed: run tests/run.sh (Debian openssh-server)");
        let log = dir.join("sshd.log");
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
                     AuthorizedKeysFile {keys}\nUsePAM no\nStrictModes no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nLogLevel VERBOSE\n",
                    host = host_key.display(),
                    pid = dir.join("sshd.pid").display(),
                    keys = keys.display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        host_fingerprint,
                        log,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// ssh's arguments to run `command` here as [`user`]: no config file, no known-hosts
    /// file, no prompts.
    pub fn ssh_args(&self, command: &str) -> Vec<String> {
        [
            "-F",
            "none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([
            self.port.to_string(),
            format!("{}@127.0.0.1", user()),
            command.to_owned(),
        ])
        .collect()
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
