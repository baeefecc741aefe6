//! `github-release`: creates a release through the GitHub REST API
//! (`POST /repos/{owner}/{repo}/releases`) with a token it never holds: it names
//! `communication.github.token` in the request, and the host injects it as the
//! policy's `inject:` entry says (`Authorization: Bearer {secret}`).
//!
//! Input: `{"repo": "acme/api", "tag": "v1.4.0", "name": "...", "changes": ["..."],
//! "api": "https://api.github.com"}` (`name`, `changes` and `api` are optional).
//! Output: the release GitHub created (`id`, `tag`, `url`). An `agentsec:skill@0.2.0`
//! component (`agentsec_skill::v0_2`).

use agentsec_skill::v0_2::Skill;
use agentsec_skill::v0_2::http::Request;
use serde_json::{Value, json};

agentsec_skill::tool!(
    description: "Creates a GitHub release (tag, title, notes) through the GitHub API; the host adds the token, the skill never holds it.",
    input_schema: r#"{"type":"object","properties":{"repo":{"type":"string","description":"owner/name"},"tag":{"type":"string"},"name":{"type":"string"},"changes":{"type":"array","items":{"type":"string"}},"api":{"type":"string","description":"API base URL, default https://api.github.com"}},"required":["repo","tag"],"additionalProperties":false}"#,
);

/// The secret the host injects (the policy's `inject:` entry says how).
const TOKEN: &str = "communication.github.token";

/// Where GitHub's REST API is, unless the input names a stand-in.
const DEFAULT_API: &str = "https://api.github.com";

struct GithubRelease;

/// `owner/name` as GitHub spells repositories: one `/`, each part non-empty
/// letters, digits, `-`, `_`, `.` (and not `.`/`..`), so it cannot change the URL's path.
fn repo(input: &Value) -> Result<&str, String> {
    let repo = input
        .get("repo")
        .and_then(Value::as_str)
        .ok_or("input needs \"repo\": \"owner/name\"")?;
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(repo),
        _ => Err(format!(
            "\"repo\" must be owner/name (letters, digits, - _ .), not {repo:?}"
        )),
    }
}

impl Skill for GithubRelease {
    fn run(input: String) -> Result<String, String> {
        let input: Value =
            serde_json::from_str(&input).map_err(|e| format!("input is not JSON: {e}"))?;
        let repo = repo(&input)?;
        let tag = input
            .get("tag")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or("input needs \"tag\", e.g. \"v1.4.0\"")?;
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{repo} {tag}"), str::to_owned);
        let mut notes = format!("## {tag}\n\n");
        for change in input
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let change = change.as_str().ok_or("\"changes\" must be strings")?;
            notes.push_str(&format!("- {change}\n"));
        }
        let api = input
            .get("api")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_API)
            .trim_end_matches('/');
        let body = json!({"tag_name": tag, "name": name, "body": notes, "draft": false});
        let response = Request::post(&format!("{api}/repos/{repo}/releases"))
            .inject(TOKEN)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "agentsec-github-release")
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .send()?;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if response.status != 201 {
            let message = answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(format!(
                "GitHub answered {} to creating release {tag} of {repo}: {message}",
                response.status
            ));
        }
        Ok(json!({
            "created": {
                "repo": repo,
                "id": answer.get("id"),
                "tag": answer.get("tag_name"),
                "url": answer.get("html_url"),
            }
        })
        .to_string())
    }
}

agentsec_skill::v0_2::export!(GithubRelease);
