//! Secret paths through the real CLI: one parser for `agentsec secrets set/unset/decrypt
//! --extract`, the policy and the store; one canonical spelling per node; ciphertexts paired
//! with their leaves by position; and values bound to the path their sops AAD names, on files
//! written by the real sops and then edited as text.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, sops};
use serde_json::{Value, json};

fn recipient() -> String {
    std::fs::read_to_string(demo_key())
        .expect("test step")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .expect("test step")
}

/// Encrypts `plain` with the real sops into `work/<name>`.
fn sops_encrypt(s: &Scratch, name: &str, plain: &str) -> PathBuf {
    let src = s.write(&format!("tmp/{name}"), plain);
    let out = s
        .command(&sops())
        .args(["encrypt", "--age", &recipient()])
        .arg(&src)
        .output()
        .expect("test step");
    assert!(
        out.status.success(),
        "sops encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&src).expect("test step");
    s.write(
        &format!("work/{name}"),
        &String::from_utf8(out.stdout).expect("test step"),
    )
}

fn with_key(mut cmd: Command) -> Command {
    cmd.env("SOPS_AGE_KEY_FILE", demo_key());
    cmd
}

fn exec(mut cmd: Command, stdin: &str) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("test step");
    // A refused command may exit before reading its input: a broken pipe is fine.
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    Run::from(child.wait_with_output().expect("test step"))
}

/// `agentsec secrets ARGS...` with the demo key and `stdin`.
fn agentsec(s: &Scratch, args: &[&str], stdin: &str) -> Run {
    let mut cmd = with_key(s.command(&bin("agentsec")));
    cmd.arg("secrets").args(args);
    exec(cmd, stdin)
}

/// The real `sops ARGS...` with the demo key.
fn real_sops(s: &Scratch, args: &[&str]) -> Run {
    let mut cmd = with_key(s.command(&sops()));
    cmd.args(args);
    exec(cmd, "")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test step")
}

const DB: &str = "\
databases:
    postgres:
        password: pg-Secret-1
        user: app
    redis:
        password: redis-Secret-2
app:
    keys:
        - key-zero-A1
        - key-one-B2
";

