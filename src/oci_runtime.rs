//! Running an OCI runtime with runc's command line (`crius oci`, runc, crun): `start`, `kill`,
//! `delete`, `update` and `state`. `create` and `exec` are run by crius-monitor (see
//! [`crate::monitor`]), which stays the container's parent.
//!
//! crius' own runtime is the same library in the daemon as in `crius oci`: its `start`, `kill`
//! and `delete` are library calls here (on a blocking thread), not an exec of the daemon's
//! binary each — the same code and state directory, a few milliseconds less per call.
//!
//! The runtime's stdout and stderr go to anonymous memory files, not pipes: a hook or a process
//! the runtime leaves behind may inherit them, and waiting for a pipe's end of file would then
//! wait for that process.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::libcontainer::container::ops;
use crate::libcontainer::container::state::ContainerId;

/// Longest a runtime command may take before it is killed. `start` runs poststart hooks, so this
/// is generous.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Most bytes of a runtime's output read back (a `state` document is a few kB).
const OUTPUT_LIMIT: u64 = 4 << 20;
/// Most characters of the runtime's error text kept in an error.
const MESSAGE_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("running OCI runtime {runtime} {subcommand}: {source}")]
    Spawn {
        runtime: String,
        subcommand: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("OCI runtime {runtime} {subcommand} failed ({status}): {message}")]
    Failed {
        runtime: String,
        subcommand: &'static str,
        status: String,
        /// The runtime's error text: the last line of its stderr, `msg` taken out of runc's
        /// `time=… level=error msg="…"` lines.
        message: String,
    },
    #[error("OCI runtime {runtime} {subcommand} timed out after {timeout:?}")]
    Timeout {
        runtime: String,
        subcommand: &'static str,
        timeout: Duration,
    },
    #[error("OCI runtime {runtime} {subcommand}: unreadable output: {message}")]
    BadOutput {
        runtime: String,
        subcommand: &'static str,
        message: String,
    },
    #[error("writing the resources file for OCI runtime {runtime} update: {source}")]
    ResourcesFile {
        runtime: String,
        #[source]
        source: io::Error,
    },
}

impl RuntimeError {
    /// The runtime said it has no container by that id.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::Failed { message, .. } if says_not_found(message))
    }

    /// The runtime said the container is not running (a `kill` of an exited container).
    pub fn is_not_running(&self) -> bool {
        matches!(self, RuntimeError::Failed { message, .. }
            if message.to_ascii_lowercase().contains("not running"))
    }
}

/// What runc ("container does not exist"), `crius oci` ("container ID does not exist") and crun
/// ("container `ID` does not exist" or "… not found") print for an unknown id.
fn says_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("not found") || m.contains("no such container")
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OciRuntime {
    pub name: String,
    pub path: PathBuf,
    /// Arguments before the global flags (`["oci"]` for the crius binary).
    pub args: Vec<String>,
    /// The runtime's `--root` state directory.
    pub root: PathBuf,
}

/// A finished runtime command.
struct Output {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    message: String,
}

