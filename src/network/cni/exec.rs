//! Running one CNI plugin binary per the CNI spec: `CNI_*` environment, configuration on
//! stdin, result or error object on stdout.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use serde_json::Value;

use super::CniError;

/// The CNI operations this runtime performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
        }
    }
}

/// The per-invocation environment.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    pub container_id: &'a str,
    /// Empty for a DEL whose namespace is already gone.
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub args: &'a [(String, String)],
}

/// A plugin's error: the spec's error object from its stdout, or, when it printed none, the
/// exit status and whatever it printed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PluginError {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub details: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

/// Find a plugin binary named `plugin_type` in the first directory having it.
pub fn find_plugin(dirs: &[PathBuf], plugin_type: &str) -> Result<PathBuf, CniError> {
    dirs.iter()
        .map(|d| d.join(plugin_type))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::PluginNotFound {
            plugin: plugin_type.to_string(),
            dirs: join_paths(dirs),
        })
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":")
}

/// Run `plugin_type` for `command` with `conf` on stdin. Returns the parsed stdout JSON, or
/// `None` when the plugin printed nothing (normal for DEL).
pub fn run_plugin(
    dirs: &[PathBuf],
    plugin_type: &str,
    command: Command,
    env: &Env,
    conf: &Value,
) -> Result<Option<Value>, CniError> {
    let _timer = crate::telemetry::cni_plugin_timer(plugin_type, command.as_str());
    let _phase = crate::phases::timer("cni", plugin_type);
    let binary = find_plugin(dirs, plugin_type)?;
    let exec_err = |source| CniError::Exec {
        plugin: plugin_type.to_string(),
        command: command.as_str(),
        source,
    };
    let stdin_bytes = serde_json::to_vec(conf)
        .map_err(|e| exec_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let cni_args = env
        .args
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    tracing::debug!(
        plugin = plugin_type,
        command = command.as_str(),
        container_id = env.container_id,
        "running CNI plugin"
    );
    let mut attempt = 0;
    let mut child = loop {
        let spawned = std::process::Command::new(&binary)
            .env("CNI_COMMAND", command.as_str())
            .env("CNI_CONTAINERID", env.container_id)
            .env("CNI_NETNS", env.netns)
            .env("CNI_IFNAME", env.ifname)
            .env("CNI_PATH", join_paths(dirs))
            .env("CNI_ARGS", &cni_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            // A plugin binary being installed (or written by a forking thread) is briefly busy.
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.map_err(exec_err)?,
        }
    };
    // Plugins read all of stdin before writing, so writing first cannot deadlock.
    let write_result = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&stdin_bytes))
        .unwrap_or(Ok(()));
    let output = child.wait_with_output().map_err(exec_err)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        tracing::debug!(
            plugin = plugin_type,
            command = command.as_str(),
            "stderr: {}",
            stderr.trim()
        );
    }
    let stdout = &output.stdout;
    if !output.status.success() {
        let error = serde_json::from_slice::<PluginError>(stdout)
            .ok()
            .filter(|e| e.code != 0 || !e.msg.is_empty())
            .unwrap_or_else(|| PluginError {
                code: 0,
                msg: format!("{} with no error object", output.status),
                details: [String::from_utf8_lossy(stdout).trim(), stderr.trim()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        return Err(CniError::Plugin {
            plugin: plugin_type.to_string(),
            command: command.as_str(),
            error,
        });
    }
    // A broken stdin pipe with a successful exit means the plugin did not need it.
    if let Err(e) = write_result {
        tracing::debug!(plugin = plugin_type, "writing CNI plugin stdin: {e}");
    }
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(stdout).map_err(|e| CniError::InvalidResult {
        plugin: plugin_type.to_string(),
        command: command.as_str(),
        msg: format!("{e}: {}", String::from_utf8_lossy(stdout).trim()),
    })?;
    // An error object on stdout with a zero exit is still an error.
    if let Some(code) = value.get("code").and_then(Value::as_u64)
        && code != 0
        && value.get("msg").is_some()
        && let Ok(error) = serde_json::from_value::<PluginError>(value.clone())
    {
        return Err(CniError::Plugin {
            plugin: plugin_type.to_string(),
            command: command.as_str(),
            error,
        });
    }
    Ok(Some(value))
}
