//! A skill's tool description: the `agentsec:tool` custom section.
//!
//! A skill may describe itself as a tool for a model (the Rust SDK's
//! `agentsec_skill::tool!` writes it): a JSON object with a `description`
//! string and an `input_schema` (a JSON Schema object). `agentsec mcp` lists
//! the skill with them. The host keeps the text as found (bounded, UTF-8);
//! the front end that shows it parses it.

use wasmtime::wasmparser::{Parser, Payload};

/// Name of the custom section that describes a skill as a tool.
pub const TOOL_SECTION: &str = "agentsec:tool";

/// Largest accepted `agentsec:tool` section, in bytes.
///
/// Reason: the text comes from an untrusted component and is sent to every
/// client that lists tools; a description and an input schema of a few
/// kilobytes is generous, 64 KiB bounds both the memory and the listing.
pub const MAX_TOOL_SIZE: usize = 64 * 1024;

/// The text of the `agentsec:tool` section of component `bytes`, `None` when
/// there is none. Sections of that name anywhere in the component (top level or
/// an embedded core module) are concatenated, as the linker does.
///
/// # Errors
/// Invalid WebAssembly, a section over [`MAX_TOOL_SIZE`], or text that is not
/// UTF-8 (in words, naming the section).
pub fn declared_tool(bytes: &[u8]) -> Result<Option<String>, String> {
    let mut text: Option<Vec<u8>> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| {
            format!(
                "cannot read the `{TOOL_SECTION}` section: invalid WebAssembly: {}",
                e.message()
            )
        })?;
        if let Payload::CustomSection(section) = payload
            && section.name() == TOOL_SECTION
        {
            let buf = text.get_or_insert_with(Vec::new);
            if buf.len().saturating_add(section.data().len()) > MAX_TOOL_SIZE {
                return Err(format!(
                    "the `{TOOL_SECTION}` section is over {MAX_TOOL_SIZE} bytes"
                ));
            }
            buf.extend_from_slice(section.data());
        }
    }
    text.map(|t| {
        String::from_utf8(t).map_err(|e| {
            format!(
                "the `{TOOL_SECTION}` section is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            )
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        for (name, data) in sections {
            let mut body = Vec::new();
            body.push(u8::try_from(name.len()).unwrap());
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(data);
            m.push(0);
            let mut len = body.len();
            loop {
                let byte = u8::try_from(len & 0x7f).unwrap();
                len >>= 7;
                if len == 0 {
                    m.push(byte);
                    break;
                }
                m.push(byte | 0x80);
            }
            m.extend_from_slice(&body);
        }
        m
    }

    #[test]
    fn reads_absent_present_and_refuses_oversized_or_binary_sections() {
        assert_eq!(declared_tool(&module_with(&[])).unwrap(), None);
        let one = module_with(&[(TOOL_SECTION, br#"{"description":"x"}"#)]);
        assert_eq!(
            declared_tool(&one).unwrap().as_deref(),
            Some(r#"{"description":"x"}"#)
        );
        let big = vec![b'a'; MAX_TOOL_SIZE + 1];
        let err = declared_tool(&module_with(&[(TOOL_SECTION, &big)])).unwrap_err();
        assert!(err.contains("over 65536 bytes"), "{err}");
        let err = declared_tool(&module_with(&[(TOOL_SECTION, &[0xff, 0xfe])])).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
