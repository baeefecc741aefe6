//! What a new user meets first: a file that is not a skill, `keygen` into a
//! pipe, and a skill crate that lives outside this repository.
#![expect(
    clippy::unwrap_used,
    reason = "test set-up: a failure should stop the test loudly"
)]

use std::process::Stdio;

use agentsec_tests::{Scratch, bin, root};

/// `agentsec-run COMPONENT` against the demo secrets and an empty policy:
/// exit code and stderr.
fn run_component(s: &Scratch, component: &std::path::Path) -> (Option<i32>, String) {
    let policy = s.write("work/p.yaml", "access_control:\n  secrets: {}\n");
    let out = s
        .command(&bin("agentsec-run"))
        .arg(component)
        .args(["--agent", "ops/x", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

/// A key file given where a component is expected is refused in one line
/// that quotes none of its bytes.
#[test]
fn a_file_that_is_not_webassembly_gets_one_line_without_its_bytes() {
    let s = Scratch::new();
    let key = s.write(
        "work/keys.txt",
        "# created: 2026-01-01T00:00:00Z\n# public key: age1notreal\nAGE-SECRET-KEY-1PLANTEDNOTAREALKEYATALL\n",
    );
    let (code, stderr) = run_component(&s, &key);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(
            "is not a WebAssembly component: it does not start with the WebAssembly magic bytes"
        ),
        "{stderr}"
    );
    for leak in ["AGE-SECRET-KEY", "# created", "0x23", "0x41", "actual="] {
        assert!(!stderr.contains(leak), "{leak:?} in {stderr}");
    }

    // A core module (not a component) is told apart, also in one line.
    let core = s.path("work/core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (code, stderr) = run_component(&s, &core);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("is a core WebAssembly module"), "{stderr}");
}

/// `agentsec secrets keygen` into a pipe says which public key it wrote, on
/// stderr, as `age-keygen` does; the identity itself goes only to stdout.
#[test]
fn keygen_to_a_pipe_names_the_public_key_on_stderr() {
    let s = Scratch::new();
    let out = s
        .command(&bin("agentsec"))
        .args(["secrets", "keygen"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    assert!(public.starts_with("age1"), "{stdout}");
    assert_eq!(stderr, format!("Public key: {public}\n"));
    assert!(!stderr.contains("AGE-SECRET-KEY"), "{stderr}");
    // The same as age-keygen prints for the identity it wrote.
    let age = std::process::Command::new("age-keygen")
        .arg("-y")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    age.stdin
        .as_ref()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let derived = age.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(derived.stdout).unwrap().trim(), public);
}

/// The README's way to depend on the SDK from a crate outside this
/// repository builds a component that `agentsec-run` runs, and the SDK's
/// `Error` reaches the caller as a sentence.
#[test]
fn a_skill_crate_outside_the_repository_builds_and_runs() {
    let s = Scratch::new();
    let sdk = root().join("sdk/rust");
    let krate = s.path("work/hello");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nagentsec-skill = {{ path = {:?} }}\n\n\
             [workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        krate.join("src/lib.rs"),
        r#"use agentsec_skill::{Skill, get_secret, list_secrets};

struct Hello;

impl Skill for Hello {
    fn run(_input: String) -> Result<String, String> {
        let names: Vec<String> = list_secrets("");
        let token = get_secret("communication.github.token")?;
        match get_secret("no.such.secret") {
            Ok(_) => Err("expected an error".into()),
            Err(e) => Ok(format!("{} names; token of {} bytes; then {e}", names.len(), token.len())),
        }
    }
}

agentsec_skill::export!(Hello);
"#,
    )
    .unwrap();
    // Reuse the skills' build directory, so the SDK's dependencies are built once.
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join("skills-outside"),
        None => root().join("target/skills-outside"),
    };
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
    assert!(
        status.success(),
        "building a crate outside the repository failed"
    );
    let wasm = target.join("wasm32-wasip2/release/hello.wasm");
    let policy = s.write(
        "work/p.yaml",
        "access_control:\n  secrets:\n    communication.github.token:\n      allowed_agents: [ops/x]\n    no.such:\n      allowed_agents: [ops/x]\n",
    );
    let out = s
        .command(&bin("agentsec-run"))
        .arg(&wasm)
        .args(["--agent", "ops/x", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("1 names; token of "), "{stdout}");
    assert!(stdout.contains("; then not-found: "), "{stdout}");
    assert!(!stdout.contains("NotFound("), "{stdout}");
}
