//! Terminals: the container's pty is allocated inside the container (from its own devpts), its
//! slave becomes the controlling terminal and stdio, and the master is handed to whoever listens
//! on `--console-socket` with SCM_RIGHTS, like runc.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;

use crate::error::{Error, IoContext, Result, SysContext};

/// Connect to the console socket in the runtime's mount namespace (before forking), so the fd
/// survives the root switch.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path)
        .io_ctx(|| format!("connecting to console socket {}", path.display()))?;
    Ok(OwnedFd::from(s))
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Allocate a pty from the current /dev/ptmx, make its slave our controlling terminal and
/// stdio, and return the master with the slave's name.
pub fn setup_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, String)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx("opening", "/dev/ptmx")?;
    grantpt(&master).ctx("grantpt", "/dev/ptmx")?;
    unlockpt(&master).ctx("unlockpt", "/dev/ptmx")?;
    let name = ptsname_r(&master).ctx("ptsname", "/dev/ptmx")?;
    let slave = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("opening pty slave", &name)?;
    if let Some((h, w)) = size {
        let ws = libc::winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on a tty fd with a valid winsize.
        unsafe { set_winsize(slave.as_raw_fd(), &ws) }.ctx("setting console size of", &name)?;
    }
    // SAFETY: TIOCSCTTY on our own tty fd; we are a session leader.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys(
            "making controlling terminal",
            &name,
            nix::errno::Errno::last(),
        ));
    }
    for fd in 0..3 {
        dup2_raw(slave.as_raw_fd(), fd).ctx("dup2 of pty slave", &name)?;
    }
    Ok((master.into(), name))
}

fn dup2_raw(old: RawFd, new: RawFd) -> std::result::Result<(), nix::errno::Errno> {
    // SAFETY: dup2 onto the standard descriptors, which we own.
    if unsafe { libc::dup2(old, new) } < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(())
}

/// Send `fd` over the console socket, with the pty name as payload (runc's utils.SendFile).
pub fn send_fd(socket: &OwnedFd, fd: &OwnedFd, name: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .ctx("sending pty master over", "console socket")?;
    Ok(())
}
