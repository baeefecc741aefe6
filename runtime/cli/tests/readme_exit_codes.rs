//! The README's exit-code tables are exactly the code's ([`agentsec_cli::exit`]): the same
//! codes, in the same order, with the same meanings. The tables in the code are the single
//! source (`--help` prints them too); change them there, then here in the README.

use agentsec_cli::error::Tool;
use agentsec_cli::exit::ExitCode;

/// The README's `### Exit codes` section, up to the next heading of any level.
fn section(readme: &str) -> &str {
    let start = readme
        .find("\n### Exit codes\n")
        .expect("README has an `### Exit codes` section");
    let body = &readme[start + 1..];
    let body = &body[body.find('\n').expect("heading line") + 1..];
    match body.find("\n#") {
        Some(end) => &body[..end],
        None => body,
    }
}

/// The rows of the table that follows the line `` `TOOL`: `` (or `` `TOOL` ... : ``).
fn table<'a>(section: &'a str, tool: &str) -> Vec<(String, &'a str)> {
    let label = format!("`{tool}`");
    let mut lines = section.lines().skip_while(|l| !l.starts_with(&label));
    assert!(
        lines.next().is_some(),
        "README: no line starting with {label} in `### Exit codes`"
    );
    let mut rows = Vec::new();
    for line in lines
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        if let [code, meaning] = cells.as_slice()
            && code.bytes().all(|b| b.is_ascii_digit())
            && !code.is_empty()
        {
            rows.push(((*code).to_owned(), *meaning));
        }
    }
    rows
}

fn markdown(table: &[ExitCode]) -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for row in table {
        out.push_str(&format!("| {} | {} |\n", row.code, row.meaning));
    }
    out
}

#[test]
fn the_readme_tables_are_the_code_tables() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = section(&readme);
    for tool in [
        Tool::Run,
        Tool::Policy,
        Tool::Audit,
        Tool::Secrets,
        Tool::Skill,
        Tool::Serve,
        Tool::Exec,
        Tool::SshAgent,
        Tool::Ssh,
    ] {
        let code = tool.exit_codes();
        let expected: Vec<(String, &str)> = code
            .iter()
            .map(|r| (r.code.to_string(), r.meaning))
            .collect();
        assert_eq!(
            table(section, tool.prefix()),
            expected,
            "README's table for `{}` differs from the code's; it should read:\n\n{}",
            tool.prefix(),
            markdown(code)
        );
    }
}
