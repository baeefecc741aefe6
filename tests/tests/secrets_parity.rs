//! sops CLI parity for what users type: `filestatus`, `--output`, `-i`, `--config`,
//! `set --value-file`, `edit` of a new file, `rotate`'s warning; checked against the real sops.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use agentsec_tests::{Run, Scratch, bin, sops};

fn keygen(s: &Scratch) -> (String, String) {
    let key = s.path("home/age.txt");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    (recipient, key.display().to_string())
}

fn run(s: &Scratch, program: &Path, args: &[&str], key: &str) -> Run {
    Run::from(
        s.command(program)
            .args(args)
            .env("SOPS_AGE_KEY_FILE", key)
            .env("EDITOR", "true")
            .output()
            .unwrap(),
    )
}

#[test]
fn filestatus_output_in_place_and_config_as_sops() {
    let s = Scratch::new();
    let (recipient, key) = keygen(&s);
    let ours = |args: &[&str]| run(&s, &bin("agentsec"), &[&["secrets"], args].concat(), &key);
    let theirs = |args: &[&str]| run(&s, &sops(), args, &key);
    s.write("work/p.yaml", "db:\n    password: parity-pw-1\nn: 1\n");
    // `-i` encrypts in place; `filestatus` agrees with sops before and after.
    assert_eq!(
        ours(&["filestatus", "p.yaml"]).stdout,
        theirs(&["filestatus", "p.yaml"]).stdout
    );
    assert_eq!(
        ours(&["filestatus", "p.yaml"]).stdout,
        "{\"encrypted\":false}\n"
    );
    let enc = ours(&["encrypt", "--age", &recipient, "-i", "p.yaml"]);
    assert_eq!(enc.code, 0, "{enc:?}");
    assert_eq!(
        ours(&["filestatus", "p.yaml"]).stdout,
        "{\"encrypted\":true}\n"
    );
    assert_eq!(
        ours(&["filestatus", "p.yaml"]).stdout,
        theirs(&["filestatus", "p.yaml"]).stdout
    );
    let missing = (
        ours(&["filestatus", "nope.yaml"]),
        theirs(&["filestatus", "nope.yaml"]),
    );
    assert_eq!(missing.0.code, missing.1.code, "{missing:?}");
    // `--output`: the plaintext goes to a new 0600 file, the same bytes sops prints.
    let out = ours(&["decrypt", "--output", "plain.yaml", "p.yaml"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    let written = std::fs::read_to_string(s.path("work/plain.yaml")).unwrap();
    assert_eq!(written, theirs(&["decrypt", "p.yaml"]).stdout);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.path("work/plain.yaml"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // `--config FILE` instead of the search: its rule's keys and its `stores` indent.
    s.write(
        "work/conf/alt.yaml",
        &format!("creation_rules:\n  - age: {recipient}\nstores:\n  yaml:\n    indent: 2\n"),
    );
    s.write("work/q.yaml", "db:\n    password: parity-pw-2\n");
    let enc = ours(&[
        "--config",
        "conf/alt.yaml",
        "encrypt",
        "q.yaml",
        "--output",
        "q.enc.yaml",
    ]);
    assert_eq!(enc.code, 0, "{enc:?}");
    let text = std::fs::read_to_string(s.path("work/q.enc.yaml")).unwrap();
    assert!(text.starts_with("db:\n  password: ENC["), "{text}");
    let dec = ours(&["decrypt", "--config", "conf/alt.yaml", "q.enc.yaml"]);
    // sops takes --config before the command; ours takes it on either side.
    let sops_dec = theirs(&["--config", "conf/alt.yaml", "decrypt", "q.enc.yaml"]);
    assert_eq!(dec.stdout, sops_dec.stdout);
    assert_eq!(dec.stdout, "db:\n  password: parity-pw-2\n");
    // Without --config there is no rule here: refused (61, where sops 3.11 says 1).
    let none = ours(&["encrypt", "q.yaml"]);
    assert_eq!(none.code, 61, "{none:?}");
}

#[test]
fn set_value_file_edit_new_file_and_rotate_warning() {
    let s = Scratch::new();
    let (recipient, key) = keygen(&s);
    let ours = |args: &[&str]| run(&s, &bin("agentsec"), &[&["secrets"], args].concat(), &key);
    let theirs = |args: &[&str]| run(&s, &sops(), args, &key);
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - age: {recipient}\n"),
    );
    // `edit` of a file that does not exist: sops' example document, encrypted for the rule.
    let new = ours(&["edit", "new.yaml"]);
    assert_eq!(new.code, 0, "{new:?}");
    let dec = theirs(&["decrypt", "new.yaml"]);
    assert_eq!(dec.code, 0, "{dec:?}");
    assert!(dec.stdout.starts_with("hello: Welcome to SOPS!"), "{dec:?}");
    // `set --value-file`: the JSON value from a file, never from argv.
    s.write("work/value.json", "\"from-a-file-77\"\n");
    let set = ours(&[
        "set",
        "new.yaml",
        "example_key",
        "--value-file",
        "value.json",
    ]);
    assert_eq!(set.code, 0, "{set:?}");
    let got = theirs(&["decrypt", "--extract", "[\"example_key\"]", "new.yaml"]);
    assert_eq!(got.stdout, "from-a-file-77");
    // `rotate` warns when the file's keys differ from its rule, and keeps the file's keys.
    let (other, _) = {
        let s2 = Scratch::new();
        keygen(&s2)
    };
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - age: {other}\n"),
    );
    let rot = ours(&["rotate", "new.yaml"]);
    assert_eq!(rot.code, 0, "{rot:?}");
    assert!(
        rot.stderr.contains("differ from its creation rule"),
        "{rot:?}"
    );
    assert!(rot.stderr.contains("updatekeys"), "{rot:?}");
    assert_eq!(theirs(&["decrypt", "new.yaml"]).code, 0);
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - age: {recipient}\n"),
    );
    let rot = ours(&["rotate", "new.yaml"]);
    assert!(!rot.stderr.contains("differ"), "{rot:?}");
}
