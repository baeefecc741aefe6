//! The `sandbox:` mapping of a policy file: each field parsed and checked,
//! kept with where it was set so that two files setting one field conflict.

use super::FileReader;
use super::tree::{Node, NodeKind};
use crate::error::{InvalidPolicy, Location, PolicyError, snippet};
use crate::sandbox::{Sandbox, ShapeSetting, parse_duration, parse_size};

/// One `sandbox:` setting.
pub(crate) enum SandboxField {
    Timeout(std::time::Duration),
    MaxMemory(u64),
    MaxOutput(u64),
    MaxSecretCalls(u32),
    OnCredentialShape(ShapeSetting),
    MaxTableElements(u64),
    MaxInstances(u64),
    MaxComponentSize(u64),
    MaxPathLen(u64),
    MaxInput(u64),
    MaxFunctions(u64),
    MaxCodeSize(u64),
    MaxRedactionBytes(u64),
    CompileTimeout(std::time::Duration),
    MaxAgentRuns(u64),
    MaxAgentRate(u64),
}

impl SandboxField {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SandboxField::Timeout(_) => "timeout",
            SandboxField::MaxMemory(_) => "max_memory",
            SandboxField::MaxOutput(_) => "max_output",
            SandboxField::MaxSecretCalls(_) => "max_secret_calls",
            SandboxField::OnCredentialShape(_) => "on_credential_shape",
            SandboxField::MaxTableElements(_) => "max_table_elements",
            SandboxField::MaxInstances(_) => "max_instances",
            SandboxField::MaxComponentSize(_) => "max_component_size",
            SandboxField::MaxPathLen(_) => "max_path_len",
            SandboxField::MaxInput(_) => "max_input",
            SandboxField::MaxFunctions(_) => "max_functions",
            SandboxField::MaxCodeSize(_) => "max_code_size",
            SandboxField::MaxRedactionBytes(_) => "max_redaction_bytes",
            SandboxField::CompileTimeout(_) => "compile_timeout",
            SandboxField::MaxAgentRuns(_) => "max_agent_runs",
            SandboxField::MaxAgentRate(_) => "max_agent_rate",
        }
    }

    /// Sets this field in `sandbox`.
    pub(crate) fn apply_to(self, sandbox: &mut Sandbox) {
        match self {
            SandboxField::Timeout(v) => sandbox.timeout = Some(v),
            SandboxField::MaxMemory(v) => sandbox.max_memory = Some(v),
            SandboxField::MaxOutput(v) => sandbox.max_output = Some(v),
            SandboxField::MaxSecretCalls(v) => sandbox.max_secret_calls = Some(v),
            SandboxField::OnCredentialShape(v) => sandbox.on_credential_shape = Some(v),
            SandboxField::MaxTableElements(v) => sandbox.max_table_elements = Some(v),
            SandboxField::MaxInstances(v) => sandbox.max_instances = Some(v),
            SandboxField::MaxComponentSize(v) => sandbox.max_component_size = Some(v),
            SandboxField::MaxPathLen(v) => sandbox.max_path_len = Some(v),
            SandboxField::MaxInput(v) => sandbox.max_input = Some(v),
            SandboxField::MaxFunctions(v) => sandbox.max_functions = Some(v),
            SandboxField::MaxCodeSize(v) => sandbox.max_code_size = Some(v),
            SandboxField::MaxRedactionBytes(v) => sandbox.max_redaction_bytes = Some(v),
            SandboxField::CompileTimeout(v) => sandbox.compile_timeout = Some(v),
            SandboxField::MaxAgentRuns(v) => sandbox.max_agent_runs = Some(v),
            SandboxField::MaxAgentRate(v) => sandbox.max_agent_rate = Some(v),
        }
    }
}

