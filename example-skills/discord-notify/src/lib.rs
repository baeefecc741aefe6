//! `discord-notify`: posts a message to a Discord webhook whose whole URL is the
//! secret, without ever holding it: the request names
//! `communication.discord.releases_webhook`, and the host replaces the request's URL
//! with the secret (the policy's `inject: [{as: url}]`), after checking that the
//! secret's access level allows a POST.
//!
//! Input: `{"content": "v1.4.0 is out", "username": "..."}` (`username` optional).
//! Output: `{"posted": true, "status": 204}`. An `agentsec:skill@0.2.0` component
//! (`agentsec_skill::v0_2`).

use agentsec_skill::v0_2::Skill;
use agentsec_skill::v0_2::http::Request;
use serde_json::{Value, json};

agentsec_skill::tool!(
    description: "Posts a message to the release announcements Discord channel; the host supplies the webhook URL, the skill never holds it.",
    input_schema: r#"{"type":"object","properties":{"content":{"type":"string","maxLength":2000},"username":{"type":"string"}},"required":["content"],"additionalProperties":false}"#,
);

/// The secret whose value is the webhook's URL.
const WEBHOOK: &str = "communication.discord.releases_webhook";

/// Where the request is addressed before the host puts the secret's URL in its place
/// (a reserved name: sent anywhere without the secret, it could not resolve).
const PLACEHOLDER: &str = "https://webhook.invalid/replaced-by-the-host";

/// Discord refuses longer messages.
const MAX_CONTENT_CHARS: usize = 2000;

struct DiscordNotify;

impl Skill for DiscordNotify {
    fn run(input: String) -> Result<String, String> {
        let input: Value =
            serde_json::from_str(&input).map_err(|e| format!("input is not JSON: {e}"))?;
        let content = input
            .get("content")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .ok_or("input needs \"content\": the message to post")?;
        let chars = content.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(format!(
                "\"content\" has {chars} characters; Discord takes at most {MAX_CONTENT_CHARS}"
            ));
        }
        let mut message = json!({"content": content});
        if let Some(username) = input.get("username").and_then(Value::as_str) {
            message["username"] = json!(username);
        }
        let response = Request::post(PLACEHOLDER)
            .inject(WEBHOOK)
            .header("content-type", "application/json")
            .body(message.to_string().into_bytes())
            .send()?;
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "the webhook answered {}: {}",
                response.status,
                response.text()
            ));
        }
        Ok(json!({"posted": true, "status": response.status}).to_string())
    }
}

agentsec_skill::v0_2::export!(DiscordNotify);
