//! The sync pipe: the one line the daemon waits for (a `SyncMessage`, or exec-sync's
//! `ExecSyncReply`; both defined in `crius_monitor_proto`), written to a descriptor the daemon
//! passed (stdout unless `--sync-fd`). The descriptor is then let go so the daemon reads end of
//! file.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use crius_monitor_proto::{ExecSyncReply, SyncMessage};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// A message that goes on the sync descriptor.
pub trait SyncLine {
    fn line(&self) -> String;
}

impl SyncLine for SyncMessage {
    fn line(&self) -> String {
        self.encode()
    }
}

impl SyncLine for ExecSyncReply {
    fn line(&self) -> String {
        self.encode()
    }
}

pub struct SyncPipe {
    fd: i32,
    file: Option<File>,
}

impl SyncPipe {
    /// Takes over descriptor `fd`. It is marked close-on-exec so the runtime and the container do
    /// not inherit it (and keep the daemon from seeing end of file).
    pub fn from_fd(fd: i32) -> Result<Self, String> {
        // SAFETY: fcntl on a plain integer only queries the descriptor table.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_GETFD).map_err(|e| format!("sync fd {fd}: {e}"))?;
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| format!("sync fd {fd}: {e}"))?;
        // SAFETY: the descriptor is open (checked above) and nothing else in this process uses it:
        // the daemon handed it over for this purpose.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(SyncPipe {
            fd,
            file: Some(file),
        })
    }

    /// Writes the message and releases the descriptor (stdio numbers are pointed at /dev/null
    /// rather than closed, so they are never reused by something else).
    pub fn send(&mut self, message: &impl SyncLine) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        let _ = file.write_all(message.line().as_bytes());
        if self.fd <= 2
            && let Ok(null) = File::options().read(true).write(true).open("/dev/null")
        {
            let mut target = OwnedFd::from(file);
            let _ = nix::unistd::dup2(&null, &mut target);
            // The number stays open, now on /dev/null.
            std::mem::forget(target);
        }
    }

    pub fn error(&mut self, message: &str) {
        self.send(&SyncMessage::failed(message));
    }
}
