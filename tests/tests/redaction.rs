//! Redaction through `agentsec-run`: every encoded form of a released value
//! (one test per form), a value split across the skill's stdout and stderr,
//! JSON results with escapes, the lines and members of multi-line values, and
//! values passed back as paths (what the audit log holds then).
//!
//! The secrets file is written by the real sops; the skill is the `probe`
//! test skill, which returns or prints a value in the form it is told.

#![expect(
    clippy::unwrap_used,
    reason = "test set-up: a failure should stop the test loudly"
)]
use agentsec_tests::{Run, Scratch, assert_no_leak};
use serde_json::{Value, json};

const TOKEN: &str = "Zq9-redaction-token-4417x/+w";
const TOKEN_PATH: &str = "odd.token";
const ODD: &str = "qu\"ote\\back\nnew\ttab-é-ü-9f3K";
const ODD_PATH: &str = "odd.escapes";
const PEM_LINE: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
const SA_KEY_LINE: &str = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";

/// A SOPS file written by the real sops with the odd values, and a policy
/// that lets `ops/tester` read them.
fn world() -> (Scratch, std::path::PathBuf, std::path::PathBuf) {
    let s = Scratch::new();
    let sa = format!(
        r#"{{"type": "service_account", "private_key": "-----BEGIN RSA PRIVATE KEY-----\n{SA_KEY_LINE}\n-----END RSA PRIVATE KEY-----\n", "client_email": "x@y.iam.gserviceaccount.com"}}"#
    );
    let secrets = s.sops_encrypt(
        "work/odd.yaml",
        &format!(
            "odd:\n    token: {TOKEN}\n    escapes: {}\n    pem: |\n        -----BEGIN PRIVATE KEY-----\n        {PEM_LINE}\n        aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8=\n        -----END PRIVATE KEY-----\n    sa: {}\ndatabases:\n    postgres:\n        host: db.example.internal\n",
            json!(ODD),
            json!(sa)
        ),
    );
    let policy = s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    odd:\n      allowed_agents: [ops/tester]\n    databases:\n      allowed_agents: [ops/tester]\n",
    );
    (s, secrets, policy)
}

fn probe(world: &(Scratch, std::path::PathBuf, std::path::PathBuf), ops: Value) -> Run {
    let (s, secrets, policy) = world;
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    let arg = format!("@{}", input.display());
    let run = s.run_skill("probe", "ops/tester", secrets, policy, &["--input", &arg]);
    assert_eq!(run.code, 0, "{run:?}");
    run
}