#[test]
fn set_and_unset_accept_the_dotted_and_bracket_forms_and_sops_still_decrypts() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "db.yaml", DB);
    // The dotted form (the bug: it replaced the whole document).
    let set = agentsec(
        &s,
        &["set", p(&f), "databases.postgres.password"],
        "\"pg-New-3\"\n",
    );
    assert_eq!(set.code, 0, "{set:?}");
    let out = real_sops(&s, &["decrypt", p(&f)]);
    assert_eq!(out.code, 0, "sops must still decrypt it (MAC): {out:?}");
    assert!(out.stdout.contains("password: pg-New-3"), "{}", out.stdout);
    assert!(
        out.stdout.contains("password: redis-Secret-2"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("- key-one-B2"), "{}", out.stdout);
    // The bracket form and a list index, in both forms.
    let set = agentsec(
        &s,
        &["set", p(&f), r#"["app"]["keys"][1]"#],
        "\"key-New-C3\"",
    );
    assert_eq!(set.code, 0, "{set:?}");
    let set = agentsec(&s, &["set", p(&f), "app.keys.2"], "\"appended-D4\"");
    assert_eq!(set.code, 0, "{set:?}");
    let x = real_sops(
        &s,
        &["decrypt", "--extract", r#"["app"]["keys"][1]"#, p(&f)],
    );
    assert_eq!((x.code, x.stdout.as_str()), (0, "key-New-C3"), "{x:?}");
    let x = real_sops(
        &s,
        &["decrypt", "--extract", r#"["app"]["keys"][2]"#, p(&f)],
    );
    assert_eq!((x.code, x.stdout.as_str()), (0, "appended-D4"), "{x:?}");
    // A missing mapping is created.
    let set = agentsec(&s, &["set", p(&f), "new.child.leaf"], "\"fresh\"");
    assert_eq!(set.code, 0, "{set:?}");
    let x = real_sops(
        &s,
        &["decrypt", "--extract", r#"["new"]["child"]["leaf"]"#, p(&f)],
    );
    assert_eq!((x.code, x.stdout.as_str()), (0, "fresh"), "{x:?}");
    // unset, dotted: exactly that key goes.
    let unset = agentsec(&s, &["unset", p(&f), "databases.redis.password"], "");
    assert_eq!(unset.code, 0, "{unset:?}");
    let out = real_sops(&s, &["decrypt", p(&f)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("redis-Secret-2"), "{}", out.stdout);
    assert!(out.stdout.contains("password: pg-New-3"), "{}", out.stdout);
    let unset = agentsec(&s, &["unset", p(&f), "app.keys.0"], "");
    assert_eq!(unset.code, 0, "{unset:?}");
    let x = real_sops(
        &s,
        &["decrypt", "--extract", r#"["app"]["keys"][0]"#, p(&f)],
    );
    assert_eq!((x.code, x.stdout.as_str()), (0, "key-New-C3"), "{x:?}");
}

#[test]
fn bad_write_paths_exit_7_like_sops_and_leave_the_file_untouched() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "db.yaml", DB);
    let before = std::fs::read(&f).expect("test step");
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read(&f).expect("test step"),
            before,
            "{what} changed the file"
        );
    };
    // Syntax errors: exit 7 for both commands, as sops (`Invalid set index format`).
    for bad in [
        "",
        "a..b",
        ".a",
        "a.",
        r#"["databases""#,
        r#"["databases"]x"#,
        "[databases]",
        "a b",
        "app.keys.00",
        "app.keys[000]",
        "a.*",
    ] {
        let set = agentsec(&s, &["set", p(&f), bad], "\"x\"");
        assert_eq!(set.code, 7, "set {bad:?}: {set:?}");
        assert!(set.stderr.contains("Invalid set path"), "{set:?}");
        unchanged(&format!("set {bad:?}"));
        let unset = agentsec(&s, &["unset", p(&f), bad], "");
        assert_eq!(unset.code, 7, "unset {bad:?}: {unset:?}");
        unchanged(&format!("unset {bad:?}"));
    }
    // The real sops agrees on the sops-form syntax errors.
    for bad in [r#"["databases""#, "[databases]x", "abc"] {
        let r = real_sops(&s, &["set", p(&f), bad, "\"x\""]);
        assert_eq!(r.code, 7, "sops set {bad:?}: {r:?}");
    }
    unchanged("sops");
    // Paths that parse but would write where they do not point: refused, exit 7.
    for (bad, why) in [
        ("app.keys.5", "past the end"),
        ("app.keys.name", "names a key, but the node there is a list"),
        // New lists start at 0: these would have written `tokens.0`, `user.0`.
        ("tokens.7", "does not exist yet"),
        ("databases.postgres.user.3", "does not exist yet"),
    ] {
        let set = agentsec(&s, &["set", p(&f), bad], "\"x\"");
        assert_eq!(set.code, 7, "set {bad}: {set:?}");
        assert!(set.stderr.contains(why), "{set:?}");
        unchanged(bad);
    }
    // unset of a path that names nothing: exit 1, as sops (`Key not found`).
    for missing in ["nope", "databases.nope", "app.keys.7", r#"["nope"]"#] {
        let unset = agentsec(&s, &["unset", p(&f), missing], "");
        assert_eq!(unset.code, 1, "unset {missing}: {unset:?}");
        unchanged(missing);
    }
    let r = real_sops(&s, &["unset", p(&f), r#"["nope"]"#]);
    assert_eq!(r.code, 1, "sops unset: {r:?}");
    // A value that is not JSON: exit 7 as sops, file untouched.
    let set = agentsec(
        &s,
        &["set", p(&f), "databases.postgres.password"],
        "not json",
    );
    assert_eq!(set.code, 7, "{set:?}");
    unchanged("a non-JSON value");
}

#[test]
fn extract_takes_both_forms_and_exits_91_on_anything_else() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "db.yaml", DB);
    for (dotted, bracket) in [
        (
            "databases.postgres.password",
            r#"["databases"]["postgres"]["password"]"#,
        ),
        ("app.keys.1", r#"["app"]["keys"][1]"#),
        ("databases.postgres", r#"["databases"]["postgres"]"#),
    ] {
        let ours = agentsec(&s, &["decrypt", "--extract", dotted, p(&f)], "");
        let theirs = real_sops(&s, &["decrypt", "--extract", bracket, p(&f)]);
        assert_eq!(theirs.code, 0, "{theirs:?}");
        assert_eq!((ours.code, &ours.stdout), (0, &theirs.stdout), "{dotted}");
        let ours = agentsec(&s, &["decrypt", "--extract", bracket, p(&f)], "");
        assert_eq!((ours.code, &ours.stdout), (0, &theirs.stdout), "{bracket}");
    }
    // Not a path: 91 (sops: 91 for its own syntax errors), nothing printed.
    for bad in [
        r#"["app""#,
        "[app]",
        r#"["app"]x"#,
        "app..keys",
        "app.keys[00]",
        "a b",
    ] {
        let ours = agentsec(&s, &["decrypt", "--extract", bad, p(&f)], "");
        assert_eq!(ours.code, 91, "{bad:?}: {ours:?}");
        assert_eq!(ours.stdout, "", "{bad:?}");
    }
    for bad in [r#"["app""#, "[app]", r#"["app"]x"#] {
        assert_eq!(
            real_sops(&s, &["decrypt", "--extract", bad, p(&f)]).code,
            91
        );
    }
    // A dotted path that names nothing is not found (exit 1), never the whole file.
    let abc = agentsec(&s, &["decrypt", "--extract", "abc", p(&f)], "");
    assert_eq!((abc.code, abc.stdout.as_str()), (1, ""), "{abc:?}");
    assert!(
        abc.stderr.contains("component ['abc'] not found"),
        "{abc:?}"
    );
    // `--extract ''` prints the whole file, as sops does (a read).
    let all = agentsec(&s, &["decrypt", "--extract", "", p(&f)], "");
    let theirs = real_sops(&s, &["decrypt", "--extract", "", p(&f)]);
    assert_eq!((all.code, &all.stdout), (theirs.code, &theirs.stdout));
}

/// A policy with one broad grant for `ops/a` and the given denials.
fn policy(s: &Scratch, denied: &[&str]) -> PathBuf {
    let mut text =
        String::from("access_control:\n  secrets:\n    \"*\":\n      allowed_agents: [ops/a]\n");
    for d in denied {
        text.push_str(&format!("    '{d}':\n      denied_agents: [ops/a]\n"));
    }
    s.write("work/policy.yaml", &text)
}

/// Runs the probe as `ops/a` with `gets` and returns one result per path.
fn probe(s: &Scratch, secrets: &Path, policy: &Path, gets: &[&str]) -> (Run, Vec<Value>) {
    let ops: Vec<Value> = gets.iter().map(|g| json!({ "get": g })).collect();
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    let run = s.run_skill(
        "probe",
        "ops/a",
        secrets,
        policy,
        &["--input", &format!("@{}", input.display())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let results = run.json().as_array().expect("test step").clone();
    (run, results)
}

fn kind(v: &Value) -> &str {
    if v["ok"] == true {
        "ok"
    } else {
        v["err"].as_str().unwrap_or("?")
    }
}

#[test]
fn a_deny_on_a_list_element_holds_for_every_spelling() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "db.yaml", DB);
    let pol = policy(&s, &["app.keys.0"]);
    let gets = [
        "app.keys.0",
        "app.keys[0]",
        r#"["app"]["keys"][0]"#,
        r#"["app"]["keys"]["0"]"#,
        "app.keys.00",
        "app.keys[000]",
        r#"["app"]["keys"][00]"#,
        "app.keys.01",
        "app.keys.1",
    ];
    let (run, results) = probe(&s, &f, &pol, &gets);
    let kinds: Vec<&str> = results.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "denied",
            "denied",
            "denied",
            "denied",
            "invalid-path",
            "invalid-path",
            "invalid-path",
            "invalid-path",
            // Another element of the same list shares its AAD: the MAC pins
            // only the order of values, so `[[a, v]]` could have been
            // flattened into `[a, v]`; a deny on one element holds for all.
            "denied"
        ],
        "{results:?}"
    );
    assert!(
        results[4]["message"]
            .as_str()
            .expect("test step")
            .contains("leading zero"),
        "{results:?}"
    );
    assert_no_leak("key-zero-A1", run.stdout.as_bytes(), "stdout");
    // The audit log names the element one way only, and never allows it.
    for r in s.audit_records() {
        let path = r["secret_path"].as_str().unwrap_or_default();
        if path == "app.keys.0" {
            assert_eq!(r["decision"], "deny", "{r}");
        }
        assert!(!path.contains("00") || r["decision"] == "deny", "{r}");
    }
    // A rule may not use a non-canonical spelling either.
    let bad = s.write(
        "work/bad-policy.yaml",
        "access_control:\n  secrets:\n    app.keys.00:\n      denied_agents: [ops/a]\n",
    );
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["policy", "check", "--policy"]).arg(&bad);
    let check = exec(cmd, "");
    assert_ne!(check.code, 0, "{check:?}");
    assert!(check.stderr.contains("leading zero"), "{check:?}");
}

/// Encrypted list elements after encrypted comment elements: each index serves its own value
/// (the ciphertext is paired with its leaf by position, comments not counted), and a value
/// read from the store is redacted as an encrypted one.
#[test]
fn list_elements_after_comments_pair_with_their_own_ciphertext_and_are_redacted() {
    let s = Scratch::new();
    let f = sops_encrypt(
        &s,
        "notes.yaml",
        "notes:\n    # first comment\n    - first-N1-value\n    # second comment\n    # third\n    - second-N2-value\n    - third-N3-value\nplain_unencrypted: visible\n",
    );
    let text = std::fs::read_to_string(&f).expect("test step");
    assert!(
        text.contains("type:comment]"),
        "sops encrypted the comments as list elements: {text}"
    );
    let pol = policy(&s, &[]);
    let values = ["first-N1-value", "second-N2-value", "third-N3-value"];
    let mut ops = Vec::new();
    for (i, v) in values.iter().enumerate() {
        ops.push(json!({"get": format!("notes.{i}"), "expect": v}));
        ops.push(json!({"echo": format!("notes.{i}")}));
    }
    ops.push(json!({"get": "notes.3"}));
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    let run = s.run_skill(
        "probe",
        "ops/a",
        &f,
        &pol,
        &["--input", &format!("@{}", input.display())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let results = run.json();
    for i in 0..3 {
        assert_eq!(results[2 * i]["matches"], true, "notes.{i}: {results}");
    }
    assert_eq!(results[6]["err"], "not-found", "{results}");
    for v in values {
        assert_no_leak(v, run.stdout.as_bytes(), "stdout");
        assert_no_leak(v, run.stderr.as_bytes(), "stderr");
    }
}

const TEAM: &str = "\
prod:
    password: prod-Password-P1
team:
    dev:
        token: team-dev-T2
    prod:
        token: team-prod-T1
app:
    keys:
        - key-zero-A1
        - key-one-B2
solo:
    - solo-only-S1
";

/// Writes `text` (an edit of a file the real sops wrote) as `work/<name>`, and checks that
/// the real sops still accepts it: the MAC does not notice the restructuring.
fn edited(s: &Scratch, name: &str, text: &str) -> PathBuf {
    let f = s.write(&format!("work/{name}"), text);
    let check = real_sops(s, &["decrypt", p(&f)]);
    assert_eq!(
        check.code, 0,
        "sops refuses the edit {name}: {check:?}\n{text}"
    );
    let ours = agentsec(s, &["decrypt", p(&f)], "");
    assert_eq!(
        ours.code, 0,
        "`agentsec secrets decrypt` accepts {name} as sops does: {ours:?}"
    );
    f
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    text.replacen(from, to, 1)
}

#[test]
fn restructuring_the_file_does_not_move_a_value_out_from_under_a_deny() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "team.yaml", TEAM);
    let orig = std::fs::read_to_string(&f).expect("test step");

    // The untouched file: the denies hold, the rest is served.
    let pol = policy(&s, &["prod", "team.prod", "app.keys.0", "solo.0"]);
    let (_, r) = probe(
        &s,
        &f,
        &pol,
        &[
            "prod.password",
            "team.prod.token",
            "team.dev.token",
            "app.keys.0",
            "app.keys.1",
            "solo.0",
        ],
    );
    let kinds: Vec<&str> = r.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["denied", "denied", "ok", "denied", "denied", "denied"],
        "{r:?}"
    );

    // 1. `prod: {password: ENC}` -> `"prod:password": ENC` (same AAD `prod:password:`).
    let colon = edited(
        &s,
        "colon.yaml",
        &replace_once(&orig, "prod:\n    password: ", "\"prod:password\": "),
    );
    let (_, r) = probe(
        &s,
        &colon,
        &pol,
        &[r#"["prod:password"]"#, "team.dev.token"],
    );
    assert_eq!(kind(&r[0]), "invalid-path", "{r:?}");
    assert!(
        r[0]["message"]
            .as_str()
            .expect("test step")
            .contains("contains `:`"),
        "{r:?}"
    );
    assert_eq!(
        kind(&r[1]),
        "ok",
        "the rest of the file is still served: {r:?}"
    );
    // The reverse: a deny on the key with `:` follows the value into `prod.password`.
    let list = probe(&s, &colon, &pol, &[]).0;
    assert_eq!(list.code, 0);

    // 2. `team: {dev: .., prod: ..}` -> `team: [{dev: ..}, {prod: ..}]`.
    let wrapped = replace_once(
        &replace_once(&orig, "team:\n    dev:\n", "team:\n    - dev:\n"),
        "\n    prod:\n        token: ",
        "\n    - prod:\n        token: ",
    );
    let wrapped = edited(&s, "wrapped.yaml", &wrapped);
    let (_, r) = probe(
        &s,
        &wrapped,
        &pol,
        &["team.1.prod.token", "team.0.dev.token"],
    );
    assert_eq!(kind(&r[0]), "invalid-path", "{r:?}");
    assert!(
        r[0]["message"]
            .as_str()
            .expect("test step")
            .contains("mapping inside a list"),
        "{r:?}"
    );
    assert_eq!(
        kind(&r[1]),
        "invalid-path",
        "a mapping in a list is never bound: {r:?}"
    );

    // 2b. The whole mapping as the one element of a list.
    let one = orig.replace(
        "team:\n    dev:\n        token: ",
        "team:\n    - dev:\n        token: ",
    );
    let one = one.replace(
        "\n    prod:\n        token: ",
        "\n      prod:\n        token: ",
    );
    let one = edited(&s, "one.yaml", &one);
    let (_, r) = probe(&s, &one, &pol, &["team.0.prod.token"]);
    assert_eq!(kind(&r[0]), "invalid-path", "{r:?}");

    // 3. Elements the MAC skips, inserted to shift an index: `{}`, `[]`, `null`.
    for (name, filler) in [("empty-map", "{}"), ("empty-list", "[]"), ("null", "null")] {
        let shifted = replace_once(
            &orig,
            "    keys:\n        - ",
            &format!("    keys:\n        - {filler}\n        - "),
        );
        let shifted = edited(&s, &format!("{name}.yaml"), &shifted);
        let (_, r) = probe(&s, &shifted, &pol, &["app.keys.1", "app.keys.2"]);
        let kinds: Vec<&str> = r.iter().map(kind).collect();
        assert_eq!(kinds, ["invalid-path", "invalid-path"], "{name}: {r:?}");
    }

    // 4. A one-element list turned into a scalar: `solo: [ENC]` -> `solo: ENC`.
    let scalar = edited(
        &s,
        "scalar.yaml",
        &replace_once(&orig, "solo:\n    - ", "solo: "),
    );
    let (run, r) = probe(&s, &scalar, &pol, &["solo"]);
    assert_eq!(kind(&r[0]), "denied", "{r:?}");
    assert!(
        r[0]["message"]
            .as_str()
            .expect("test step")
            .contains("solo.0"),
        "{r:?}"
    );
    let last = s.audit_records().pop().expect("test step");
    assert_eq!(
        (&last["secret_path"], &last["decision"]),
        (&json!("solo"), &json!("deny")),
        "{last}"
    );
    assert_no_leak("solo-only-S1", run.stdout.as_bytes(), "stdout");

    // 5. A list nested in a list: `app.keys: [[ENC, ENC]]`.
    let nested = replace_once(&orig, "    keys:\n        - ", "    keys:\n        - - ");
    let nested = nested.replacen("\n        - ENC", "\n          - ENC", 1);
    let nested = edited(&s, "nested.yaml", &nested);
    let (_, r) = probe(&s, &nested, &pol, &["app.keys.0.1", "app.keys.0.0"]);
    let kinds: Vec<&str> = r.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["denied", "denied"],
        "under the deny on app.keys.0: {r:?}"
    );
    let (_, r) = probe(
        &s,
        &nested,
        &policy(&s, &[]),
        &["app.keys.0.1", "app.keys.0.0"],
    );
    let kinds: Vec<&str> = r.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["invalid-path", "invalid-path"],
        "a list in a list: {r:?}"
    );
}

