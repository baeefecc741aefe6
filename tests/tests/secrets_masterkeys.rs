//! PGP, Vault Transit and AWS KMS master keys, both ways with the real sops 3.11: GnuPG
//! (Debian's gpg, RSA and Curve25519 keys, in a private GNUPGHOME), a real OpenBao Transit
//! engine, a local moto KMS. The Vault address allowlist is proved with a decoy server that
//! must receive nothing; Shamir threshold 2 over age + PGP + Transit groups.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use agentsec_tests::peers::{Decoy, GnuPg, moto, openbao};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, sops};

const SECRET: &str = "mk-wrapped-5e0c2a71";

fn plain() -> String {
    format!("db:\n    password: {SECRET}\nport: 5432\n")
}

fn run(s: &Scratch, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = s.command(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn agentsec(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Run {
    run(s, &bin("agentsec"), args, env)
}

fn real_sops(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Run {
    run(s, &sops(), args, env)
}

/// Decrypts `file` with both agentsec and sops and checks the secret came back.
fn both_decrypt(s: &Scratch, file: &str, env: &[(&str, &str)]) {
    let ours = agentsec(s, &["secrets", "decrypt", file], env);
    assert_eq!(ours.code, 0, "agentsec decrypt: {ours:?}");
    assert!(ours.stdout.contains(SECRET), "{ours:?}");
    let theirs = real_sops(s, &["decrypt", file], env);
    assert_eq!(theirs.code, 0, "sops decrypt: {theirs:?}");
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn pgp_both_ways_with_gpg_and_sops_rsa_and_curve25519() {
    let s = Scratch::new();
    let gpg = GnuPg::new();
    let rsa = gpg.generate("RSA Test <rsa@agentsec.test>", "rsa");
    let ed = gpg.generate("Cv Test <cv@agentsec.test>", "cv25519");
    let home = gpg.path().to_str().unwrap().to_owned();
    let env = [("GNUPGHOME", home.as_str())];
    s.write("work/p.yaml", &plain());
    for fpr in [&rsa, &ed] {
        // sops encrypts, agentsec decrypts (through gpg).
        let enc = real_sops(&s, &["encrypt", "--pgp", fpr, "p.yaml"], &env);
        assert_eq!(enc.code, 0, "{enc:?}");
        s.write("work/by-sops.yaml", &enc.stdout);
        both_decrypt(&s, "by-sops.yaml", &env);
        // agentsec encrypts, sops decrypts.
        let enc = agentsec(&s, &["secrets", "encrypt", "--pgp", fpr, "p.yaml"], &env);
        assert_eq!(enc.code, 0, "{enc:?}");
        assert!(enc.stdout.contains(&format!("fp: {fpr}")), "{}", enc.stdout);
        assert!(enc.stdout.contains("-----BEGIN PGP MESSAGE-----"));
        s.write("work/by-agentsec.yaml", &enc.stdout);
        both_decrypt(&s, "by-agentsec.yaml", &env);
    }
    // Without the secret key (another, empty GnuPG home): sops' code 128 and the report names
    // the fingerprint.
    let empty = GnuPg::new();
    let other = [("GNUPGHOME", empty.path().to_str().unwrap())];
    let out = agentsec(&s, &["secrets", "decrypt", "by-agentsec.yaml"], &other);
    assert_eq!(out.code, 128, "{out:?}");
    assert!(out.stderr.contains(&format!("pgp {ed}: FAILED")), "{out:?}");
    assert_no_leak(SECRET, out.stderr.as_bytes(), "stderr");
    // A fingerprint that is not hex is refused before gpg runs.
    let bad = agentsec(
        &s,
        &["secrets", "encrypt", "--pgp", "not-a-key", "p.yaml"],
        &env,
    );
    assert_eq!(bad.code, 23, "{bad:?}");
    assert!(bad.stderr.contains("not an OpenPGP fingerprint"), "{bad:?}");
}

#[test]
fn pgp_set_keeps_the_file_readable_by_sops() {
    let s = Scratch::new();
    let gpg = GnuPg::new();
    let fpr = gpg.generate("Set Test <set@agentsec.test>", "cv25519");
    let env = [("GNUPGHOME", gpg.path().to_str().unwrap())];
    s.write("work/p.yaml", &plain());
    let enc = real_sops(&s, &["encrypt", "--pgp", &fpr, "p.yaml"], &env);
    s.write("work/e.yaml", &enc.stdout);
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["secrets", "set", "e.yaml", "port"])
        .env("GNUPGHOME", gpg.path())
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"6543").unwrap();
    assert!(child.wait().unwrap().success());
    let out = real_sops(&s, &["decrypt", "--extract", "[\"port\"]", "e.yaml"], &env);
    assert_eq!((out.code, out.stdout.as_str()), (0, "6543\n"), "{out:?}");
    // rotate: a new data key, wrapped again through gpg.
    let rot = agentsec(&s, &["secrets", "rotate", "e.yaml"], &env);
    assert_eq!(rot.code, 0, "{rot:?}");
    both_decrypt(&s, "e.yaml", &env);
}

// OpenBao refuses a custom root token id with a `s.` prefix.
const TOKEN: &str = "agentsec-test-token-3f9d1c";

#[test]
fn vault_transit_both_ways_with_openbao_and_sops() {
    let s = Scratch::new();
    let bao = openbao(TOKEN);
    let uri = format!("{}/v1/transit/keys/sops", bao.addr);
    let env = [("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", TOKEN)];
    s.write("work/p.yaml", &plain());
    let enc = real_sops(&s, &["encrypt", "--hc-vault-transit", &uri, "p.yaml"], &env);
    assert_eq!(enc.code, 0, "{enc:?}");
    s.write("work/by-sops.yaml", &enc.stdout);
    both_decrypt(&s, "by-sops.yaml", &env);
    let enc = agentsec(
        &s,
        &["secrets", "encrypt", "--hc-vault-transit", &uri, "p.yaml"],
        &env,
    );
    assert_eq!(enc.code, 0, "{enc:?}");
    assert!(enc.stdout.contains("enc: vault:v1:"), "{}", enc.stdout);
    s.write("work/by-agentsec.yaml", &enc.stdout);
    both_decrypt(&s, "by-agentsec.yaml", &env);
    // Allowed through SOPS_HC_VAULT_ALLOWLIST alone (no VAULT_ADDR).
    let listed = [
        ("SOPS_HC_VAULT_ALLOWLIST", bao.addr.as_str()),
        ("VAULT_TOKEN", TOKEN),
    ];
    let out = agentsec(&s, &["secrets", "decrypt", "by-agentsec.yaml"], &listed);
    assert_eq!(out.code, 0, "{out:?}");
    // A wrong token: Vault's 403, code 128, the token in no message.
    let wrong = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", "s.wrong"),
    ];
    let out = agentsec(&s, &["secrets", "decrypt", "by-agentsec.yaml"], &wrong);
    assert_eq!(out.code, 128, "{out:?}");
    assert!(out.stderr.contains("403"), "{out:?}");
    for text in [&out.stdout, &out.stderr] {
        assert_no_leak(TOKEN, text.as_bytes(), "output");
    }
    for (path, bytes) in s.all_file_bytes() {
        assert_no_leak(TOKEN, &bytes, &path.display().to_string());
    }
}

/// The file's `vault_address` is not covered by the MAC: an edited file must not make agentsec
/// send the token elsewhere. The decoy server must receive nothing, not even a connection.
#[test]
fn vault_address_outside_the_allowlist_makes_no_request() {
    let s = Scratch::new();
    let bao = openbao(TOKEN);
    let decoy = Decoy::new();
    let uri = format!("{}/v1/transit/keys/sops", bao.addr);
    let env = [("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", TOKEN)];
    s.write("work/p.yaml", &plain());
    let enc = real_sops(&s, &["encrypt", "--hc-vault-transit", &uri, "p.yaml"], &env);
    assert_eq!(enc.code, 0, "{enc:?}");
    // The attacker's edit: only the address changes; the MAC still verifies.
    let edited = enc.stdout.replace(
        &format!("vault_address: {}", bao.addr),
        &format!("vault_address: {}", decoy.addr),
    );
    assert_ne!(edited, enc.stdout);
    s.write("work/edited.yaml", &edited);
    for env in [
        env.to_vec(),
        vec![
            ("VAULT_TOKEN", TOKEN),
            ("SOPS_HC_VAULT_ALLOWLIST", bao.addr.as_str()),
        ],
        vec![("VAULT_TOKEN", TOKEN)],
    ] {
        let out = agentsec(&s, &["secrets", "decrypt", "edited.yaml"], &env);
        assert_eq!(out.code, 128, "{out:?}");
        assert!(out.stderr.contains("is not allowed"), "{out:?}");
        assert!(out.stderr.contains("SOPS_HC_VAULT_ALLOWLIST"), "{out:?}");
        assert_no_leak(TOKEN, out.stderr.as_bytes(), "stderr");
        assert_no_leak(SECRET, out.stdout.as_bytes(), "stdout");
    }
    // Encrypting for a Transit key on a server that is not allowed: refused the same way.
    let decoy_uri = format!("{}/v1/transit/keys/sops", decoy.addr);
    let out = agentsec(
        &s,
        &[
            "secrets",
            "encrypt",
            "--hc-vault-transit",
            &decoy_uri,
            "p.yaml",
        ],
        &env,
    );
    assert_eq!(out.code, 23, "{out:?}");
    assert!(out.stderr.contains("is not allowed"), "{out:?}");
    // An engine path that would reach another endpoint of an allowed server is refused too.
    let sneaky = enc
        .stdout
        .replace("engine_path: transit", "engine_path: sys/../transit");
    s.write("work/sneaky.yaml", &sneaky);
    let out = agentsec(&s, &["secrets", "decrypt", "sneaky.yaml"], &env);
    assert_eq!(out.code, 128, "{out:?}");
    assert!(out.stderr.contains("engine path"), "{out:?}");
    // The real sops, for contrast, does send the token to the decoy (which never answers):
    // not run here, it would hang on the decoy until sops' own timeout.
    assert_eq!(decoy.hits(), 0, "a request reached the decoy");
    assert!(decoy.received().is_empty());
}

#[test]
fn kms_both_ways_with_moto_and_sops() {
    let s = Scratch::new();
    let kms = moto();
    let arn = kms.create_kms_key();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-9b2e"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_KMS", kms.addr.as_str()),
    ];
    s.write("work/p.yaml", &plain());
    let ctx = "--encryption-context=app:web,env:prod";
    let enc = real_sops(&s, &["encrypt", "--kms", &arn, ctx, "p.yaml"], &env);
    assert_eq!(enc.code, 0, "{enc:?}");
    s.write("work/by-sops.yaml", &enc.stdout);
    both_decrypt(&s, "by-sops.yaml", &env);
    let enc = agentsec(
        &s,
        &["secrets", "encrypt", "--kms", &arn, ctx, "p.yaml"],
        &env,
    );
    assert_eq!(enc.code, 0, "{enc:?}");
    assert!(enc.stdout.contains("app: web"), "{}", enc.stdout);
    s.write("work/by-agentsec.yaml", &enc.stdout);
    both_decrypt(&s, "by-agentsec.yaml", &env);
    // The encryption context is bound to the ciphertext: a changed context fails at KMS.
    let changed = enc.stdout.replace("env: prod", "env: dev");
    s.write("work/changed.yaml", &changed);
    let out = agentsec(&s, &["secrets", "decrypt", "changed.yaml"], &env);
    assert_eq!(out.code, 128, "{out:?}");
    assert!(
        out.stderr.contains(&format!("kms {arn}: FAILED")),
        "{out:?}"
    );
    assert_no_leak("test-secret-9b2e", out.stderr.as_bytes(), "stderr");
    // Credentials from the shared credentials file, for the profile.
    s.write(
        "home/.aws/credentials",
        "[default]\naws_access_key_id = test\naws_secret_access_key = from-file\n",
    );
    let file_env = [("AWS_ENDPOINT_URL_KMS", kms.addr.as_str())];
    let out = agentsec(&s, &["secrets", "decrypt", "by-agentsec.yaml"], &file_env);
    assert_eq!(out.code, 0, "{out:?}");
    // A malformed context: sops' code 6.
    let bad = agentsec(
        &s,
        &[
            "secrets",
            "encrypt",
            "--kms",
            &arn,
            "--encryption-context",
            "nocolon",
            "p.yaml",
        ],
        &env,
    );
    assert_eq!(bad.code, 6, "{bad:?}");
}