fn b64(bytes: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Pieces of `value` in `encoding` (as the probe writes it) that must not
/// survive redaction: the whole spelling and its middle.
fn spelled(value: &str, encoding: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let whole = match encoding {
        "json" => json!(value).to_string(),
        "json_ascii" => value
            .encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect(),
        "pct_all" => bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        "hex_mixed" => bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
        "base64_off1" | "base64_off2" => {
            let pre: &[u8] = if encoding == "base64_off1" {
                b"{"
            } else {
                b"{\""
            };
            let mut stream = pre.to_vec();
            stream.extend_from_slice(bytes);
            stream.extend_from_slice(b"\"} and more");
            // Only the characters that depend on the value's bytes alone.
            let text = b64(&stream);
            let first = (8 * pre.len()).div_ceil(6);
            let end = 8 * (pre.len() + bytes.len()) / 6;
            text[first..end].to_owned()
        }
        "base64_wrapped" => b64(bytes),
        "reversed" => value.chars().rev().collect(),
        _ => value.to_owned(),
    };
    let mid = whole.len() / 2;
    let piece = whole
        .get(mid.saturating_sub(6)..mid + 6)
        .unwrap_or(&whole)
        .to_owned();
    vec![whole, piece]
}

fn assert_absent(haystack: &str, needles: &[String], place: &str) {
    for n in needles {
        assert!(
            !haystack.contains(n.as_str()),
            "{n:?} leaked into {place}: {haystack}"
        );
    }
}

/// The probe echoes the token in `encoding` in its result and prints it to
/// stdout/stderr (split across writes); none of it survives.
fn form_is_redacted(encoding: &str, path: &str, value: &str) {
    let w = world();
    let run = probe(
        &w,
        json!([
            {"echo": path, "encoding": encoding},
            {"print": path, "encoding": encoding},
        ]),
    );
    let mut pieces = spelled(value, encoding);
    if encoding == "base64_wrapped" {
        // Each 16-character line of it.
        let whole = pieces[0].clone();
        pieces.extend(
            whole
                .as_bytes()
                .chunks(16)
                .filter(|c| c.len() == 16)
                .map(|c| String::from_utf8(c.to_vec()).unwrap()),
        );
    }
    assert_absent(&run.stdout, &pieces, "the result");
    assert_absent(&run.stderr, &pieces, "stderr");
    assert_no_leak(value, run.stdout.as_bytes(), "the result");
    assert_no_leak(value, run.stderr.as_bytes(), "stderr");
    let marker = format!("[REDACTED:{path}]");
    assert!(run.stdout.contains(&marker), "{run:?}");
    assert!(run.stderr.contains(&marker), "{run:?}");
    // The result is still JSON.
    let _ = run.json();
}

#[test]
fn form_json_escaped_value_with_quote_backslash_newline_non_ascii() {
    form_is_redacted("json", ODD_PATH, ODD);
}

#[test]
fn form_every_character_as_a_json_u_escape() {
    form_is_redacted("json_ascii", TOKEN_PATH, TOKEN);
}

#[test]
fn form_non_ascii_value_as_json_u_escapes() {
    form_is_redacted("json_ascii", ODD_PATH, ODD);
}

#[test]
fn form_every_byte_percent_encoded() {
    form_is_redacted("pct_all", TOKEN_PATH, TOKEN);
}

#[test]
fn form_mixed_case_hex() {
    form_is_redacted("hex_mixed", TOKEN_PATH, TOKEN);
}

#[test]
fn form_base64_at_a_one_byte_offset() {
    form_is_redacted("base64_off1", TOKEN_PATH, TOKEN);
}

#[test]
fn form_base64_at_a_two_byte_offset() {
    form_is_redacted("base64_off2", TOKEN_PATH, TOKEN);
}

#[test]
fn form_line_wrapped_base64() {
    form_is_redacted("base64_wrapped", TOKEN_PATH, TOKEN);
}

#[test]
fn a_value_split_between_stdout_and_stderr_is_redacted() {
    let w = world();
    for encoding in ["raw", "hex_mixed"] {
        let run = probe(
            &w,
            json!([{"split_streams": TOKEN_PATH, "encoding": encoding}]),
        );
        // agentsec-run writes the skill's stdout, then its stderr, to stderr.
        assert_absent(&run.stderr, &spelled(TOKEN, encoding)[..1], "stderr");
        assert_no_leak(TOKEN, run.stderr.as_bytes(), "stderr");
        assert!(
            run.stderr.matches("[REDACTED:odd.token]").count() == 2,
            "one marker for each half: {run:?}"
        );
    }
}

#[test]
fn a_json_result_is_redacted_on_its_decoded_strings_and_keys() {
    let w = world();
    // A hand-written result, every character a `\u` escape.
    for encoding in ["json_ascii", "raw"] {
        for (path, value) in [(ODD_PATH, ODD), (TOKEN_PATH, TOKEN)] {
            let run = probe(&w, json!([{"result_raw": path, "encoding": encoding}]));
            let out = run.json();
            let v = out["v"].as_str().unwrap_or_default();
            assert!(!v.contains(value), "{run:?}");
            assert_eq!(v, format!("[REDACTED:{path}]"), "{run:?}");
        }
    }
    // The value as a key of the result, as serde_json writes it.
    let run = probe(&w, json!([{"as_key": ODD_PATH}]));
    let out = run.json();
    let keys: Vec<&String> = out[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["[REDACTED:odd.escapes]"], "{run:?}");
    // And as a value (json! escapes the quote, backslash, newline and tab).
    let run = probe(&w, json!([{"echo": ODD_PATH}]));
    assert_eq!(run.json()[0]["value"], "[REDACTED:odd.escapes]", "{run:?}");
}

#[test]
fn each_line_of_a_multi_line_value_is_redacted() {
    let w = world();
    let run = probe(
        &w,
        json!([
            {"line_of": "odd.pem", "n": 1},
            {"line_of": "odd.pem", "n": 2},
            {"member_of": "odd.sa", "key": "private_key"},
        ]),
    );
    let out = run.json();
    assert_eq!(out[0]["line"], "[REDACTED:odd.pem]", "{run:?}");
    assert_eq!(out[1]["line"], "[REDACTED:odd.pem]", "{run:?}");
    assert!(!run.stdout.contains(PEM_LINE), "{run:?}");
    assert!(
        !run.stdout.contains("aGVsbG8gd29ybGQgaGVsbG8gd29ybGQg"),
        "{run:?}"
    );
    // The PEM inside a service-account JSON, decoded by the skill.
    assert!(!run.stdout.contains(SA_KEY_LINE), "{run:?}");
    assert!(run.stdout.contains("[REDACTED:odd.sa]"), "{run:?}");
}

#[test]
fn values_passed_back_as_paths_never_reach_the_audit_log() {
    let w = world();
    let encodings = [
        "raw",
        "base64",
        "hex_mixed",
        "json_ascii",
        "pct_all",
        "reversed",
    ];
    let mut ops: Vec<Value> = encodings
        .iter()
        .map(|e| json!({"reflect": TOKEN_PATH, "encoding": e}))
        .collect();
    ops.push(json!({"reflect": ODD_PATH, "encoding": "reversed"}));
    ops.push(json!({"line_of": "odd.pem", "n": 1, "as_path": true}));
    ops.push(json!({"get": "databases.postgres.host"}));
    ops.push(json!({"get": "databases.postgres.nope"}));
    ops.push(json!({"get": "databases.no-such-key.deeper"}));
    let _ = probe(&w, Value::Array(ops));
    let s = &w.0;
    let log = std::fs::read_to_string(s.audit_log()).unwrap();
    for (value, encoding) in encodings
        .iter()
        .map(|e| (TOKEN, *e))
        .chain([(ODD, "reversed"), (ODD, "raw")])
    {
        assert_absent(&log, &spelled(value, encoding), "the audit log");
    }
    assert_no_leak(TOKEN, log.as_bytes(), "the audit log");
    assert!(
        !log.contains(PEM_LINE),
        "a line of the PEM leaked into the audit log"
    );
    let reversed: String = TOKEN.chars().rev().collect();
    assert!(!log.contains(&reversed[..10]));

    let records = s.audit_records();
    // Paths that name something are recorded as asked.
    assert!(
        records
            .iter()
            .any(|r| r["secret_path"] == "databases.postgres.host" && r["detail"].is_null()),
        "{records:#?}"
    );
    // A path that names nothing: the longest prefix that exists, its length
    // and a keyed hash.
    let nope = records
        .iter()
        .find(|r| {
            r["secret_path"] == "databases.postgres"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("not-found; unknown-path len=23 hmac="))
        })
        .unwrap_or_else(|| panic!("databases.postgres.nope on record: {records:#?}"));
    let hmac = nope["detail"]
        .as_str()
        .unwrap()
        .rsplit("hmac=")
        .next()
        .unwrap();
    assert_eq!(hmac.len(), 32, "{nope}");
    assert!(hmac.bytes().all(|b| b.is_ascii_hexdigit()), "{nope}");
    let unknown: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("unknown-path"))
        })
        .collect();
    // Each reflect passes the value 4 ways; the line twice; plus two more.
    assert!(unknown.len() >= 4 * 7 + 2 + 2, "{unknown:#?}");
    // A path below an existing node is recorded under the longest prefix that exists.
    assert!(
        unknown.iter().any(|r| r["secret_path"] == "databases"
            && r["detail"]
                .as_str()
                .unwrap()
                .starts_with("not-found; unknown-path len=28 ")),
        "{unknown:#?}"
    );
    // The same path twice in a run has the same hash (`get` and `list` of the raw value).
    let tags: Vec<&str> = unknown
        .iter()
        .filter_map(|r| r["detail"].as_str()?.rsplit("hmac=").next())
        .collect();
    let distinct: std::collections::HashSet<&&str> = tags.iter().collect();
    assert!(distinct.len() < tags.len(), "{tags:?}");
}

