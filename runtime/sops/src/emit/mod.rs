//! Emitters: a [`PlainNode`] document back to bytes the way sops 3.11's stores print it.

pub(crate) mod flat;
pub(crate) mod json;
pub(crate) mod yaml;

use zeroize::Zeroizing;

use crate::Format;
use crate::plain::PlainNode;

/// Why a tree cannot be printed in a format (sops exit code 4).
#[derive(Debug)]
pub(crate) struct EmitError(pub(crate) String);

/// Prints whole documents (`EmitPlainFile` / `EmitEncryptedFile`): YAML prints every document,
/// the other formats the first one.
pub(crate) fn documents(
    docs: &[PlainNode],
    format: Format,
    yaml_indent: usize,
    json_indent: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>, EmitError> {
    let empty = PlainNode::Map(Vec::new());
    let first = docs.first().unwrap_or(&empty);
    match format {
        Format::Yaml => Ok(yaml::documents(docs, yaml_indent)),
        Format::Json => Ok(json::document(first, json_indent)),
        Format::Dotenv => flat::dotenv(first),
        Format::Ini => flat::ini(first),
        Format::Binary => match first.get("data") {
            Some(PlainNode::Leaf(crate::plain::Value::Str(b), _)) => Ok(b.clone()),
            _ => Err(EmitError(
                "binary output needs a top-level string `data`".to_owned(),
            )),
        },
    }
}

/// Prints one value that is not a mapping (`EmitValue`, used by `--extract`).
pub(crate) fn value(
    node: &PlainNode,
    format: Format,
    yaml_indent: usize,
    json_indent: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>, EmitError> {
    match format {
        Format::Yaml => Ok(yaml::value(node, yaml_indent)),
        Format::Json | Format::Ini => Ok(json::value(node, json_indent)),
        Format::Dotenv => Err(EmitError(
            "the dotenv store only supports emitting strings".to_owned(),
        )),
        Format::Binary => Err(EmitError(
            "Binary files are not structured and extracting a single value is not possible"
                .to_owned(),
        )),
    }
}
