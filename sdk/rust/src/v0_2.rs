//! Skills of the `agentsec:skill@0.2.0` contract, world `skill-with-http`
//! (`wit/0.2.0/`): the same secrets API and `run` export as the crate root (0.1.0),
//! and outgoing HTTP ([`http`]) as a declared part of the world.
//!
//! A skill opts in by using this module's [`export!`], [`get_secret`] and
//! [`list_secrets`] instead of the crate root's; the component then imports
//! `agentsec:skill/secrets@0.2.0` (and `wasi:http/outgoing-handler@0.2.12` if it sends
//! a request). The host serves both versions. As with 0.1.0 plus HTTP, wasi:http is
//! there only for runs the policy grants egress: without it the host refuses to start
//! a component that imports it, naming the `egress:` entry to add.
//!
//! ```no_run
//! use agentsec_skill::v0_2::{Skill, get_secret, http};
//!
//! struct Release;
//!
//! impl Skill for Release {
//!     fn run(_input: String) -> Result<String, String> {
//!         let region = get_secret("deploy.region")?;
//!         let response = http::Request::post("https://api.github.com/repos/o/r/releases")
//!             .inject("communication.github.token")
//!             .body(br#"{"tag_name":"v1.2.0"}"#.to_vec())
//!             .send()?;
//!         Ok(format!("{} ({} bytes of region)", response.status, region.len()))
//!     }
//! }
//!
//! agentsec_skill::v0_2::export!(Release);
//! # fn main() {}
//! ```

use zeroize::Zeroizing;

pub use crate::http;
pub use crate::{Error, Secret};

/// The bindings generated from `wit/0.2.0/` (world `agentsec:skill/skill-with-http@0.2.0`).
/// Its wasi:http and wasi:io types are the [`wasip2`] crate's, the ones [`http`] uses.
#[allow(missing_docs, reason = "generated code")]
#[allow(unsafe_code, reason = "generated ABI glue from wit-bindgen")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.2.0",
        world: "agentsec:skill/skill-with-http@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "agentsec_skill::v0_2::bindings",
        runtime_path: "agentsec_skill::__wit_bindgen::rt",
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
}

/// Registers the type implementing [`Skill`] as the component's `run` export (of
/// `agentsec:skill@0.2.0`): `agentsec_skill::v0_2::export!(MySkill);` once, at the
/// crate root. Use it instead of the crate root's `export!`, not beside it.
pub use bindings::export;

/// What a skill implements: `run(input) -> Result<output, error>`, as at the crate root.
pub use bindings::Guest as Skill;

impl From<bindings::agentsec::skill::secrets::Error> for Error {
    fn from(e: bindings::agentsec::skill::secrets::Error) -> Self {
        use bindings::agentsec::skill::secrets::Error as Wit;
        match e {
            Wit::Denied(m) => Error::Denied(m),
            Wit::NotFound(m) => Error::NotFound(m),
            Wit::InvalidPath(m) => Error::InvalidPath(m),
            Wit::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

/// Reads the secret at `path` through `agentsec:skill/secrets@0.2.0` (see
/// [`crate::get_secret`]). A policy denial is an ordinary `Err` the skill can handle.
pub fn get_secret(path: &str) -> Result<Secret, Error> {
    bindings::agentsec::skill::secrets::get_secret(path)
        .map(|v| Secret(Zeroizing::new(v)))
        .map_err(Error::from)
}

/// The secret paths under `prefix` this skill may read (names, never values), through
/// `agentsec:skill/secrets@0.2.0` (see [`crate::list_secrets`]).
pub fn list_secrets(prefix: &str) -> Vec<String> {
    bindings::agentsec::skill::secrets::list_secrets(prefix)
}
