//! Snapshot of every `--help`: both binaries and every subcommand, as the real binaries
//! print them. The commands are found by walking the `Commands:` lists, so a new
//! subcommand gets a snapshot (and a stale snapshot fails the test).
//!
//! Snapshots live in `tests/testdata/help/BIN[-COMMAND...].txt`; after an intended change,
//! regenerate them with `SNAPSHOTS=overwrite cargo test --workspace --test help` and review
//! the diff.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use agentsec_tests::{Scratch, bin, root};
use snapbox::Data;
use snapbox::cmd::Command;

/// Where the snapshots are.
fn dir() -> PathBuf {
    root().join("tests/testdata/help")
}

/// The subcommand names listed under `Commands:` in a help text (not `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A name starts at column 2; deeper lines continue a wrapped description.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Snapshots `BIN PATH... --help` and those of its subcommands; returns the snapshot names.
fn walk(scratch: &Scratch, program: &str, path: &[String], seen: &mut BTreeSet<String>) {
    let name = std::iter::once(program.to_owned())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join("-");
    let output = std::process::Command::new(bin(program))
        .args(path)
        .arg("--help")
        .env_clear()
        .env("COLUMNS", "100")
        .env("HOME", scratch.path("home"))
        .current_dir(scratch.path("work"))
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    Command::new(bin(program))
        .args(path)
        .arg("--help")
        .env_clear()
        .env("COLUMNS", "100")
        .env("HOME", scratch.path("home"))
        .current_dir(scratch.path("work"))
        .assert()
        .success()
        .stderr_eq("")
        .stdout_eq(Data::read_from(&dir().join(format!("{name}.txt")), None));
    seen.insert(format!("{name}.txt"));
    for sub in subcommands(&text) {
        let mut deeper = path.to_vec();
        deeper.push(sub);
        walk(scratch, program, &deeper, seen);
    }
}

#[test]
fn every_help_is_as_recorded() {
    let scratch = Scratch::new();
    let mut seen = BTreeSet::new();
    for program in ["agentsec-run", "agentsec"] {
        walk(&scratch, program, &[], &mut seen);
    }
    // agentsec policy, audit and secrets, and their subcommands, at least.
    assert!(seen.len() >= 17, "{seen:?}");
    if std::env::var_os("SNAPSHOTS").is_none_or(|v| v != "overwrite") {
        let recorded: BTreeSet<String> = std::fs::read_dir(dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let stale: Vec<&String> = recorded.difference(&seen).collect();
        assert!(stale.is_empty(), "snapshots of no command: {stale:?}");
    }
}

/// A command line that does not parse is reported like every other error: the tool's
/// prefix, `error: `, clap's message (and usage), exit 2.
#[test]
fn usage_errors_start_like_every_error() {
    let scratch = Scratch::new();
    for (program, args, prefix) in [
        (
            "agentsec-run",
            &["--no-such-flag"][..],
            "agentsec-run: error: ",
        ),
        ("agentsec", &["--no-such-flag"][..], "agentsec: error: "),
        ("agentsec", &["nonsense"][..], "agentsec: error: "),
        (
            "agentsec",
            &["policy", "check", "--no-such-flag"][..],
            "agentsec policy: error: ",
        ),
        (
            "agentsec",
            &["audit", "verify", "--format", "xml"][..],
            "agentsec audit: error: ",
        ),
        (
            "agentsec",
            &["secrets", "decrypt"][..],
            "agentsec secrets: error: ",
        ),
    ] {
        let out = scratch.command(&bin(program)).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{program} {args:?}: {stderr}");
        assert!(
            stderr.starts_with(prefix) && stderr.lines().count() > 1,
            "{program} {args:?}: {stderr}"
        );
    }
}
