//! Skills in every language the SDKs cover, through one shared table of end-to-end cases:
//! the same release-notes skill in Rust, Python and JavaScript gives the same output for
//! an allowed agent, is refused for a denied one, has its declared needs checked before the
//! run, and a skill that prints and returns a secret has it redacted from everything it
//! sends back. Each is built from source by its SDK's build command.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentsec_tests::{
    Lang, Run, Scratch, assert_no_leak, bin, demo_key, lang_skill, lang_skills_dir, root,
};
use serde_json::Value;

/// One language's skills for the shared cases.
struct Case {
    lang: Lang,
    /// The release-notes skill (same input and output in every language).
    release_notes: &'static str,
    /// A skill that prints the GitHub token to stdout and stderr and returns it, with its
    /// input.
    echo: (&'static str, &'static str),
    /// Whether the release-notes skill declares its needs (checked before the run).
    declares_needs: bool,
}

const CASES: &[Case] = &[
    Case {
        lang: Lang::Rust,
        release_notes: "example-skills/release-notes",
        echo: (
            "tests/skills/probe",
            r#"{"ops": [{"print": "communication.github.token"}, {"echo": "communication.github.token"}]}"#,
        ),
        declares_needs: false,
    },
    Case {
        lang: Lang::Python,
        release_notes: "example-skills/py-release-notes",
        echo: ("tests/skills-py/py-echo", "{}"),
        declares_needs: true,
    },
    Case {
        lang: Lang::JavaScript,
        release_notes: "example-skills/js-release-notes",
        echo: ("tests/skills-js/js-echo", "{}"),
        declares_needs: true,
    },
];

const INPUT: &str = r#"{"repo": "acme/api", "version": "v1.4.0", "changes": ["Faster deploys"]}"#;
const TOKEN_PATH: &str = "communication.github.token";
const MARKER: &str = "[REDACTED:communication.github.token]";

/// A cache shared by the cases (compiling an 18 MB component takes seconds in a debug
/// build); [`first_runs_compile_and_say_so`] uses a cache of its own.
fn warm_cache() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Emptied once per test process: Python and JS builds are not reproducible, so
        // every run of the suite adds new ~35 MB artifacts that would otherwise pile up.
        let dir = lang_skills_dir(Lang::Rust).join("../../lang-cache");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cache dir");
        dir.canonicalize().expect("cache dir")
    })
    .clone()
}

/// `agentsec-run COMPONENT --skills DIR --agent AGENT` against the demo secrets and `policy`.
fn run(
    s: &Scratch,
    component: &Path,
    dir: &Path,
    agent: &str,
    input: &str,
    policy: &Path,
    cache: &Path,
) -> Run {
    let out = s
        .command(&bin("agentsec-run"))
        .arg(component)
        .arg("--skills")
        .arg(dir)
        .args([
            "--agent",
            agent,
            "--input",
            input,
            "--compile-timeout",
            "10m",
        ])
        .arg("--secrets")
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("agentsec-run runs");
    Run::from(out)
}

fn component(case: &Case, dir: &str) -> PathBuf {
    lang_skill(case.lang, dir)
}

fn demo_policy() -> PathBuf {
    root().join("policies/demo.yaml")
}

