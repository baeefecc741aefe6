//! `needy`: declares the secrets it needs and reads them.
//!
//! Declares `databases.postgres.production.password` and
//! `communication.github.token`, so `agentsec-run` refuses to start it (exit 3)
//! for an agent the policy does not grant both; otherwise it reads both and
//! reports their lengths (never the values).
#![forbid(unsafe_code)]

use agentsec_skill::{Skill, get_secret};

agentsec_skill::needs!(
    "databases.postgres.production.password",
    "communication.github.token",
);

struct Needy;

impl Skill for Needy {
    fn run(_input: String) -> Result<String, String> {
        let password = get_secret("databases.postgres.production.password")?;
        let token = get_secret("communication.github.token")?;
        Ok(format!(
            "{{\"password_len\":{},\"token_len\":{}}}",
            password.len(),
            token.len()
        ))
    }
}

agentsec_skill::export!(Needy);