/// Threshold 2 of three groups of different types: age, PGP, Vault Transit.
#[test]
fn shamir_across_age_pgp_and_transit_groups() {
    let s = Scratch::new();
    let gpg = GnuPg::new();
    let fpr = gpg.generate("Shamir <shamir@agentsec.test>", "cv25519");
    let bao = openbao(TOKEN);
    let uri = format!("{}/v1/transit/keys/sops", bao.addr);
    let age_key = s.path("home/age.txt");
    let keygen = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&age_key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = std::fs::read_to_string(&age_key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    s.write(
        "work/.sops.yaml",
        &format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age:\n          - {recipient}\n      - pgp:\n          - {fpr}\n      - hc_vault:\n          - {uri}\n"
        ),
    );
    s.write("work/p.yaml", &plain());
    let gnupghome = gpg.path().to_str().unwrap();
    let age_file = age_key.to_str().unwrap();
    let all = [
        ("GNUPGHOME", gnupghome),
        ("SOPS_AGE_KEY_FILE", age_file),
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", TOKEN),
    ];
    for (who, file) in [("agentsec", "by-agentsec.yaml"), ("sops", "by-sops.yaml")] {
        let enc = if who == "agentsec" {
            agentsec(&s, &["secrets", "encrypt", "p.yaml"], &all)
        } else {
            real_sops(&s, &["encrypt", "p.yaml"], &all)
        };
        assert_eq!(enc.code, 0, "{who}: {enc:?}");
        assert!(enc.stdout.contains("shamir_threshold: 2"), "{}", enc.stdout);
        s.write(&format!("work/{file}"), &enc.stdout);
        both_decrypt(&s, file, &all);
        // Any two groups suffice: age + PGP (no Vault token), PGP + Vault (no age key).
        let age_pgp = [("GNUPGHOME", gnupghome), ("SOPS_AGE_KEY_FILE", age_file)];
        both_decrypt(&s, file, &age_pgp);
        let empty = GnuPg::new();
        let age_vault = [
            ("GNUPGHOME", empty.path().to_str().unwrap()),
            ("SOPS_AGE_KEY_FILE", age_file),
            ("VAULT_ADDR", bao.addr.as_str()),
            ("VAULT_TOKEN", TOKEN),
        ];
        both_decrypt(&s, file, &age_vault);
        // One group is not enough.
        let age_only = [
            ("GNUPGHOME", empty.path().to_str().unwrap()),
            ("SOPS_AGE_KEY_FILE", age_file),
        ];
        let out = agentsec(&s, &["secrets", "decrypt", file], &age_only);
        assert_eq!(out.code, 128, "{out:?}");
        assert!(out.stderr.contains("needs 2 of 3 key groups"), "{out:?}");
        assert!(out.stderr.contains("1 succeeded"), "{out:?}");
    }
}

