//! Support for the end-to-end tests: build the skills from source, find the
//! real binaries (ours and the peers'), and run them in a scratch directory.
//!
//! Everything runs through the real path: components built by
//! `cargo build --target wasm32-wasip2`, the `agentsec-run` binary, SOPS
//! files written by the real `sops`, and the real `sops`/`age` as oracles.
#![forbid(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failure should stop the test loudly"
)]

pub mod components;
pub mod http_server;
pub mod openssh;
pub mod peers;
pub mod probe;
pub mod sink_peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
///
/// Taken from `CARGO_MANIFEST_DIR` as `cargo test` sets it when it runs the test, and
/// only failing that as it was when the test was compiled: cargo reuses compiled tests
/// across checkouts that share a target directory (CI's clone and a working copy), and a
/// compile-time path would then test the other checkout's sources.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().unwrap().to_owned()
}

/// Where the guest components are built.
fn skills_target() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("skills"),
        None => root().join("target").join("skills"),
    }
}

/// Builds the example skills and the test skills (once per test process;
/// cargo's own lock serialises concurrent test binaries).
fn build_skills() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for manifest in ["example-skills/Cargo.toml", "tests/skills/Cargo.toml"] {
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(root().join(manifest))
                .env("CARGO_TARGET_DIR", skills_target())
                .status()
                .unwrap();
            assert!(status.success(), "building {manifest} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)");
        }
    });
}

/// The directory the skills are built into: the tests' trusted skills
/// directory (`agentsec-run --skills`), where a component's name counts.
pub fn skills_dir() -> PathBuf {
    build_skills();
    skills_target().join("wasm32-wasip2/release")
}

/// The component for skill `name` (e.g. `db-healthcheck`, `probe`), built from source.
pub fn skill(name: &str) -> PathBuf {
    build_skills();
    let path = skills_target()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "no component at {}", path.display());
    path
}

/// The languages a skill can be written in, each with its build command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// `cargo build --target wasm32-wasip2` (the `agentsec-skill` crate).
    Rust,
    /// `python3 sdk/python/build.py` (componentize-py).
    Python,
    /// `node sdk/js/build.mjs` (componentize-js).
    JavaScript,
}

/// The component of skill `dir` (relative to the repository root, e.g.
/// `example-skills/py-release-notes`) in `lang`, built from source once per test process,
/// named after the directory (`py-release-notes` -> `py_release_notes.wasm`) in a
/// directory of that language's skills.
pub fn lang_skill(lang: Lang, dir: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(Lang, String, PathBuf)>> =
        std::sync::Mutex::new(Vec::new());
    let name = Path::new(dir)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('-', "_");
    if lang == Lang::Rust {
        return skill(&name);
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, path)) = built.iter().find(|(l, d, _)| *l == lang && d == dir) {
        return path.clone();
    }
    let out_dir = lang_skills_dir(lang);
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}.wasm"));
    let mut cmd = match lang {
        Lang::Python => {
            let mut cmd = Command::new("python3");
            cmd.arg(root().join("sdk/python/build.py"));
            if std::env::var_os("COMPONENTIZE_PY").is_none() {
                cmd.env(
                    "COMPONENTIZE_PY",
                    root().join(".venv-py/bin/componentize-py"),
                );
            }
            cmd
        }
        Lang::JavaScript => {
            let mut cmd = Command::new("node");
            cmd.arg(root().join("sdk/js/build.mjs"));
            cmd
        }
        Lang::Rust => unreachable!("built by cargo above"),
    };
    let output = cmd
        .arg(root().join(dir))
        .arg("-o")
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building {dir} ({lang:?}) failed (is the toolchain installed? tests/run.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.push((lang, dir.to_owned(), out.clone()));
    out
}

/// Where [`lang_skill`] puts the components of `lang`: a trusted skills directory
/// (`agentsec-run --skills`), so their names count.
pub fn lang_skills_dir(lang: Lang) -> PathBuf {
    match lang {
        Lang::Rust => skills_dir(),
        Lang::Python => skills_target().join("python"),
        Lang::JavaScript => skills_target().join("javascript"),
    }
}