impl OciRuntime {
    /// `start ID`: lets a created container run its process.
    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        if self.is_builtin() {
            return self.in_process("start", id, ops::start).await;
        }
        self.run_ok("start", &[id]).await
    }

    /// `kill [--all] ID SIGNAL`.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        if self.is_builtin() {
            return self
                .in_process("kill", id, move |root, id| {
                    let signal = Signal::try_from(signal).map_err(|e| {
                        crate::libcontainer::error::Error::Invalid(format!("signal {signal}: {e}"))
                    })?;
                    ops::kill_container(root, id, signal, all)
                })
                .await;
        }
        let signal = signal.to_string();
        if all {
            self.run_ok("kill", &["--all", id, &signal]).await
        } else {
            self.run_ok("kill", &[id, &signal]).await
        }
    }

    /// `delete [--force] ID`; a container the runtime does not know is already deleted.
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let args: &[&str] = if force { &["--force", id] } else { &[id] };
        let deleted = if self.is_builtin() {
            self.in_process("delete", id, move |root, id| ops::delete(root, id, force))
                .await
        } else {
            self.run_ok("delete", args).await
        };
        match deleted {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// `update --resources FILE ID`, with the resources written to a temporary file.
    pub async fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), RuntimeError> {
        let file =
            TempJson::write(id, resources).map_err(|source| RuntimeError::ResourcesFile {
                runtime: self.name.clone(),
                source,
            })?;
        let path = file.0.to_string_lossy().into_owned();
        self.run_ok("update", &["--resources", &path, id]).await
    }

    /// `state ID`: the runtime-spec state document, or `None` when the runtime does not know `id`.
    pub async fn state(&self, id: &str) -> Result<Option<serde_json::Value>, RuntimeError> {
        let out = self.run("state", &[id]).await?;
        if !out.success {
            let err = self.failed("state", out);
            return if err.is_not_found() {
                Ok(None)
            } else {
                Err(err)
            };
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| RuntimeError::BadOutput {
                runtime: self.name.clone(),
                subcommand: "state",
                message: e.to_string(),
            })
    }

    /// crius' own runtime (`<crius> oci`), whose operations this process can run itself.
    fn is_builtin(&self) -> bool {
        self.args.first().is_some_and(|a| a == "oci")
    }

    /// `op` of the runtime library on container `id`, on a blocking thread; its errors read as
    /// the `crius oci` subcommand's would.
    async fn in_process(
        &self,
        subcommand: &'static str,
        id: &str,
        op: impl FnOnce(&std::path::Path, &ContainerId) -> crate::libcontainer::error::Result<()>
        + Send
        + 'static,
    ) -> Result<(), RuntimeError> {
        let failed = |message: String| RuntimeError::Failed {
            runtime: self.name.clone(),
            subcommand,
            status: "error".to_owned(),
            message,
        };
        let container = ContainerId::parse(id).map_err(|e| failed(e.to_string()))?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || op(&root, &container))
            .await
            .map_err(|e| failed(format!("the {subcommand} task: {e}")))?
            .map_err(|e| failed(e.to_string()))
    }

    /// The command line: `<path> <args…> --root <root> <subcommand> <rest…>`.
    pub fn command_line(&self, subcommand: &str, rest: &[&str]) -> Vec<String> {
        let mut line = vec![self.path.to_string_lossy().into_owned()];
        line.extend(self.args.iter().cloned());
        line.push("--root".into());
        line.push(self.root.to_string_lossy().into_owned());
        line.push(subcommand.into());
        line.extend(rest.iter().map(|s| s.to_string()));
        line
    }

    async fn run_ok(&self, subcommand: &'static str, rest: &[&str]) -> Result<(), RuntimeError> {
        let out = self.run(subcommand, rest).await?;
        if out.success {
            Ok(())
        } else {
            Err(self.failed(subcommand, out))
        }
    }

    fn failed(&self, subcommand: &'static str, out: Output) -> RuntimeError {
        RuntimeError::Failed {
            runtime: self.name.clone(),
            subcommand,
            status: out.status,
            message: out.message,
        }
    }

    async fn run(&self, subcommand: &'static str, rest: &[&str]) -> Result<Output, RuntimeError> {
        let spawn_error = |source| RuntimeError::Spawn {
            runtime: self.name.clone(),
            subcommand,
            source,
        };
        let mut stdout = memfd("oci-stdout").map_err(spawn_error)?;
        let mut stderr = memfd("oci-stderr").map_err(spawn_error)?;
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.args(&self.args)
            .arg("--root")
            .arg(&self.root)
            .arg(subcommand)
            .args(rest.iter().map(OsStr::new))
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().map_err(spawn_error)?)
            .stderr(stderr.try_clone().map_err(spawn_error)?)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let status = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait()).await {
            Ok(status) => status.map_err(spawn_error)?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(RuntimeError::Timeout {
                    runtime: self.name.clone(),
                    subcommand,
                    timeout: COMMAND_TIMEOUT,
                });
            }
        };
        let stdout = read_back(&mut stdout).map_err(spawn_error)?;
        let stderr = read_back(&mut stderr).map_err(spawn_error)?;
        Ok(Output {
            success: status.success(),
            status: status.to_string(),
            stdout,
            message: error_message(&stderr),
        })
    }
}

/// An anonymous in-memory file for a child's output.
fn memfd(name: &str) -> io::Result<File> {
    let name = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `name` is a valid C string; the call only creates a descriptor.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn read_back(file: &mut File) -> io::Result<Vec<u8>> {
    file.rewind()?;
    let mut data = Vec::new();
    file.take(OUTPUT_LIMIT).read_to_end(&mut data)?;
    Ok(data)
}

/// The runtime's error text, whole but bounded: every non-empty line of its stderr, runc's
/// logrus framing (`time="…" level=error msg="…"`) or a JSON log line (`{"msg":…}`) reduced to
/// the message, the failures first (runc prints warnings before the error that matters) and the
/// warnings after them, repeated lines once.
pub fn error_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut failures: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (level, message) = logrus_line(line)
            .or_else(|| json_line(line))
            .unwrap_or_else(|| (None, line.to_string()));
        let list = match level.as_deref() {
            Some("warning" | "warn" | "info" | "debug" | "trace") => &mut warnings,
            _ => &mut failures,
        };
        if !list.contains(&message) {
            list.push(message);
        }
    }
    if failures.is_empty() && warnings.is_empty() {
        return "no error output".into();
    }
    let mut message = failures.join("; ");
    if !warnings.is_empty() {
        let warned = format!("warning: {}", warnings.join("; warning: "));
        message = if message.is_empty() {
            warned
        } else {
            format!("{message} ({warned})")
        };
    }
    match message.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// A logrus text line's level and message.