/// The demo's GitHub token, read with the real sops (the planted value to look for).
fn token() -> String {
    let out = std::process::Command::new(agentsec_tests::sops())
        .args([
            "decrypt",
            "--extract",
            r#"["communication"]["github"]["token"]"#,
        ])
        .arg(root().join("demo/secrets.yaml"))
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .expect("sops runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_language_gives_the_same_release_notes_to_an_allowed_agent() {
    let mut outputs: Vec<(Lang, Value)> = Vec::new();
    for case in CASES {
        let s = Scratch::new();
        let c = component(case, case.release_notes);
        let dir = c.parent().expect("dir").to_owned();
        let r = run(
            &s,
            &c,
            &dir,
            "ops/changelog",
            INPUT,
            &demo_policy(),
            &warm_cache(),
        );
        assert_eq!(r.code, 0, "{:?}: {r:?}", case.lang);
        let out: Value = serde_json::from_str(&r.stdout).expect("JSON result");
        assert_eq!(
            out["token"]["kind"], "classic personal access token",
            "{:?}: {out}",
            case.lang
        );
        assert_eq!(out["would_publish"]["tag"], "v1.4.0");
        let records = s.audit_records();
        assert!(
            records
                .iter()
                .any(|r| r["secret_path"] == TOKEN_PATH && r["decision"] == "allow"),
            "{:?}: {records:?}",
            case.lang
        );
        outputs.push((case.lang, out));
    }
    let (_, rust) = &outputs[0];
    for (lang, out) in &outputs[1..] {
        assert_eq!(out, rust, "{lang:?} differs from Rust");
    }
}

#[test]
fn every_language_is_refused_for_a_denied_agent() {
    for case in CASES {
        let s = Scratch::new();
        let c = component(case, case.release_notes);
        let dir = c.parent().expect("dir").to_owned();
        let r = run(
            &s,
            &c,
            &dir,
            "ops/intern",
            INPUT,
            &demo_policy(),
            &warm_cache(),
        );
        assert_eq!(r.code, 3, "{:?}: {r:?}", case.lang);
        assert!(r.stderr.contains("denied_agents"), "{:?}: {r:?}", case.lang);
        let records = s.audit_records();
        let deny = records
            .iter()
            .find(|r| r["secret_path"] == TOKEN_PATH && r["decision"] == "deny")
            .unwrap_or_else(|| panic!("{:?}: no deny record: {records:?}", case.lang));
        assert_eq!(deny["rule"], "communication.github");
        if case.declares_needs {
            // Refused before the run: the need, not a call, is on record.
            assert_eq!(
                deny["detail"], "declared need not granted",
                "{:?}",
                case.lang
            );
            assert!(
                r.stderr.contains("declares that it needs"),
                "{:?}: {r:?}",
                case.lang
            );
        }
    }
}

#[test]
fn declared_needs_are_checked_before_the_run() {
    for case in CASES.iter().filter(|c| c.declares_needs) {
        let s = Scratch::new();
        let policy = s.write(
            "work/no-github.yaml",
            "access_control:\n  secrets:\n    monitoring:\n      allowed_agents: [ops/changelog]\n",
        );
        let c = component(case, case.release_notes);
        let dir = c.parent().expect("dir").to_owned();
        let r = run(&s, &c, &dir, "ops/changelog", INPUT, &policy, &warm_cache());
        assert_eq!(r.code, 3, "{:?}: {r:?}", case.lang);
        assert!(r.stderr.contains(TOKEN_PATH), "{:?}: {r:?}", case.lang);
        let records = s.audit_records();
        assert!(
            records
                .iter()
                .any(|r| r["secret_path"] == TOKEN_PATH
                    && r["detail"] == "declared need not granted"),
            "{:?}: the refused need is on record: {records:?}",
            case.lang
        );
        assert!(
            records.iter().all(|r| r["decision"] == "deny"),
            "nothing released: {records:?}"
        );
    }
}

#[test]
fn what_a_skill_prints_and_returns_is_redacted_in_every_language() {
    let token = token();
    for case in CASES {
        let s = Scratch::new();
        let (dir, input) = case.echo;
        let c = component(case, dir);
        let skills = c.parent().expect("dir").to_owned();
        let r = run(
            &s,
            &c,
            &skills,
            "ops/changelog",
            input,
            &demo_policy(),
            &warm_cache(),
        );
        assert_eq!(r.code, 0, "{:?}: {r:?}", case.lang);
        assert!(r.stdout.contains(MARKER), "{:?}: result: {r:?}", case.lang);
        assert!(
            r.stderr.contains(MARKER),
            "{:?}: what it printed: {r:?}",
            case.lang
        );
        assert_no_leak(token.trim(), r.stdout.as_bytes(), "stdout");
        assert_no_leak(token.trim(), r.stderr.as_bytes(), "stderr");
        for (file, bytes) in s.all_file_bytes() {
            assert_no_leak(token.trim(), &bytes, &file.display().to_string());
        }
    }
}

/// A large component's first run compiles it and says so; `agentsec skill precompile`
/// fills the cache ahead of time, and then the first run says nothing.
#[test]
fn first_runs_compile_and_say_so() {
    for case in CASES.iter().filter(|c| c.lang != Lang::Rust) {
        let s = Scratch::new();
        let c = component(case, case.release_notes);
        let dir = c.parent().expect("dir").to_owned();
        let cold = s.path("cold-cache");
        let r = run(&s, &c, &dir, "ops/changelog", INPUT, &demo_policy(), &cold);
        assert_eq!(r.code, 0, "{:?}: {r:?}", case.lang);
        let name = c
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .replace('_', "-");
        assert!(
            r.stderr
                .contains(&format!("agentsec-run: compiling skill {name} (")),
            "{:?}: {r:?}",
            case.lang
        );
        let warm = run(&s, &c, &dir, "ops/changelog", INPUT, &demo_policy(), &cold);
        assert_eq!(warm.code, 0);
        assert!(
            !warm.stderr.contains("compiling skill"),
            "{:?}: {warm:?}",
            case.lang
        );

        let pre = s.path("pre-cache");
        let out = s
            .command(&bin("agentsec"))
            .args(["skill", "precompile", "--compile-timeout", "10m"])
            .arg(&c)
            .env("XDG_CACHE_HOME", &pre)
            .output()
            .expect("agentsec runs");
        assert!(out.status.success(), "{out:?}");
        let first = run(&s, &c, &dir, "ops/changelog", INPUT, &demo_policy(), &pre);
        assert_eq!(first.code, 0);
        assert!(
            !first.stderr.contains("compiling skill"),
            "{:?}: {first:?}",
            case.lang
        );
    }
}

#[test]
fn the_javascript_sdk_tests_pass() {
    let out = std::process::Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(root().join("sdk/js"))
        .output()
        .unwrap_or_else(|e| panic!("npm (tests/run.sh installs sdk/js's packages): {e}"));
    assert!(
        out.status.success(),
        "npm test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_python_sdk_tests_pass() {
    let python = root().join(".venv-py/bin/python");
    let out = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(root().join("sdk/python"))
        .env(
            "COMPONENTIZE_PY",
            root().join(".venv-py/bin/componentize-py"),
        )
        .output()
        .unwrap_or_else(|e| panic!("{} (tests/run.sh installs it): {e}", python.display()));
    assert!(
        out.status.success(),
        "pytest failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
