//! `agentsec secrets`: byte-identical `sops decrypt` output, sops exit codes, and every file
//! agentsec writes decrypts with the real sops (and the other way round).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_tests::{Run, Scratch, bin, root, sops};

const MOCK_RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

fn vectors() -> PathBuf {
    root().join("tests/testdata/sops-vectors/generated")
}

fn key() -> PathBuf {
    vectors().join("key_mockIdentity.txt")
}

fn run(s: &Scratch, program: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd: Command = s.command(program);
    cmd.args(args).env("SOPS_AGE_KEY_FILE", key());
    if let Some(input) = stdin {
        use std::io::Write;
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        return Run::from(child.wait_with_output().unwrap());
    }
    Run::from(cmd.output().unwrap())
}

fn agentsec(s: &Scratch, args: &[&str]) -> Run {
    let mut full = vec!["secrets"];
    full.extend_from_slice(args);
    run(s, &bin("agentsec"), &full, None)
}

fn real_sops_decrypt(s: &Scratch, file: &Path) -> Run {
    run(s, &sops(), &["decrypt", file.to_str().unwrap()], None)
}

#[test]
fn decrypt_is_byte_identical_to_sops_for_every_vector() {
    let s = Scratch::new();
    for entry in std::fs::read_dir(vectors().join("expected")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let enc = name.strip_suffix(".decrypted").unwrap();
        if enc == "shamir_2groups.yaml" || enc == "rotated_multidoc.yaml" {
            continue; // need keys_all.txt, checked in the library tests
        }
        let file = vectors().join("enc").join(enc);
        let out = s
            .command(&bin("agentsec"))
            .args(["secrets", "decrypt"])
            .arg(&file)
            .env("SOPS_AGE_KEY_FILE", key())
            .output()
            .unwrap();
        let want = std::fs::read(vectors().join("expected").join(&name)).unwrap();
        assert!(
            out.status.success(),
            "{enc}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, want, "{enc}");
    }
}

#[test]
fn exit_codes_match_sops() {
    let s = Scratch::new();
    let v = |p: &str| vectors().join(p).to_string_lossy().into_owned();
    let code = |args: &[&str]| agentsec(&s, args).code;
    assert_eq!(code(&["decrypt", &v("tamper/unenc_changed.yaml")]), 51);
    assert_eq!(code(&["decrypt", &v("tamper/nomac.yaml")]), 51);
    assert_eq!(
        code(&["decrypt", "--ignore-mac", &v("tamper/nomac.yaml")]),
        0
    );
    assert_eq!(code(&["decrypt", &v("tamper/renamed.yaml")]), 25);
    assert_eq!(
        code(&["decrypt", "--ignore-mac", &v("tamper/renamed.yaml")]),
        25
    );
    assert_eq!(code(&["decrypt", &v("tamper/maconly_changed.yaml")]), 0);
    assert_eq!(code(&["decrypt", &v("does-not-exist.yaml")]), 100);
    assert_eq!(code(&["decrypt", &v("plain/basic.yaml")]), 1);
    assert_eq!(
        code(&["decrypt", "--extract", "[\"hello\"", &v("enc/basic.yaml")]),
        91
    );
    assert_eq!(
        code(&["decrypt", "--extract", "[\"nope\"]", &v("enc/basic.yaml")]),
        1
    );
    assert_eq!(
        code(&["decrypt", "--output-type", "dotenv", &v("enc/basic.yaml")]),
        4
    );
    let no_key = s
        .command(&bin("agentsec"))
        .args(["secrets", "decrypt"])
        .arg(v("enc/basic.yaml"))
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(128));
    let extract = agentsec(
        &s,
        &[
            "decrypt",
            "--extract",
            "[\"list_of_scalars\"][1]",
            &v("enc/basic.yaml"),
        ],
    );
    // List indices do not count comment elements (sops' do), so the path names what
    // get-secret names.
    assert_eq!(extract.stdout, "2\n");
    let extract = agentsec(
        &s,
        &["decrypt", "--extract", "['hello']", &v("enc/basic.yaml")],
    );
    assert_eq!(extract.stdout, "Welcome to SOPS!");
}

/// Every plaintext vector, every store: agentsec encrypt → real sops decrypt gives what sops
/// itself prints for its own encryption of the same file.
#[test]
fn agentsec_encrypt_then_sops_decrypt() {
    let s = Scratch::new();
    for entry in std::fs::read_dir(vectors().join("plain")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let plain = s.path(&format!("work/{name}"));
        std::fs::copy(vectors().join("plain").join(&name), &plain).unwrap();
        let enc = agentsec(
            &s,
            &["encrypt", "--age", MOCK_RECIPIENT, plain.to_str().unwrap()],
        );
        assert_eq!(enc.code, 0, "{name}: {}", enc.stderr);
        let out = s.path(&format!("work/enc.{name}"));
        std::fs::write(&out, &enc.stdout).unwrap();
        let dec = real_sops_decrypt(&s, &out);
        assert_eq!(dec.code, 0, "{name}: {}", dec.stderr);
        let expected = vectors().join("expected").join(format!("{name}.decrypted"));
        if expected.is_file() {
            assert_eq!(
                dec.stdout,
                std::fs::read_to_string(expected).unwrap(),
                "{name}"
            );
        }
    }
}

