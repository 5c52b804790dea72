//! The container's stdio as the monitor holds it: either three pipes (the runtime's `create`
//! inherits their other ends and passes them on to the container) or a pty master received from
//! the runtime. Our ends are non-blocking so one stuck reader or writer never stalls the loop.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Stdio;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;

use crate::cri_log::Stream;
use crate::terminal;

/// Input accepted from attach clients but not yet taken by the container; past this, clients are
/// not read until it drains.
pub const MAX_STDIN_BACKLOG: usize = 1 << 20;

/// The runtime's stdio for `create`/`exec`.
pub struct RuntimeStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

pub enum ReadOutcome {
    Data(usize),
    Empty,
    Eof,
}

pub struct ContainerIo {
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    stdin_pending: Vec<u8>,
    stdin_closing: bool,
    /// With a terminal: the master (also in `stdout`, and `stdin` when stdin is on).
    master: Option<OwnedFd>,
    wants_stdin: bool,
    /// With a terminal, the runtime's own stderr (it does not reach the container).
    runtime_errors: Option<File>,
}

impl ContainerIo {
    /// Pipes for stdout and stderr, and stdin when asked for (else the container reads
    /// /dev/null).
    pub fn pipes(with_stdin: bool) -> io::Result<(Self, RuntimeStdio)> {
        let (stdin, runtime_stdin) = if with_stdin {
            let (read, write) = pipe()?;
            (Some(nonblocking(write)?), Stdio::from(read))
        } else {
            (None, Stdio::null())
        };
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let io = ContainerIo {
            stdout: Some(nonblocking(out_read)?),
            stderr: Some(nonblocking(err_read)?),
            stdin,
            stdin_pending: Vec::new(),
            stdin_closing: false,
            master: None,
            wants_stdin: with_stdin,
            runtime_errors: None,
        };
        let runtime = RuntimeStdio {
            stdin: runtime_stdin,
            stdout: Stdio::from(out_write),
            stderr: Stdio::from(err_write),
        };
        Ok((io, runtime))
    }

    /// For a container with a terminal: nothing to read until [`ContainerIo::set_master`]; the
    /// runtime's stderr goes to a pipe of its own so its errors can be reported.
    pub fn terminal(with_stdin: bool) -> io::Result<(Self, RuntimeStdio)> {
        let (err_read, err_write) = pipe()?;
        let io = ContainerIo {
            stdout: None,
            stderr: None,
            stdin: None,
            stdin_pending: Vec::new(),
            stdin_closing: false,
            master: None,
            wants_stdin: with_stdin,
            runtime_errors: Some(nonblocking(err_read)?),
        };
        let runtime = RuntimeStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::from(err_write),
        };
        Ok((io, runtime))
    }

    pub fn set_master(&mut self, master: OwnedFd) -> io::Result<()> {
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        self.stdout = Some(File::from(master.try_clone()?));
        if self.wants_stdin {
            self.stdin = Some(File::from(master.try_clone()?));
        }
        self.master = Some(master);
        Ok(())
    }

    /// What the runtime wrote to stderr, for the error report when it failed. Without a terminal
    /// that is the container's stderr pipe: nothing else has written to it yet.
    pub fn runtime_error_text(&mut self) -> String {
        let source = match self.runtime_errors.as_mut() {
            Some(file) => Some(file),
            None => self.stderr.as_mut(),
        };
        let mut text = Vec::new();
        if let Some(file) = source {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = file.read(&mut chunk) {
                text.extend_from_slice(&chunk[..n]);
                if text.len() > 64 * 1024 {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&text).trim().to_string()
    }

    pub fn output_fd(&self, stream: Stream) -> Option<BorrowedFd<'_>> {
        self.output(stream).as_ref().map(|f| f.as_fd())
    }

    fn output(&self, stream: Stream) -> &Option<File> {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    /// One non-blocking read. End of file (or EIO, what a pty master returns once the container
    /// side is closed) drops that output.
    pub fn read(&mut self, stream: Stream, buf: &mut [u8]) -> ReadOutcome {
        let slot = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(file) = slot.as_mut() else {
            return ReadOutcome::Eof;
        };
        match file.read(buf) {
            Ok(0) => {
                *slot = None;
                ReadOutcome::Eof
            }
            Ok(n) => ReadOutcome::Data(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                ReadOutcome::Empty
            }
            Err(_) => {
                *slot = None;
                ReadOutcome::Eof
            }
        }
    }

    #[cfg(test)]
    pub fn has_stdin(&self) -> bool {
        self.stdin.is_some()
    }

    pub fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdin.as_ref().map(|f| f.as_fd())
    }

    /// Whether more input may be queued (else stop reading clients until the container reads).
    pub fn stdin_accepts(&self) -> bool {
        self.stdin_pending.len() < MAX_STDIN_BACKLOG
    }

    pub fn stdin_blocked(&self) -> bool {
        self.stdin.is_some() && !self.stdin_pending.is_empty()
    }

    pub fn queue_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() && !self.stdin_closing {
            self.stdin_pending.extend_from_slice(data);
            self.flush_stdin();
        }
    }

    /// Writes queued input as far as the container takes it; closes stdin after a requested
    /// close once everything before it is written.
    pub fn flush_stdin(&mut self) {
        let Some(file) = self.stdin.as_mut() else {
            self.stdin_pending = Vec::new();
            return;
        };
        while !self.stdin_pending.is_empty() {
            match file.write(&self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The container closed its end: nobody will read more input.
                    self.stdin = None;
                    self.stdin_pending = Vec::new();
                    return;
                }
            }
        }
        if self.stdin_closing {
            self.stdin = None;
        }
    }

    /// Closes the container's stdin (so it reads end of file) after the queued input. A terminal
    /// has no separate input to close; the request is ignored there.
    pub fn close_stdin(&mut self) {
        if self.master.is_none() {
            self.stdin_closing = true;
            self.flush_stdin();
        }
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        let master = self
            .master
            .as_ref()
            .ok_or("the container has no terminal")?;
        terminal::resize(master.as_fd(), rows, cols)
            .map_err(|e| format!("resizing the terminal: {e}"))
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

/// Sets O_NONBLOCK on our end only; the container's end is another open file and stays blocking.
fn nonblocking(fd: OwnedFd) -> io::Result<File> {
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_stdin_waits_for_queued_input() {
        let (read, write) = pipe().unwrap();
        let mut io = ContainerIo {
            stdout: None,
            stderr: None,
            stdin: Some(nonblocking(write).unwrap()),
            stdin_pending: Vec::new(),
            stdin_closing: false,
            master: None,
            wants_stdin: true,
            runtime_errors: None,
        };
        io.queue_stdin(b"abc");
        io.close_stdin();
        assert!(!io.has_stdin());
        let mut got = Vec::new();
        File::from(read).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn full_pipe_queues_instead_of_blocking() {
        let (read, write) = pipe().unwrap();
        let mut io = ContainerIo {
            stdout: None,
            stderr: None,
            stdin: Some(nonblocking(write).unwrap()),
            stdin_pending: Vec::new(),
            stdin_closing: false,
            master: None,
            wants_stdin: true,
            runtime_errors: None,
        };
        let big = vec![b'x'; 256 * 1024];
        io.queue_stdin(&big);
        assert!(io.stdin_blocked());
        drop(read);
        io.flush_stdin();
        assert!(!io.has_stdin());
    }
}