#[test]
fn values_that_are_not_bound_to_their_path_are_not_listed() {
    let s = Scratch::new();
    let f = sops_encrypt(
        &s,
        "servers.yaml",
        "servers:\n    - name_unencrypted: a\n      password: srv-A-pass\n\"odd:key\": odd-value\nfine: fine-value\n",
    );
    let pol = policy(&s, &[]);
    let input = s.write(
        "work/input.json",
        &json!({"ops": [{"list": ""}]}).to_string(),
    );
    let run = s.run_skill(
        "probe",
        "ops/a",
        &f,
        &pol,
        &["--input", &format!("@{}", input.display())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let names = run.json()[0]["names"].clone();
    assert_eq!(
        names,
        json!(["servers.0.name_unencrypted", "fine"]),
        "{names}"
    );
}

/// `keys: [[a, v]]` flattened into `keys: [a, v]` (same values in the same
/// order, so the same AADs and MAC): `v` moves from `keys.0.1` to `keys.1`.
/// A deny on `keys.0` must still hold for it.
#[test]
fn flattening_nested_lists_does_not_move_a_value_out_from_under_a_deny() {
    let s = Scratch::new();
    let f = sops_encrypt(
        &s,
        "nested.yaml",
        "keys:\n    - - alpha-Secret-1\n      - omega-Secret-2\n",
    );
    let orig = std::fs::read_to_string(&f).expect("test step");
    let pol = policy(&s, &["keys.0"]);
    // The nested original is not served at all (a list inside a list).
    let (_, r) = probe(&s, &f, &pol, &["keys.0.1"]);
    assert_ne!(kind(&r[0]), "ok", "{r:?}");

    let flat = replace_once(&orig, "    - - ENC", "    - ENC");
    let flat = replace_once(&flat, "      - ENC", "    - ENC");
    let flat = edited(&s, "flat.yaml", &flat);
    let (run, r) = probe(&s, &flat, &pol, &["keys.0", "keys.1"]);
    let kinds: Vec<&str> = r.iter().map(kind).collect();
    assert_eq!(kinds, ["denied", "denied"], "{r:?}");
    assert!(!run.stdout.contains("omega-Secret-2"), "{run:?}");
}

/// A `post` value moved by an edit to a position a readonly rule covers: a one-element
/// list and a scalar share the sops AAD, so `solo: [ENC]` can become `solo: ENC` with the
/// MAC intact. The level restriction at `solo.0` follows the value, as a deny would.
#[test]
fn restructuring_the_file_does_not_move_a_post_value_out_from_under_its_level() {
    let s = Scratch::new();
    let f = sops_encrypt(&s, "team.yaml", TEAM);
    let orig = std::fs::read_to_string(&f).expect("test step");
    let pol = s.write(
        "work/post.yaml",
        "access_control:\n  secrets:\n    \"*\":\n      allowed_agents: [ops/a]\n    \
         solo.0:\n      allowed_agents: [ops/a]\n      access_level: post\n",
    );
    let (_, r) = probe(&s, &f, &pol, &["solo.0", "team.dev.token"]);
    assert_eq!(kind(&r[0]), "denied", "post: no raw read: {r:?}");
    assert_eq!(kind(&r[1]), "ok", "{r:?}");

    let scalar = edited(
        &s,
        "scalar.yaml",
        &replace_once(&orig, "solo:\n    - ", "solo: "),
    );
    let (run, r) = probe(&s, &scalar, &pol, &["solo", "team.dev.token"]);
    assert_eq!(kind(&r[0]), "denied", "{r:?}");
    let message = r[0]["message"].as_str().expect("test step");
    assert!(
        message.contains("rule `solo.0`") && message.contains("restricts it by its access level"),
        "{message}"
    );
    assert_eq!(kind(&r[1]), "ok", "the rest is still served: {r:?}");
    assert_no_leak("solo-only-S1", run.stdout.as_bytes(), "stdout");
    let denied = s
        .audit_records()
        .into_iter()
        .find(|rec| rec["secret_path"] == "solo" && rec["decision"] == "deny")
        .expect("the refusal is on record");
    assert_eq!(denied["rule"], "solo.0", "{denied}");
}
