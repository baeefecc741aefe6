//! SSH identities and recipients (`ssh-ed25519`), both ways with the real sops: a key made by
//! `ssh-keygen -t ed25519 -N ''`, found through `SOPS_AGE_SSH_PRIVATE_KEY_FILE` or
//! `~/.ssh/id_ed25519`.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_tests::{Run, Scratch, bin, sops};

const PLAIN: &str = "db:\n    password: ssh-wrapped-7c1d\nport: 5432\n";

fn keygen(s: &Scratch, path: &Path) -> String {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@agentsec", "-f"])
        .arg(path)
        .current_dir(s.path("work"))
        .status()
        .expect("ssh-keygen (apt-get install openssh-client; tests/run.sh does it)");
    assert!(st.success());
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

fn run(s: &Scratch, program: &Path, args: &[&str], ssh_key: Option<&Path>) -> Run {
    let mut cmd = s.command(program);
    cmd.args(args);
    if let Some(k) = ssh_key {
        cmd.env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", k);
    }
    Run::from(cmd.output().unwrap())
}

fn agentsec() -> PathBuf {
    bin("agentsec")
}

#[test]
fn agentsec_encrypts_to_ssh_and_sops_decrypts() {
    let s = Scratch::new();
    let key = s.path("keys/id_test");
    let public = keygen(&s, &key);
    s.write("work/p.yaml", PLAIN);
    let enc = run(
        &s,
        &agentsec(),
        &["secrets", "encrypt", "--age", &public, "p.yaml"],
        None,
    );
    assert_eq!(enc.code, 0, "{enc:?}");
    // The recipient is stored as given (comment included), as sops stores it.
    assert!(
        enc.stdout.contains(&format!("recipient: {public}")),
        "{}",
        enc.stdout
    );
    s.write("work/e.yaml", &enc.stdout);
    let dec = run(&s, &sops(), &["decrypt", "e.yaml"], Some(&key));
    assert_eq!(dec.code, 0, "{dec:?}");
    assert_eq!(dec.stdout, PLAIN);
}

#[test]
fn sops_encrypts_to_ssh_and_agentsec_decrypts() {
    let s = Scratch::new();
    let key = s.path("keys/id_test");
    let public = keygen(&s, &key);
    s.write("work/p.yaml", PLAIN);
    let enc = run(&s, &sops(), &["encrypt", "--age", &public, "p.yaml"], None);
    assert_eq!(enc.code, 0, "{enc:?}");
    s.write("work/e.yaml", &enc.stdout);
    let dec = run(
        &s,
        &agentsec(),
        &["secrets", "decrypt", "e.yaml"],
        Some(&key),
    );
    assert_eq!(dec.code, 0, "{dec:?}");
    assert_eq!(dec.stdout, PLAIN);
    // Without any identity it fails with sops' code.
    let none = run(&s, &agentsec(), &["secrets", "decrypt", "e.yaml"], None);
    assert_eq!(none.code, 128, "{none:?}");
}

#[test]
fn home_ssh_key_and_sops_yaml_rule() {
    let s = Scratch::new();
    let public = keygen(&s, &s.path("home/.ssh/id_ed25519"));
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - path_regex: .*\\.yaml$\n    age: >-\n      {public}\n"),
    );
    s.write("work/p.yaml", PLAIN);
    let enc = run(&s, &agentsec(), &["secrets", "encrypt", "p.yaml"], None);
    assert_eq!(enc.code, 0, "{enc:?}");
    s.write("work/e.yaml", &enc.stdout);
    for program in [sops(), agentsec()] {
        let args: &[&str] = if program == sops() {
            &["decrypt", "e.yaml"]
        } else {
            &["secrets", "decrypt", "e.yaml"]
        };
        let dec = run(&s, &program, args, None);
        assert_eq!(dec.code, 0, "{}: {dec:?}", program.display());
        assert_eq!(dec.stdout, PLAIN);
    }
}
