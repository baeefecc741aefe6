//! `http-probe-v0-2`: the `agentsec:skill@0.2.0` twin of `http-probe`, built on
//! `agentsec_skill::v0_2`, so its component imports `agentsec:skill/secrets@0.2.0`.
//!
//! Input: `{"get": ["a.b"], "requests": [{"method": "POST", "url": "http://...",
//! "inject": "a.b", "body": "..."}]}`. Output: per `get` the secret's length (or the
//! error), per request `status` and `body` (or `error`). Used by tests/tests/wit_versions.rs.

use agentsec_skill::v0_2::http::Request;
use agentsec_skill::v0_2::{Skill, get_secret, list_secrets};
use serde_json::{Value, json};

struct HttpProbeV02;

impl Skill for HttpProbeV02 {
    fn run(input: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(&input).map_err(|e| format!("bad input: {e}"))?;
        let gets: Vec<Value> = input["get"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|path| match get_secret(path.as_str().unwrap_or("")) {
                Ok(v) => json!({"len": v.len()}),
                Err(e) => json!({"error": String::from(e)}),
            })
            .collect();
        let mut responses = Vec::new();
        for r in input["requests"].as_array().cloned().unwrap_or_default() {
            let mut request = Request::new(
                r["method"].as_str().unwrap_or("GET"),
                r["url"].as_str().unwrap_or(""),
            );
            if let Some(path) = r["inject"].as_str() {
                request = request.inject(path);
            }
            if let Some(body) = r["body"].as_str() {
                request = request.body(body.as_bytes().to_vec());
            }
            responses.push(match request.send() {
                Ok(resp) => json!({"status": resp.status, "body": resp.text()}),
                Err(e) => json!({"error": e.to_string()}),
            });
        }
        let listed = list_secrets("");
        Ok(json!({"gets": gets, "responses": responses, "listed": listed}).to_string())
    }
}

agentsec_skill::v0_2::export!(HttpProbeV02);
