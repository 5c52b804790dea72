//! Exec-sync: run a process in a running container, wait for it (killing it at the timeout), and
//! print one line with its exit and its output (`ExecSyncReply`, defined in
//! `crius_monitor_proto::exec_sync`), or the error when the runtime could not start it. Past the
//! limit the rest of the output is read and dropped so the process never blocks on a full pipe.
//!
//! The runtime's exec runs detached: the process is reparented to this monitor (a subreaper), so
//! the timeout kill hits the process itself, not a runtime front-end that would only forward it.

use std::time::{Duration, Instant};

use crius_monitor_proto::{ExecSyncOutput, ExecSyncReply, LaunchOptions};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::child_reaper::{ChildReaper, ExitStatus};
use crate::container_io::{ContainerIo, ReadOutcome};
use crate::cri_log::Stream;
use crate::runtime::{ExecProcess, RuntimeCommands, WorkDir, read_pid_file};
use crate::sync_pipe::SyncPipe;

pub fn run(
    opts: &LaunchOptions,
    process: &ExecProcess,
    timeout: Option<Duration>,
    limit: usize,
) -> i32 {
    let mut sync = match SyncPipe::from_fd(opts.sync_fd) {
        Ok(sync) => sync,
        Err(e) => {
            eprintln!("crius-monitor: {e}");
            return 1;
        }
    };
    match exec(opts, process, timeout, limit) {
        Ok(output) => {
            sync.send(&ExecSyncReply::Done(output));
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
    opts: &LaunchOptions,
    process: &ExecProcess,
    timeout: Option<Duration>,
    limit: usize,
) -> Result<ExecSyncOutput, String> {
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
    Ok(ExecSyncOutput {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout: out.data,
        stderr: err.data,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