impl FileReader<'_> {
    /// The fields of a `sandbox:` mapping, each with where it was set.
    pub(super) fn sandbox(
        &self,
        node: &Node,
    ) -> Result<Vec<(SandboxField, Location)>, PolicyError> {
        let mut fields = Vec::new();
        let hint = "; e.g. `timeout: 5s`, `max_memory: 64MiB`, `on_credential_shape: fail`";
        for (key, k, v) in self.mapping(node, "sandbox", hint)? {
            let field = self.sandbox_field(key, k, v)?;
            fields.push((field, self.at(k.line, k.column)));
        }
        Ok(fields)
    }

    /// One entry of `sandbox:`, `key` (node `k`) with value `v`.
    fn sandbox_field(&self, key: &str, k: &Node, v: &Node) -> Result<SandboxField, PolicyError> {
        Ok(match key {
            "timeout" => SandboxField::Timeout(self.duration_setting(v, "timeout")?),
            "max_memory" => SandboxField::MaxMemory(self.size_setting(v, "max_memory")?),
            "max_output" => SandboxField::MaxOutput(self.size_setting(v, "max_output")?),
            "max_secret_calls" => SandboxField::MaxSecretCalls(
                self.setting_text(v, "max_secret_calls")?
                    .parse()
                    .map_err(|_| {
                        self.bad_setting(
                            v,
                            "max_secret_calls",
                            "a whole number of calls, e.g. 100".to_owned(),
                        )
                    })?,
            ),
            "max_component_size" => {
                SandboxField::MaxComponentSize(self.size_setting(v, "max_component_size")?)
            }
            "compile_timeout" => {
                SandboxField::CompileTimeout(self.duration_setting(v, "compile_timeout")?)
            }
            "max_input" => SandboxField::MaxInput(self.size_setting(v, "max_input")?),
            "max_code_size" => SandboxField::MaxCodeSize(self.size_setting(v, "max_code_size")?),
            "max_redaction_bytes" => {
                SandboxField::MaxRedactionBytes(self.size_setting(v, "max_redaction_bytes")?)
            }
            "max_table_elements" => {
                SandboxField::MaxTableElements(self.count_setting(v, "max_table_elements")?)
            }
            "max_instances" => SandboxField::MaxInstances(self.count_setting(v, "max_instances")?),
            "max_functions" => SandboxField::MaxFunctions(self.count_setting(v, "max_functions")?),
            "max_path_len" => SandboxField::MaxPathLen(self.count_setting(v, "max_path_len")?),
            "max_agent_runs" => {
                SandboxField::MaxAgentRuns(self.count_setting(v, "max_agent_runs")?)
            }
            "max_agent_rate" => {
                SandboxField::MaxAgentRate(self.count_setting(v, "max_agent_rate")?)
            }
            "on_credential_shape" => SandboxField::OnCredentialShape(
                match self.setting_text(v, "on_credential_shape")? {
                    "redact" => ShapeSetting::Redact,
                    "fail" => ShapeSetting::Fail,
                    _ => {
                        return Err(self.bad_setting(
                            v,
                            "on_credential_shape",
                            "use `redact` or `fail`".to_owned(),
                        ));
                    }
                },
            ),
            _ => {
                return Err(self.err(
                    k,
                    InvalidPolicy::UnknownKey {
                        key: snippet(key),
                        context: "sandbox",
                        expected: "one of timeout, max_memory, max_output, max_secret_calls, on_credential_shape, max_table_elements, max_instances, max_component_size, max_path_len, max_input, max_functions, max_code_size, max_redaction_bytes, compile_timeout, max_agent_runs, max_agent_rate",
                    },
                ));
            }
        })
    }

    /// The text of a setting's value (any scalar; a list or mapping is
    /// refused).
    fn setting_text<'n>(&self, v: &'n Node, field: &'static str) -> Result<&'n str, PolicyError> {
        let hint = "; e.g. `timeout: 5s` or `max_memory: 64MiB`";
        match &v.kind {
            NodeKind::Scalar { value, .. } => Ok(value.as_str()),
            _ => Err(self.wrong_type(v, field, "a value", hint)),
        }
    }

    fn bad_setting(&self, v: &Node, field: &'static str, reason: String) -> PolicyError {
        self.err(v, InvalidPolicy::BadSetting { field, reason })
    }

    /// A duration setting (`5s`, `1m30s`).
    fn duration_setting(
        &self,
        v: &Node,
        field: &'static str,
    ) -> Result<std::time::Duration, PolicyError> {
        parse_duration(self.setting_text(v, field)?).map_err(|e| self.bad_setting(v, field, e))
    }

    /// A size setting in bytes (`64MiB`).
    fn size_setting(&self, v: &Node, field: &'static str) -> Result<u64, PolicyError> {
        parse_size(self.setting_text(v, field)?).map_err(|e| self.bad_setting(v, field, e))
    }

    /// A plain count (`10000`).
    fn count_setting(&self, v: &Node, field: &'static str) -> Result<u64, PolicyError> {
        self.setting_text(v, field)?
            .parse()
            .map_err(|_| self.bad_setting(v, field, "a whole number, e.g. 100".to_owned()))
    }
}
