//! Waiting for a crius-monitor to exit without polling: a pidfd, readable once the process has
//! exited (which a monitor does right after writing the exit file of what it ran). An idle
//! watch is one parked task and one file descriptor. Used for a container's exit
//! (`container::exit_watch`) and a pod's pause process (`sandbox::pause_watch`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::proc_info;

/// A running crius-monitor, to be waited for.
pub struct MonitorExit {
    pidfd: AsyncFd<OwnedFd>,
}

impl MonitorExit {
    /// Watches the monitor `pid`; `None` when no crius-monitor has that pid any more (it
    /// exited, or the pid was reused). Needs a tokio runtime.
    pub fn watch(pid: i32) -> io::Result<Option<MonitorExit>> {
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Checked after the open, so a pid reused in between fails here rather than be watched.
        if !proc_info::is_named(pid, "crius-monitor") {
            return Ok(None);
        }
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until dropped.
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }?;
        Ok(Some(MonitorExit { pidfd }))
    }

    /// Returns once the monitor has exited.
    pub async fn exited(self) -> io::Result<()> {
        self.pidfd.readable().await.map(|_| ())
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_that_is_not_a_monitor_is_not_watched() {
        let own = std::process::id() as i32;
        assert!(MonitorExit::watch(own).unwrap().is_none());
        assert!(MonitorExit::watch(i32::MAX).unwrap().is_none());
    }
}
