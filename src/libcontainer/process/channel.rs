//! The parent–child sync channel: a SOCK_SEQPACKET socketpair carrying one JSON message per
//! packet, so message boundaries are kept and a dead peer reads as end-of-file.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::{Deserialize, Serialize};

use crate::libcontainer::error::{Error, Result};

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
}
