//! `db-healthcheck`: checks that the PostgreSQL credentials for an environment
//! are present and well formed, without ever revealing them.
//!
//! Input: `{"env": "production"}` (default `production`).
//! Reads `databases.postgres.<env>.{host,port,username,password}` and reports,
//! per field, `ok`, `missing`, `denied` or what is wrong with its shape.
//! No value leaves the skill.

use agentsec_skill::{Error, Skill, get_secret};
use serde_json::{Map, Value, json};

// The environment comes from the input, so each need has a `*` segment: the
// run may start when the policy grants at least one environment's field. The
// port is not declared: it is optional (a missing port means 5432).
agentsec_skill::needs!(
    "databases.postgres.*.host",
    "databases.postgres.*.username",
    "databases.postgres.*.password",
);

// What `agentsec mcp` shows the model.
agentsec_skill::tool!(
    description: "Checks that the PostgreSQL credentials of an environment are present and well formed, without revealing them. Reports per field: ok, missing, denied, or what is wrong with its shape.",
    input_schema: r#"{"type":"object","properties":{"env":{"type":"string","description":"The environment, e.g. production or staging (default production)."}},"additionalProperties":false}"#,
);

struct DbHealthcheck;

/// The smallest password length we call healthy.
const MIN_PASSWORD_LEN: usize = 12;

impl Skill for DbHealthcheck {
    fn run(input: String) -> Result<String, String> {
        let input: Value = if input.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&input).map_err(|e| format!("input is not JSON: {e}"))?
        };
        let env = input
            .get("env")
            .and_then(Value::as_str)
            .unwrap_or("production");
        if env.is_empty()
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "`env` must be a simple name like `production`, got {env:?}"
            ));
        }
        let base = format!("databases.postgres.{env}");

        let mut report = Map::new();
        let mut healthy = true;
        let mut denied = 0;
        let mut denial = None;
        for field in ["host", "port", "username", "password"] {
            let status = match get_secret(&format!("{base}.{field}")) {
                Ok(value) => check(field, value.expose()),
                Err(Error::Denied(why)) => {
                    denied += 1;
                    denial.get_or_insert(why);
                    "denied".to_owned()
                }
                Err(Error::NotFound(_)) if field == "port" => "ok (default 5432)".to_owned(),
                Err(Error::NotFound(_)) => "missing".to_owned(),
                Err(e) => format!("error: {}", e.kind()),
            };
            healthy &= status.starts_with("ok");
            report.insert(field.to_owned(), Value::String(status));
        }
        if let (4, Some(why)) = (denied, denial) {
            return Err(format!("denied: {why}"));
        }
        Ok(json!({ "env": env, "healthy": healthy, "checks": report }).to_string())
    }
}

/// Facts about a value's shape; never the value.
fn check(field: &str, value: &str) -> String {
    match field {
        "host" if value.is_empty() => "empty".into(),
        "host" if value.len() > 253 => "too long for a host name".into(),
        "host"
            if value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) =>
        {
            "ok".into()
        }
        "host" => "not a valid host name".into(),
        "port" => match value.parse::<u16>() {
            Ok(0) | Err(_) => "not a valid port".into(),
            Ok(_) => "ok".into(),
        },
        "username" if value.is_empty() => "empty".into(),
        "username" => "ok".into(),
        "password" if value.len() < MIN_PASSWORD_LEN => {
            format!("weak: shorter than {MIN_PASSWORD_LEN} characters")
        }
        "password" => {
            let classes = [
                value.chars().any(|c| c.is_ascii_lowercase()),
                value.chars().any(|c| c.is_ascii_uppercase()),
                value.chars().any(|c| c.is_ascii_digit()),
                value.chars().any(|c| !c.is_ascii_alphanumeric()),
            ];
            let n = classes.iter().filter(|c| **c).count();
            if n >= 3 {
                "ok".into()
            } else {
                format!("weak: {n} of 4 character classes")
            }
        }
        _ => "ok".into(),
    }
}

agentsec_skill::export!(DbHealthcheck);
