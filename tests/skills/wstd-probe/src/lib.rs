//! `wstd-probe`: sends the requests in its input with [`wstd`]'s HTTP client, which
//! writes the body while it waits for the response, and reports each response. The
//! credential is asked for with the `agentsec-inject` header, as with any client.
//!
//! Input: `{"requests": [{"method": "GET", "url": "http://...", "headers": [["k", "v"]],
//! "body": "...", "body_size": 123, "inject": "a.b"}]}` (`body_size`: a body of that
//! many `x`). Output: `{"responses": [...]}`, one entry per
//! request (`status`, `headers`, `body`, or `error`: the wasi:http error code when the
//! host gave one). Used by tests/tests/inject.rs.

use agentsec_skill::Skill;
use serde_json::{Value, json};
use wstd::http::error::ErrorCode;
use wstd::http::{Body, Client, Request};

/// The header that names the secrets the host injects (`agentsec_skill::http::INJECT_HEADER`).
const INJECT_HEADER: &str = "agentsec-inject";

struct WstdProbe;

/// Sends one request as `r` describes it.
async fn send(r: &Value) -> Result<Value, wstd::http::Error> {
    let mut request = Request::builder()
        .method(r["method"].as_str().unwrap_or("GET"))
        .uri(r["url"].as_str().unwrap_or(""));
    for h in r["headers"].as_array().into_iter().flatten() {
        request = request.header(h[0].as_str().unwrap_or(""), h[1].as_str().unwrap_or(""));
    }
    if let Some(path) = r["inject"].as_str() {
        request = request.header(INJECT_HEADER, path);
    }
    let body = match r["body_size"].as_u64() {
        Some(size) => {
            let size = usize::try_from(size)
                .map_err(|_| wstd::http::Error::msg("body_size is too large"))?;
            Body::from(vec![b'x'; size])
        }
        None => Body::from(r["body"].as_str().unwrap_or("").to_owned()),
    };
    let response = Client::new().send(request.body(body)?).await?;
    let status = response.status().as_u16();
    let headers: Vec<Value> = response
        .headers()
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let mut body = response.into_body();
    let text = String::from_utf8_lossy(body.contents().await?).into_owned();
    Ok(json!({"status": status, "headers": headers, "body": text}))
}

/// The wasi:http error code when the host gave one, else the error's text.
fn describe(e: &wstd::http::Error) -> String {
    match e.downcast_ref::<ErrorCode>() {
        Some(code) => format!("{code:?}"),
        None => format!("{e:#}"),
    }
}

impl Skill for WstdProbe {
    fn run(input: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(&input).map_err(|e| format!("bad input: {e}"))?;
        let requests = input["requests"].as_array().cloned().unwrap_or_default();
        let responses = wstd::runtime::block_on(async {
            let mut out = Vec::new();
            for r in &requests {
                out.push(match send(r).await {
                    Ok(v) => v,
                    Err(e) => json!({"error": describe(&e)}),
                });
            }
            out
        });
        Ok(json!({"responses": responses}).to_string())
    }
}

agentsec_skill::export!(WstdProbe);
