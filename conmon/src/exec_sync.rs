//! Exec-sync: run a process in a running container, wait for it (killing it at the timeout), and
//! print one JSON line with its exit and its output:
//! `{"exit_code":0,"signal":null,"timed_out":false,"stdout":"<base64>","stderr":"<base64>",
//!   "stdout_truncated":false,"stderr_truncated":false}`
//! or `{"error":"…"}` when the runtime could not start it. Output is base64 because it is bytes,
//! not text; past the limit the rest is read and dropped so the process never blocks on a full
//! pipe.
//!
//! The runtime's exec runs detached: the process is reparented to this monitor (a subreaper), so
//! the timeout kill hits the process itself, not a runtime front-end that would only forward it.

use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::child_reaper::{ChildReaper, ExitStatus};
use crate::cli::Options;
use crate::container_io::{ContainerIo, ReadOutcome};
use crate::cri_log::Stream;
use crate::runtime::{ExecProcess, WorkDir, read_pid_file};
use crate::sync_pipe::SyncPipe;

pub fn run(opts: &Options, process: &ExecProcess, timeout: Option<Duration>, limit: usize) -> i32 {
    let mut sync = match SyncPipe::from_fd(opts.sync_fd) {
        Ok(sync) => sync,
        Err(e) => {
            eprintln!("crius-monitor: {e}");
            return 1;
        }
    };
    match exec(opts, process, timeout, limit) {
        Ok(result) => {
            sync.send(&result);
            0
        }
        Err(e) => {
            eprintln!("crius-monitor: {e}");
            sync.error(&e);
            1
        }
    }
}

#[derive(Default)]
struct Captured {
    data: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn push(&mut self, bytes: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.data.len());
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.truncated |= bytes.len() > room;
    }
}

fn exec(
    opts: &Options,
    process: &ExecProcess,
    timeout: Option<Duration>,
    limit: usize,
) -> Result<serde_json::Value, String> {
    let mut reaper = ChildReaper::new().map_err(|e| format!("setting up the child reaper: {e}"))?;
    let (mut io, stdio) = ContainerIo::pipes(false).map_err(|e| format!("creating pipes: {e}"))?;
    let work = WorkDir::create().map_err(|e| format!("creating a work directory: {e}"))?;
    let pid_file = work.join("pid");
    let mut cmd = opts.runtime.exec(&opts.id, process, &pid_file, None);
    cmd.stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    let runtime_pid = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", opts.runtime.path.display()))?
        .id() as i32;
    // Drop our copies of the pipes' write ends, or they would never reach end of file.
    drop(cmd);

    let deadline = timeout.map(|t| Instant::now() + t);
    let mut outputs = [Captured::default(), Captured::default()];
    let mut buf = vec![0u8; 32 * 1024];
    let mut process_pid = None;
    let mut timed_out = false;
    let status = loop {
        let wait = match deadline {
            Some(d) if !timed_out => {
                PollTimeout::try_from(d.saturating_duration_since(Instant::now()))
                    .unwrap_or(PollTimeout::MAX)
            }
            _ => PollTimeout::NONE,
        };
        {
            let mut fds = vec![PollFd::new(reaper.fd(), PollFlags::POLLIN)];
            fds.extend(
                [Stream::Stdout, Stream::Stderr]
                    .into_iter()
                    .filter_map(|s| io.output_fd(s))
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
            let _ = poll(&mut fds, wait);
        }
        drain(&mut io, &mut buf, &mut outputs, limit);
        reaper.reap();
        if process_pid.is_none()
            && let Some(status) = reaper.take(runtime_pid)
        {
            if status != ExitStatus::Exited(0) {
                drain(&mut io, &mut buf, &mut outputs, limit);
                let text = String::from_utf8_lossy(&outputs[1].data);
                let why = if timed_out { "timed out; " } else { "" };
                return Err(format!(
                    "{why}runtime exec failed ({status:?}): {}",
                    text.trim()
                ));
            }
            process_pid =
                Some(read_pid_file(&pid_file).map_err(|e| format!("reading the exec pid: {e}"))?);
        }
        if let Some(status) = process_pid.and_then(|pid| reaper.take(pid)) {
            break status;
        }
        if !timed_out && deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            let _ = kill(
                Pid::from_raw(process_pid.unwrap_or(runtime_pid)),
                Signal::SIGKILL,
            );
        }
    };
    // What the process wrote last is still in the pipes.
    drain(&mut io, &mut buf, &mut outputs, limit);
    let [out, err] = outputs;
    Ok(serde_json::json!({
        "exit_code": status.code(),
        "signal": status.signal(),
        "timed_out": timed_out,
        "stdout": base64(&out.data),
        "stderr": base64(&err.data),
        "stdout_truncated": out.truncated,
        "stderr_truncated": err.truncated,
    }))
}

/// Reads both pipes until they are empty for now (bounded, in case a background process of the
/// exec keeps writing).
fn drain(io: &mut ContainerIo, buf: &mut [u8], outputs: &mut [Captured; 2], limit: usize) {
    for (stream, captured) in [Stream::Stdout, Stream::Stderr]
        .into_iter()
        .zip(outputs.iter_mut())
    {
        for _ in 0..1024 {
            let ReadOutcome::Data(n) = io.read(stream, buf) else {
                break;
            };
            captured.push(&buf[..n], limit);
        }
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn capture_stops_at_the_limit() {
        let mut c = Captured::default();
        c.push(b"abc", 4);
        assert!(!c.truncated);
        c.push(b"def", 4);
        assert_eq!(c.data, b"abcd");
        assert!(c.truncated);
    }
}