/// One of our binaries (`agentsec-run`, `agentsec`), built if needed.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    // target/<profile>/deps/<test-exe> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_owned();
    let path = dir.join(name);
    BUILT.get_or_init(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "agentsec-cli", "--bins"])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(status.success(), "building agentsec-cli failed");
    });
    assert!(path.is_file(), "no binary at {}", path.display());
    path
}

/// The real `sops` binary: `$AGENTSEC_SOPS`, `.venv-peers/bin/sops` (what
/// `tests/run.sh` installs), or `sops` on `PATH`.
pub fn sops() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENTSEC_SOPS") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv-peers/bin/sops");
    if venv.is_file() {
        return venv;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("sops"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("the real sops is needed for interop tests: run tests/run.sh, or set AGENTSEC_SOPS")
    })
}

/// The demo age identity file (public, demo only).
pub fn demo_key() -> PathBuf {
    root().join("demo/age-key.DEMO-ONLY.txt")
}

/// A scratch world for one test: its own HOME, XDG dirs, TMPDIR and working
/// directory, so nothing from the developer's machine leaks in or out.
pub struct Scratch {
    /// Owns the directory.
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A fresh scratch directory with `home/`, `tmp/`, `work/`.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "tmp", "work", "cache"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Scratch { dir }
    }

    /// A path inside the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel` and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A command with a clean environment: only PATH, HOME, XDG and TMPDIR
    /// pointing into the scratch directory, cwd `work/`.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_STATE_HOME", self.path("home/.local/state"))
            .env("TMPDIR", self.path("tmp"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .current_dir(self.path("work"));
        cmd
    }

    /// `agentsec-run SKILL --skills DIR --agent AGENT --secrets S --policy P
    /// --audit-log work/audit.log ARGS...` with the demo key (the skill from
    /// the skills directory, so its name counts).
    pub fn run_skill(
        &self,
        skill_name: &str,
        agent: &str,
        secrets: &Path,
        policy: &Path,
        extra: &[&str],
    ) -> Run {
        let mut cmd = self.command(&bin("agentsec-run"));
        cmd.arg(skill(skill_name))
            .arg("--skills")
            .arg(skills_dir())
            .args(["--agent", agent, "--secrets"])
            .arg(secrets)
            .arg("--policy")
            .arg(policy)
            .arg("--audit-log")
            .arg(self.audit_log())
            .args(extra)
            .env("SOPS_AGE_KEY_FILE", demo_key());
        Run::from(cmd.output().unwrap())
    }

    /// Encrypts `plaintext` (YAML) with the real sops to the demo recipient
    /// and writes the result to `rel`; the plaintext never stays on disk.
    pub fn sops_encrypt(&self, rel: &str, plaintext: &str) -> PathBuf {
        let recipient = std::fs::read_to_string(demo_key())
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
            .unwrap();
        let plain = self.write("work/.plain.yaml", plaintext);
        let out = self
            .command(&sops())
            .args(["encrypt", "--age", &recipient])
            .arg(&plain)
            .output()
            .unwrap();
        std::fs::remove_file(&plain).unwrap();
        assert!(
            out.status.success(),
            "sops encrypt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.write(rel, &String::from_utf8(out.stdout).unwrap())
    }

    /// The audit log `run_skill` writes.
    pub fn audit_log(&self) -> PathBuf {
        self.path("work/audit.log")
    }

    /// The audit log's records.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every byte of every file under the scratch directory (for leak checks).
    pub fn all_file_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    out.push((p, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

/// The outcome of a process.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error as text.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Encodings of `value` that must never appear where a secret may not go.
pub fn forms(value: &str) -> Vec<String> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = value.as_bytes();
    let mut b64 = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let url: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let b64url = b64.replace('+', "-").replace('/', "_");
    vec![
        value.to_owned(),
        b64,
        b64url,
        hex.clone(),
        hex.to_uppercase(),
        url,
    ]
}

/// Asserts that none of `value`'s forms occurs in `haystack`.
pub fn assert_no_leak(value: &str, haystack: &[u8], place: &str) {
    for form in forms(value) {
        let found = haystack.windows(form.len()).any(|w| w == form.as_bytes());
        assert!(!found, "secret (as {form:?}) leaked into {place}");
    }
}
