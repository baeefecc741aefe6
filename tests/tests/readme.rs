//! The README's sample session, pasted into a shell as written: every
//! `$ agentsec-run ...` line runs in a copy of the repository's demo layout
//! and prints what the README shows, with the exit code it shows.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use agentsec_tests::{Scratch, bin, root, skill};

/// One command of the sample session and what the README says it prints.
struct Step {
    command: String,
    output: Vec<String>,
    exit: Option<i32>,
}

/// The `text` block under "## A sample session".
fn sample_session(readme: &str) -> Vec<Step> {
    let start = readme
        .find("## A sample session")
        .expect("README has a sample session");
    let block = &readme[start..];
    let block = &block[block.find("```text\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let mut steps: Vec<Step> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_owned(),
                output: Vec::new(),
                exit: None,
            });
        } else if let Some(step) = steps.last_mut() {
            match line
                .strip_prefix("(exit ")
                .and_then(|r| r.strip_suffix(')'))
            {
                Some(code) => step.exit = Some(code.parse().unwrap()),
                None if !line.is_empty() => step.output.push(line.to_owned()),
                None => {}
            }
        }
    }
    steps
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[test]
fn the_sample_session_pastes_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let steps = sample_session(&readme);
    let runs: Vec<&Step> = steps
        .iter()
        .filter(|s| s.command.starts_with("agentsec-run "))
        .collect();
    assert!(runs.len() >= 4, "the sample session runs skills");

    // The repository's demo layout, as demo/run.sh leaves it: agentsec.yaml,
    // the demo secrets, key and policy, and the skills directory.
    let s = Scratch::new();
    let work = s.path("work");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    for file in [
        "agentsec.yaml",
        "policies/demo.yaml",
        "demo/secrets.yaml",
        "demo/age-key.DEMO-ONLY.txt",
    ] {
        copy(&root().join(file), &work.join(file));
    }
    for name in ["db-healthcheck", "release-notes"] {
        let component = skill(name);
        copy(
            &component,
            &work
                .join("demo/skills")
                .join(component.file_name().unwrap()),
        );
    }
    let bin_dir = bin("agentsec-run").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    for step in runs {
        let out = s
            .command(Path::new("sh"))
            .args(["-c", &step.command])
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let printed: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
        assert_eq!(
            out.status.code(),
            step.exit,
            "`{}`: stderr {stderr}",
            step.command
        );
        assert_eq!(printed, step.output, "`{}`", step.command);
    }

    // The audit log the session left verifies, with one entry per request.
    let verify = s
        .command(&bin("agentsec"))
        .args(["audit", "verify", "demo/audit.log"])
        .output()
        .unwrap();
    let shown = steps
        .iter()
        .find(|st| st.command.starts_with("agentsec audit verify"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{stdout}");
    let count = |line: &str| line.split(" entries").next().unwrap().to_owned();
    assert_eq!(count(&stdout), count(&shown.output[0]), "{stdout}");
}
