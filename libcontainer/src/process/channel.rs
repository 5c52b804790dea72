//! The parent–child sync channel: a SOCK_SEQPACKET socketpair carrying one JSON message per
//! packet, so message boundaries are kept and a dead peer reads as end-of-file.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recv,
    recvmsg, send, sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Parent → child: the child has been placed in its cgroup; go on.
    Continue,
    /// Child → parent: I unshared a user namespace, write my uid/gid maps.
    MapUserNs,
    /// Parent → child: maps written.
    MapDone,
    /// Intermediate → parent: the container process's pid (in the parent's pid namespace).
    Pid(i32),
    /// Parent → init, with the mount fd attached (SCM_RIGHTS): the detached id-mapped mount
    /// for `mounts[index]`.
    MountFd(usize),
    /// Init → parent: namespaces and mounts exist; run prestart/createRuntime hooks.
    RunHooks,
    /// Parent → init: hooks done; carries the state JSON for the in-container hooks.
    HooksDone(String),
    /// Init → parent: everything is set up; the init now blocks on the exec fifo.
    Ready,
    /// Either way: the step that failed.
    Error(String),
}

#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", "sync channel", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let buf = serde_json::to_vec(msg).map_err(|e| Error::Invalid(e.to_string()))?;
        send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| Error::sys("sending on", "sync channel", e))?;
        Ok(())
    }

    /// Send `msg` with `fd` attached.
    pub fn send_fd(&self, msg: &Msg, fd: BorrowedFd<'_>) -> Result<()> {
        let buf = serde_json::to_vec(msg).map_err(|e| Error::Invalid(e.to_string()))?;
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&buf)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys("sending fd on", "sync channel", e))?;
        Ok(())
    }

    /// Like [`Channel::recv`], also taking the fd attached to the message, if any.
    pub fn recv_fd(&self) -> Result<(Option<Msg>, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let (n, fd) = match r {
                Ok(m) => {
                    let mut fd = None;
                    for c in m
                        .cmsgs()
                        .map_err(|e| Error::sys("reading", "sync channel", e))?
                    {
                        if let ControlMessageOwned::ScmRights(list) = c {
                            for raw in list {
                                // SAFETY: the kernel installed this descriptor for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    (m.bytes, fd)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("receiving on", "sync channel", e)),
            };
            if n == 0 {
                return Ok((None, fd));
            }
            let msg = serde_json::from_slice(&buf[..n])
                .map_err(|e| Error::Invalid(format!("bad sync message: {e}")))?;
            return Ok((Some(msg), fd));
        }
    }

    /// The next message, or `None` when the peer has closed its end (exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map(Some)
                        .map_err(|e| Error::Invalid(format!("bad sync message: {e}")));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("receiving on", "sync channel", e)),
            }
        }
    }

    /// Receive and insist on `want`; an `Error` from the peer becomes ours.
    pub fn expect(&self, want: &Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == *want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Child(e)),
            Some(m) => Err(Error::Invalid(format!(
                "sync channel: expected {want:?}, got {m:?}"
            ))),
            None => Err(Error::Child(format!(
                "sync channel: peer exited while waiting for {want:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_close_reads_as_none() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Pid(42)).unwrap();
        a.send(&Msg::Error("mounting proc on /x: EPERM".into()))
            .unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Pid(42)));
        assert!(matches!(b.expect(&Msg::Ready), Err(Error::Child(m)) if m.contains("EPERM")));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn an_fd_travels_with_its_message() {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsFd;
        let (a, b) = pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"mount").unwrap();
        a.send_fd(&Msg::MountFd(3), f.as_fd()).unwrap();
        a.send(&Msg::Continue).unwrap();
        let (m, fd) = b.recv_fd().unwrap();
        assert_eq!(m, Some(Msg::MountFd(3)));
        let mut g = std::fs::File::from(fd.unwrap());
        g.rewind().unwrap();
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        assert_eq!(s, "mount");
        let (m, fd) = b.recv_fd().unwrap();
        assert_eq!((m, fd.is_none()), (Some(Msg::Continue), true));
    }
}
