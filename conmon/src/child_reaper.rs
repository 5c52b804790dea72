//! Reaping children. The monitor is a child subreaper, so the container process (and an exec'd
//! process) becomes its child once the runtime that forked it exits; SIGCHLD is blocked and read
//! from a signalfd so the event loop can poll for it like any other fd.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention cri-o reports: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(_) => None,
            ExitStatus::Signaled(signal) => Some(signal),
        }
    }
}

/// Children that ended but nobody asked about yet are kept up to this many (orphans reparented to
/// the monitor are reaped too, and must not grow the list without bound).
const MAX_REMEMBERED: usize = 64;

pub struct ChildReaper {
    signals: SignalFd,
    exited: Vec<(i32, ExitStatus)>,
}

impl ChildReaper {
    /// Makes this process a subreaper and routes SIGCHLD to a signalfd. Call before spawning
    /// anything; children get an empty signal mask (std's spawn resets it).
    pub fn new() -> nix::Result<Self> {
        prctl::set_child_subreaper(true)?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(ChildReaper {
            signals,
            exited: Vec::new(),
        })
    }

    /// Readable when a child may have exited; then call [`ChildReaper::reap`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    /// Drains the signalfd and waits for every child that has exited.
    pub fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, ExitStatus::Signaled(signal as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            if self.exited.len() >= MAX_REMEMBERED {
                self.exited.remove(0);
            }
            self.exited.push((status.0.as_raw(), status.1));
        }
    }

    /// The exit status of `pid` if it has been reaped (only once).
    pub fn take(&mut self, pid: i32) -> Option<ExitStatus> {
        let index = self.exited.iter().position(|(p, _)| *p == pid)?;
        Some(self.exited.remove(index).1)
    }

    /// Blocks until `pid` exits or `timeout` passes.
    pub fn wait_for(&mut self, pid: i32, timeout: Option<Duration>) -> Option<ExitStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            self.reap();
            if let Some(status) = self.take(pid) {
                return Some(status);
            }
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        assert_eq!(ExitStatus::Exited(3).signal(), None);
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
        assert_eq!(ExitStatus::Signaled(9).signal(), Some(9));
    }
}