fn logrus_line(line: &str) -> Option<(Option<String>, String)> {
    let msg = logrus_msg(line)?;
    let level = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("level="))
        .map(|l| l.trim_matches('"').to_ascii_lowercase());
    Some((level, msg))
}

/// A JSON log line's level and message.
fn json_line(line: &str) -> Option<(Option<String>, String)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = value.get("msg")?.as_str()?.to_string();
    let level = value
        .get("level")
        .and_then(|l| l.as_str())
        .map(str::to_ascii_lowercase);
    Some((level, msg))
}

/// `msg="…"` from a logrus text line, with `\"` and `\\` unescaped.
fn logrus_msg(line: &str) -> Option<String> {
    let start = line.find("msg=\"")? + "msg=\"".len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next() {
                Some('n') => out.push(' '),
                Some('t') => out.push(' '),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// A resources document in the temporary directory, removed when dropped.
struct TempJson(PathBuf);

impl TempJson {
    fn write(id: &str, value: &impl serde::Serialize) -> io::Result<TempJson> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "crius-update-{}-{}-{}.json",
            id.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let guard = TempJson(path);
        file.write_all(&serde_json::to_vec(value).map_err(io::Error::other)?)?;
        Ok(guard)
    }
}

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crius() -> OciRuntime {
        OciRuntime {
            name: "crius".into(),
            path: "/usr/bin/crius".into(),
            args: vec!["oci".into()],
            root: "/run/crius-oci".into(),
        }
    }

    #[test]
    fn command_line_puts_args_and_root_before_the_subcommand() {
        assert_eq!(
            crius()
                .command_line("kill", &["--all", "c1", "9"])
                .join(" "),
            "/usr/bin/crius oci --root /run/crius-oci kill --all c1 9"
        );
    }

    #[test]
    fn error_message_keeps_the_whole_text_failures_first() {
        let runc = b"time=\"2026-11-23T20:18:58Z\" level=warning msg=\"x\"\n\
                     time=\"2026-11-23T20:18:58Z\" level=warning msg=\"x\"\n\
                     time=\"2026-11-23T20:18:58Z\" level=error msg=\"container does not exist\"\n";
        assert_eq!(error_message(runc), "container does not exist (warning: x)");
        assert_eq!(
            error_message(b"level=warning msg=\"only a warning\"\n"),
            "warning: only a warning"
        );
        assert_eq!(error_message(b"first\nsecond\n"), "first; second");
        assert_eq!(
            error_message(b"crius oci: container nope does not exist\n\n"),
            "crius oci: container nope does not exist"
        );
        assert_eq!(
            error_message(br#"level=error msg="exec: \"nope\": executable file not found""#),
            "exec: \"nope\": executable file not found"
        );
        assert_eq!(
            error_message(br#"{"level":"error","msg":"boom","time":"t"}"#),
            "boom"
        );
        assert_eq!(error_message(b"  \n"), "no error output");
        let long = "x".repeat(5000);
        assert_eq!(
            error_message(long.as_bytes()).chars().count(),
            MESSAGE_LIMIT + 1
        );
    }

    #[test]
    fn not_found_and_not_running_are_recognised() {
        let failed = |message: &str| RuntimeError::Failed {
            runtime: "runc".into(),
            subcommand: "delete",
            status: "exit status: 1".into(),
            message: message.into(),
        };
        assert!(failed("container does not exist").is_not_found());
        assert!(failed("crius oci: container c1 does not exist").is_not_found());
        assert!(!failed("permission denied").is_not_found());
        assert!(failed("container not running").is_not_running());
        assert!(failed("crius oci: container c1 is not running").is_not_running());
    }

    #[test]
    fn temp_json_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let file = TempJson::write("a/b c", &serde_json::json!({"pids": {"limit": 5}})).unwrap();
        let path = file.0.clone();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("crius-update-abc-")
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"pids":{"limit":5}}"#
        );
        drop(file);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_missing_binary_is_a_spawn_error() {
        let rt = OciRuntime {
            path: "/nonexistent/runtime".into(),
            ..crius()
        };
        assert!(matches!(
            rt.state("c1").await,
            Err(RuntimeError::Spawn {
                subcommand: "state",
                ..
            })
        ));
    }
}
