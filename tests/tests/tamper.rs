//! Tampering with a SOPS file written by the real sops, through the real
//! CLIs: `agentsec secrets decrypt` answers with sops' exit codes, and
//! `agentsec-run` refuses the file before any skill runs.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use agentsec_tests::{Run, Scratch, bin, demo_key, root, skill};

fn demo() -> String {
    std::fs::read_to_string(root().join("demo/secrets.yaml")).unwrap()
}

/// The `ENC[...]` value on the line that starts with `key:` under `section:`.
fn enc_of<'a>(text: &'a str, section: &str, key: &str) -> &'a str {
    let start = text.find(&format!("        {section}:\n")).unwrap();
    let line = text[start..]
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap();
    line.split_once(": ").unwrap().1
}

fn decrypt(s: &Scratch, text: &str) -> Run {
    let file = s.write("work/tampered.yaml", text);
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["secrets", "decrypt"])
        .arg(&file)
        .env("SOPS_AGE_KEY_FILE", demo_key());
    Run::from(cmd.output().unwrap())
}

fn run_skill_on(s: &Scratch, text: &str) -> Run {
    let file = s.write("work/tampered.yaml", text);
    s.run_skill(
        "probe",
        "ops/release-manager",
        &file,
        &root().join("tests/testdata/policies/e2e.yaml"),
        &["--input", r#"{"ops":[]}"#],
    )
}

#[test]
fn every_tampering_is_refused() {
    let s = Scratch::new();
    let original = demo();
    assert_eq!(
        decrypt(&s, &original).code,
        0,
        "the untouched file decrypts"
    );
    let prod = enc_of(&original, "production", "password").to_owned();
    let staging = enc_of(&original, "staging", "password").to_owned();
    let mac_line = original
        .lines()
        .find(|l| l.trim_start().starts_with("mac: ENC["))
        .unwrap()
        .to_owned();

    let swapped = original
        .replace(&prod, "@@P@@")
        .replace(&staging, &prod)
        .replace("@@P@@", &staging);
    let changed_ciphertext = original.replace(&prod, &prod.replacen("data:", "data:A", 1));
    let changed_mac = original.replace(&mac_line, &mac_line.replacen("data:", "data:A", 1));
    let removed_key = original
        .lines()
        .filter(|l| !l.contains(&staging))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let changed_plain = original.replace("datadoghq.eu", "datadoghq.com");
    let cases = [
        ("two values swapped between paths", swapped, 25),
        ("changed ciphertext", changed_ciphertext, 25),
        ("changed MAC", changed_mac, 51),
        ("a removed key", removed_key, 51),
        ("a changed unencrypted value", changed_plain, 51),
    ];
    for (what, text, code) in cases {
        assert_ne!(text, original, "{what}: the tampering changed the file");
        let run = decrypt(&s, &text);
        assert_eq!(run.code, code, "{what}: {run:?}");
        assert!(run.stdout.is_empty(), "{what}: nothing is printed");
        let run = run_skill_on(&s, &text);
        assert_eq!(
            run.code, 2,
            "{what}: agentsec-run refuses the file: {run:?}"
        );
        assert!(
            run.stderr.contains("tampered.yaml"),
            "{what}: names the file: {run:?}"
        );
        assert!(!s.audit_log().exists(), "{what}: the skill never ran");
    }
    // Built to run the probe at all.
    let _ = skill("probe");
}

#[test]
fn a_retyped_value_is_flagged_as_sops_does() {
    // The `type:` tag is not authenticated (SPEC 13.2): sops decrypts a
    // str->int retype with a valid MAC, and so do we: the text is the same.
    let s = Scratch::new();
    let original = demo();
    let port = enc_of(&original, "production", "port").to_owned();
    assert!(port.ends_with("type:int]"), "{port}");
    let retyped = original.replace(&port, &port.replace("type:int]", "type:str]"));
    let run = decrypt(&s, &retyped);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("port: \"5432\"") || run.stdout.contains("port: '5432'"),
        "{}",
        run.stdout
    );
}
