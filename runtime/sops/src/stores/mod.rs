//! Readers for the sops store formats: each turns file bytes into a [`crate::doc::RawFile`].

pub(crate) mod flat;
pub(crate) mod json;
pub(crate) mod yaml;
mod yaml_comments;
pub(crate) mod yaml_scalar;

use crate::Format;
use crate::doc::{RawEntry, RawFile, RawNode, RawScalar, Scalar};
use crate::error::SopsError;

/// Parses file bytes in `format`. For the binary store, `encrypted` says whether the bytes
/// are the JSON envelope of an encrypted file (`true`) or the raw plaintext (`false`).
pub(crate) fn parse(
    bytes: &[u8],
    format: Format,
    name: &str,
    encrypted: bool,
) -> Result<RawFile, SopsError> {
    match format {
        Format::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|e| SopsError::Syntax {
                file: name.to_owned(),
                line: None,
                message: format!("not UTF-8 (at byte {})", e.valid_up_to()),
            })?;
            yaml::parse(text, name)
        }
        Format::Json => json::parse(bytes, name),
        Format::Binary if encrypted => json::parse(bytes, name),
        Format::Binary => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            Ok(RawFile {
                documents: vec![vec![RawEntry {
                    key: "data".to_owned(),
                    value: RawNode::Scalar(RawScalar {
                        value: Scalar::Str(text.clone()),
                        raw: text,
                        line: None,
                    }),
                }]],
            })
        }
        Format::Dotenv => flat::parse_dotenv(bytes, name),
        Format::Ini => flat::parse_ini(bytes, name),
    }
}
