//! Terminals. With `--terminal` the runtime creates the pty itself and sends its master end over
//! the console socket (`--console-socket`, SCM_RIGHTS), as runc does; the monitor then reads the
//! container's output from the master, writes its input there, and sets its window size.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::cmsg_space;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::attach::bind_socket;

pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> io::Result<Self> {
        Ok(ConsoleSocket {
            listener: bind_socket(path)?,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts the runtime's connection and takes the pty master from it. Call when the listener
    /// polled readable.
    pub fn receive_master(&self) -> io::Result<OwnedFd> {
        let (conn, _) = self.listener.accept()?;
        conn.set_nonblocking(false)?;
        // runc sends the pty's name as data alongside the fd.
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut master = None;
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    master.get_or_insert(owned);
                }
            }
        }
        master.ok_or_else(|| io::Error::other("console socket message carried no file descriptor"))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, nix::libc::winsize);

/// Sets the terminal's window size; the kernel sends SIGWINCH to the container's foreground
/// process group.
pub fn resize(master: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let size = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which outlives the call.
    unsafe { set_winsize(master.as_raw_fd(), &size) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{ControlMessage, sendmsg};
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    #[test]
    fn receives_a_passed_fd() {
        let dir = tempfile::tempdir().unwrap();
        let console = ConsoleSocket::bind(&dir.path().join("console.sock")).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let conn = UnixStream::connect(console.path()).unwrap();
        let fds = [file.as_raw_fd()];
        sendmsg::<()>(
            conn.as_raw_fd(),
            &[IoSlice::new(b"/dev/pts/99")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let got = console.receive_master().unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", got.as_raw_fd())).unwrap();
        assert_eq!(link, Path::new("/dev/null"));
    }
}
