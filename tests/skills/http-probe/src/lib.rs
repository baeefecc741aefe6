//! `http-probe`: sends the requests in its input and reports each response.
//!
//! Input: `{"requests": [{"method": "GET", "url": "http://...", "headers": [["k", "v"]],
//! "body": "...", "body_size": 123, "inject": "a.b"}], "get": ["a.b"]}` (`body_size`: a
//! body of that many `x`). Output: a JSON object with one entry per request (`status`,
//! `headers`, `body`, or `error`) and per `get` (the secret's length, or the error). Used
//! by tests/tests/egress.rs and tests/tests/inject.rs.

use agentsec_skill::http::Request;
use agentsec_skill::{Skill, get_secret};
use serde_json::{Value, json};

struct HttpProbe;

impl Skill for HttpProbe {
    fn run(input: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(&input).map_err(|e| format!("bad input: {e}"))?;
        let mut responses = Vec::new();
        for r in input["requests"].as_array().cloned().unwrap_or_default() {
            let mut request = Request::new(
                r["method"].as_str().unwrap_or("GET"),
                r["url"].as_str().unwrap_or(""),
            );
            for h in r["headers"].as_array().cloned().unwrap_or_default() {
                request = request.header(h[0].as_str().unwrap_or(""), h[1].as_str().unwrap_or(""));
            }
            if let Some(path) = r["inject"].as_str() {
                request = request.inject(path);
            }
            if let Some(body) = r["body"].as_str() {
                request = request.body(body.as_bytes().to_vec());
            }
            if let Some(size) = r["body_size"].as_u64() {
                let size = usize::try_from(size).map_err(|_| "body_size is too large")?;
                request = request.body(vec![b'x'; size]);
            }
            responses.push(match request.send() {
                Ok(resp) => json!({
                    "status": resp.status,
                    "headers": resp.headers.iter().map(|(k, v)| json!([k, String::from_utf8_lossy(v)])).collect::<Vec<_>>(),
                    "body": resp.text(),
                }),
                Err(e) => json!({"error": e.to_string()}),
            });
        }
        let mut gets = Vec::new();
        for path in input["get"].as_array().cloned().unwrap_or_default() {
            gets.push(match get_secret(path.as_str().unwrap_or("")) {
                Ok(v) => json!({"len": v.len()}),
                Err(e) => json!({"error": String::from(e)}),
            });
        }
        eprintln!("http-probe sent {} requests", responses.len());
        Ok(json!({"responses": responses, "gets": gets}).to_string())
    }
}

agentsec_skill::export!(HttpProbe);
