//! `release-notes`: drafts the release notes it would publish to GitHub, and
//! checks that the token it would publish with is usable, without showing it.
//!
//! Input: `{"repo": "acme/api", "version": "v1.4.0", "changes": ["..."]}`.
//! Reads `communication.github.token`. Output: the draft and the token check.

use agentsec_skill::{Skill, get_secret};
use serde_json::{Value, json};

agentsec_skill::tool!(
    description: "Drafts the release notes for a version of a GitHub repository and checks that the publishing token is usable, without showing it.",
    input_schema: r#"{"type":"object","properties":{"repo":{"type":"string","description":"owner/name"},"version":{"type":"string"},"changes":{"type":"array","items":{"type":"string"}}},"additionalProperties":false}"#,
);

struct ReleaseNotes;

impl Skill for ReleaseNotes {
    fn run(input: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(if input.trim().is_empty() {
            "{}"
        } else {
            &input
        })
        .map_err(|e| format!("input is not JSON: {e}"))?;
        let repo = input
            .get("repo")
            .and_then(Value::as_str)
            .unwrap_or("acme/api");
        let version = input
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("v0.1.0");
        let changes: Vec<&str> = input
            .get("changes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();

        let token = get_secret("communication.github.token")?;
        let kind = token_kind(token.expose());

        let mut body = format!("## {version}\n\n");
        if changes.is_empty() {
            body.push_str("- Maintenance release.\n");
        }
        for change in &changes {
            body.push_str(&format!("- {change}\n"));
        }
        Ok(json!({
            "would_publish": {
                "repo": repo,
                "tag": version,
                "title": format!("{repo} {version}"),
                "body": body,
            },
            "token": { "present": !token.is_empty(), "kind": kind },
        })
        .to_string())
    }
}

/// The kind of GitHub token, from its documented prefix.
fn token_kind(token: &str) -> &'static str {
    match token {
        t if t.starts_with("github_pat_") => "fine-grained personal access token",
        t if t.starts_with("ghp_") => "classic personal access token",
        t if t.starts_with("ghs_") => "GitHub App installation token",
        t if t.starts_with("gho_") => "OAuth token",
        "" => "empty",
        _ => "unrecognised format",
    }
}

agentsec_skill::export!(ReleaseNotes);