/// Creation rules with each partial-encryption option; sops decrypts (and so MAC-verifies)
/// every file, and agentsec decrypts sops' own encryption of it.
#[test]
fn partial_encryption_options_round_trip_both_ways() {
    let plain = std::fs::read_to_string(vectors().join("plain/regex.yaml")).unwrap();
    let comments = std::fs::read_to_string(vectors().join("plain/comments_regex.yaml")).unwrap();
    for (option, value, text) in [
        ("encrypted_regex", "^(data|stringData)$", &plain),
        ("unencrypted_regex", "^(apiVersion|kind|metadata)$", &plain),
        ("encrypted_suffix", "Data", &plain),
        ("unencrypted_suffix", "_unencrypted", &plain),
        ("encrypted_comment_regex", "sops:enc", &comments),
        ("unencrypted_comment_regex", "sops:enc", &comments),
        ("mac_only_encrypted", "true", &plain),
    ] {
        let s = Scratch::new();
        let extra = if option == "mac_only_encrypted" {
            "    mac_only_encrypted: true\n    encrypted_regex: ^stringData$\n".to_owned()
        } else {
            format!("    {option}: '{value}'\n")
        };
        s.write(
            "work/.sops.yaml",
            &format!(
                "creation_rules:\n  - path_regex: \\.yaml$\n    age: {MOCK_RECIPIENT}\n{extra}"
            ),
        );
        let file = s.write("work/f.yaml", text);
        let enc = agentsec(&s, &["encrypt", "--in-place", "f.yaml"]);
        assert_eq!(enc.code, 0, "{option}: {}", enc.stderr);
        let ours = real_sops_decrypt(&s, &file);
        assert_eq!(ours.code, 0, "{option}: {}", ours.stderr);
        let twin = s.write("work/g.yaml", text);
        let theirs = run(&s, &sops(), &["encrypt", "--in-place", "g.yaml"], None);
        assert_eq!(theirs.code, 0, "{option}: {}", theirs.stderr);
        let back = agentsec(&s, &["decrypt", twin.to_str().unwrap()]);
        assert_eq!(back.code, 0, "{option}: {}", back.stderr);
        assert_eq!(back.stdout, ours.stdout, "{option}");
    }
}

#[test]
fn set_unset_rotate_updatekeys_keep_files_sops_readable() {
    let s = Scratch::new();
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - age: {MOCK_RECIPIENT}\n"),
    );
    let file = s.write("work/s.yaml", "a: 1\nb:\n  c: two # note\nlist: [x, y]\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    assert_eq!(agentsec(&s, &["encrypt", "--in-place", "s.yaml"]).code, 0);
    let set = run(
        &s,
        &bin("agentsec"),
        &["secrets", "set", "s.yaml", "[\"b\"][\"d\"]"],
        Some("\"new\""),
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(agentsec(&s, &["unset", "s.yaml", "[\"list\"][0]"]).code, 0);
    let before = std::fs::read_to_string(&file).unwrap();
    assert_eq!(agentsec(&s, &["rotate", "s.yaml"]).code, 0);
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(before, after);
    let up = agentsec(&s, &["updatekeys", "--yes", "s.yaml"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let dec = real_sops_decrypt(&s, &file);
    assert_eq!(dec.code, 0, "{}", dec.stderr);
    assert_eq!(
        dec.stdout,
        "a: 1\nb:\n    # note\n    c: two\n    d: new\nlist:\n    - \"y\"\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file mode is kept");
    }
}

#[test]
fn keygen_writes_0600_and_never_overwrites() {
    let s = Scratch::new();
    let out = agentsec(&s, &["keygen", "-o", "k.txt"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("age1"), "{}", out.stdout);
    let path = s.path("work/k.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = agentsec(&s, &["keygen", "-o", "k.txt"]);
    assert_ne!(again.code, 0);
    // The new identity decrypts what is encrypted to its public key, with the real sops.
    let recipient = out.stdout.trim().to_owned();
    let plain = s.write("work/p.json", "{\"k\": \"v\"}\n");
    let enc = agentsec(
        &s,
        &[
            "encrypt",
            "--age",
            &recipient,
            "--in-place",
            plain.to_str().unwrap(),
        ],
    );
    assert_eq!(enc.code, 0, "{}", enc.stderr);
    let dec = s
        .command(&sops())
        .args(["decrypt"])
        .arg(&plain)
        .env("SOPS_AGE_KEY_FILE", &path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dec.stdout),
        "{\n\t\"k\": \"v\"\n}\n"
    );
}
