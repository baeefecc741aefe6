//! `needy`: declares the secrets it needs and reads them.
//!
//! Declares `databases.postgres.production.password`,
//! `communication.github.token` and the pattern `databases.postgres.*.password`
//! (one environment, chosen at run time), so `agentsec-run` refuses to start
//! it (exit 3) for an agent the policy does not grant all three; otherwise it
//! reads the first two and reports their lengths (never the values).
#![forbid(unsafe_code)]

use agentsec_skill::{Skill, get_secret};

agentsec_skill::needs!(
    "databases.postgres.production.password",
    "communication.github.token",
    "databases.postgres.*.password",
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