/// A value whose forms would take the run past `--max-redaction-bytes` (or
/// `sandbox: max_redaction_bytes`) is not released: exit 4, the flag named,
/// nothing of the value in the output, and a deny in the audit log.
#[test]
fn a_value_past_the_redaction_limit_is_not_released() {
    let (s, secrets, policy) = world();
    let input = json!({"ops": [{"echo": "odd.token"}]}).to_string();
    let run = s.run_skill(
        "probe",
        "ops/tester",
        &secrets,
        &policy,
        &["--input", &input],
    );
    assert_eq!(run.code, 0, "released under the default limit: {run:?}");

    let limited = s.write(
        "work/limited.yaml",
        &format!(
            "{}sandbox:\n  max_redaction_bytes: 64\n",
            std::fs::read_to_string(&policy).unwrap()
        ),
    );
    for (policy, extra) in [
        (&policy, vec!["--max-redaction-bytes", "64"]),
        (&limited, vec![]),
    ] {
        let mut args = vec!["--input", input.as_str()];
        args.extend(extra);
        let run = s.run_skill("probe", "ops/tester", &secrets, policy, &args);
        assert_eq!(run.code, 4, "{run:?}");
        assert!(run.stderr.contains("redaction limit"), "{run:?}");
        assert!(run.stderr.contains("--max-redaction-bytes"), "{run:?}");
        assert_no_leak(TOKEN, run.stdout.as_bytes(), "the result");
        assert_no_leak(TOKEN, run.stderr.as_bytes(), "stderr");
    }
    let records = s.audit_records();
    let refused: Vec<_> = records
        .iter()
        .filter(|r| {
            r["decision"] == "deny"
                && r["access_type"] == "read"
                && r["secret_path"] == "odd.token"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("redaction limit"))
        })
        .collect();
    assert_eq!(refused.len(), 2, "{records:?}");
}