/// `updatekeys` prints the keys it adds and removes (`+++` / `---`) before asking.
#[test]
fn updatekeys_shows_added_and_removed_keys_across_types() {
    let s = Scratch::new();
    let gpg = GnuPg::new();
    let fpr = gpg.generate("Upd <upd@agentsec.test>", "cv25519");
    let age_key = s.path("home/age.txt");
    assert!(
        std::process::Command::new("age-keygen")
            .arg("-o")
            .arg(&age_key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let recipient = std::fs::read_to_string(&age_key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    let env = [
        ("GNUPGHOME", gpg.path().to_str().unwrap()),
        ("SOPS_AGE_KEY_FILE", age_key.to_str().unwrap()),
    ];
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - age: {recipient}\n"),
    );
    s.write("work/p.yaml", &plain());
    let enc = agentsec(&s, &["secrets", "encrypt", "p.yaml"], &env);
    s.write("work/e.yaml", &enc.stdout);
    s.write(
        "work/.sops.yaml",
        &format!("creation_rules:\n  - pgp: {fpr}\n"),
    );
    let out = agentsec(&s, &["secrets", "updatekeys", "-y", "e.yaml"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(&format!("+++ pgp: {fpr}")), "{out:?}");
    assert!(
        out.stderr.contains(&format!("--- age: {recipient}")),
        "{out:?}"
    );
    let text = std::fs::read_to_string(s.path("work/e.yaml")).unwrap();
    assert!(
        text.contains(&format!("fp: {fpr}")) && !text.contains("recipient:"),
        "{text}"
    );
    both_decrypt(&s, "e.yaml", &[("GNUPGHOME", gpg.path().to_str().unwrap())]);
    let again = agentsec(&s, &["secrets", "updatekeys", "-y", "e.yaml"], &env);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("already up to date"), "{again:?}");
}

/// The store `agentsec-run` and `agentsec exec` open reads Transit-wrapped files too, with
/// the allowlist from agentsec.yaml (`hc_vault_allowlist:`) and no VAULT_ADDR.
#[test]
fn exec_reads_a_transit_file_allowed_by_agentsec_yaml() {
    let s = Scratch::new();
    let bao = openbao(TOKEN);
    let uri = format!("{}/v1/transit/keys/sops", bao.addr);
    s.write("work/p.yaml", &plain());
    let enc = real_sops(
        &s,
        &["encrypt", "--hc-vault-transit", &uri, "p.yaml"],
        &[("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", TOKEN)],
    );
    assert_eq!(enc.code, 0, "{enc:?}");
    s.write("work/secrets.yaml", &enc.stdout);
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    db:\n      allowed_agents: [ops/*]\n",
    );
    let exec = |s: &Scratch| {
        agentsec(
            s,
            &[
                "exec",
                "--agent",
                "ops/mcp",
                "--secrets",
                "secrets.yaml",
                "--policy",
                "policy.yaml",
                "--audit-log",
                "audit.log",
                "--env",
                "P=db.password",
                "--",
                "/bin/sh",
                "-c",
                "echo \"got $P\"",
            ],
            &[("VAULT_TOKEN", TOKEN)],
        )
    };
    // Not allowed yet: refused at start-up, before any request, the child never runs.
    let out = exec(&s);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("is not allowed"), "{out:?}");
    s.write(
        "work/agentsec.yaml",
        &format!("hc_vault_allowlist: [{}]\n", bao.addr),
    );
    let out = exec(&s);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "got [REDACTED:db.password]\n", "{out:?}");
    for text in [&out.stdout, &out.stderr] {
        assert_no_leak(TOKEN, text.as_bytes(), "output");
        assert_no_leak(SECRET, text.as_bytes(), "output");
    }
}
