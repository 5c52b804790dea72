//! The attach endpoint: a unix stream socket any number of clients connect to; every client gets
//! the container's output from the moment it connects, and may send stdin and resize requests.
//!
//! Both directions carry frames `[kind: u8][length: u32 big-endian][payload]`:
//! monitor → client `STDOUT`/`STDERR` with output bytes (with a terminal everything is `STDOUT`);
//! client → monitor `STDIN` with input bytes, `CLOSE_STDIN` (empty), `RESIZE` (rows, cols as two
//! big-endian u16). The monitor closes every connection once the container is gone and its last
//! output was sent; the exit file is then in place.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const CLOSE_STDIN: u8 = 3;
pub const RESIZE: u8 = 4;

const HEADER: usize = 5;
/// Largest frame a client may send.
const MAX_FRAME: usize = 1 << 20;
/// Output queued for a client that does not read; past this it is disconnected rather than
/// letting it stall the container or grow the monitor.
const MAX_BACKLOG: usize = 4 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize { rows: u16, cols: u16 },
}

pub fn encode_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(payload);
}

/// Takes the complete frames off the front of `buf`.
pub fn decode_frames(buf: &mut Vec<u8>) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= HEADER {
        let kind = buf[pos];
        let len =
            u32::from_be_bytes([buf[pos + 1], buf[pos + 2], buf[pos + 3], buf[pos + 4]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("frame of {len} bytes is too large"));
        }
        if buf.len() - pos - HEADER < len {
            break;
        }
        let payload = &buf[pos + HEADER..pos + HEADER + len];
        inputs.push(match (kind, payload) {
            (STDIN, data) => Input::Stdin(data.to_vec()),
            (CLOSE_STDIN, _) => Input::CloseStdin,
            (RESIZE, &[r0, r1, c0, c1]) => Input::Resize {
                rows: u16::from_be_bytes([r0, r1]),
                cols: u16::from_be_bytes([c0, c1]),
            },
            _ => return Err(format!("bad frame kind {kind} with {len} bytes")),
        });
        pos += HEADER + len;
    }
    buf.drain(..pos);
    Ok(inputs)
}

pub struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Sent stdin or closed it: with `stdin_once`, its going away closes the container's stdin.
    pub used_stdin: bool,
    pub dead: bool,
}

impl Client {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    pub fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Output queued and not yet taken by the client.
    pub fn backlog(&self) -> usize {
        self.outbuf.len()
    }

    /// Reads what the client sent (once; the loop comes back while there is more).
    pub fn read_inputs(&mut self) -> Vec<Input> {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.dead = true,
            Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
            Err(e) if is_transient(&e) => {}
            Err(_) => self.dead = true,
        }
        match decode_frames(&mut self.inbuf) {
            Ok(inputs) => {
                self.used_stdin |= inputs
                    .iter()
                    .any(|i| matches!(i, Input::Stdin(_) | Input::CloseStdin));
                inputs
            }
            Err(e) => {
                eprintln!("crius-monitor: attach client dropped: {e}");
                self.dead = true;
                Vec::new()
            }
        }
    }

    pub fn send(&mut self, kind: u8, data: &[u8]) {
        if self.dead {
            return;
        }
        if self.outbuf.len() + data.len() > MAX_BACKLOG {
            eprintln!("crius-monitor: attach client dropped: not reading its output");
            self.dead = true;
            return;
        }
        encode_frame(&mut self.outbuf, kind, data);
        self.flush();
    }

    /// Writes as much queued output as the socket takes without blocking.
    pub fn flush(&mut self) {
        while !self.outbuf.is_empty() && !self.dead {
            match self.stream.write(&self.outbuf) {
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if is_transient(&e) => break,
                Err(_) => self.dead = true,
            }
        }
        if self.outbuf.is_empty() && self.outbuf.capacity() > 64 * 1024 {
            self.outbuf = Vec::new();
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    pub clients: Vec<Client>,
}

impl AttachServer {
    pub fn bind(path: &Path) -> io::Result<Self> {
        let listener = bind_socket(path)?;
        Ok(AttachServer {
            listener,
            path: path.to_path_buf(),
            clients: Vec::new(),
        })
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    inbuf: Vec::new(),
                    outbuf: Vec::new(),
                    used_stdin: false,
                    dead: false,
                });
            }
        }
    }

    /// Blocks until a client connects or `timeout` passes; true if one did.
    pub fn wait_for_client(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.clients.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let wait =
                nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
            let mut fds = [nix::poll::PollFd::new(
                self.listener_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, wait);
            self.accept();
        }
        true
    }

    /// The most output any client has queued.
    pub fn max_backlog(&self) -> usize {
        self.clients.iter().map(Client::backlog).max().unwrap_or(0)
    }

    pub fn broadcast(&mut self, kind: u8, data: &[u8]) {
        for client in &mut self.clients {
            client.send(kind, data);
        }
    }

    /// Gives clients up to `timeout` to take their queued output, then hangs up on all of them.
    pub fn finish(&mut self, timeout: Duration) {
        for client in &mut self.clients {
            let _ = client.stream.set_nonblocking(false);
            let _ = client.stream.set_write_timeout(Some(timeout));
            let _ = client.stream.write_all(&client.outbuf);
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A non-blocking listening socket at `path`, replacing a stale socket file left by a monitor
/// that died.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", path.display())))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_reads() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, STDIN, b"hello\n");
        encode_frame(&mut wire, RESIZE, &[0, 40, 0, 120]);
        encode_frame(&mut wire, CLOSE_STDIN, b"");
        // Feed the bytes in two pieces: the split frame waits for its rest.
        let mut buf = wire[..8].to_vec();
        assert_eq!(decode_frames(&mut buf).unwrap(), vec![]);
        buf.extend_from_slice(&wire[8..]);
        assert_eq!(
            decode_frames(&mut buf).unwrap(),
            vec![
                Input::Stdin(b"hello\n".to_vec()),
                Input::Resize {
                    rows: 40,
                    cols: 120
                },
                Input::CloseStdin
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_frames_are_rejected() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 9, b"x");
        assert!(decode_frames(&mut buf).is_err());
        let mut buf = Vec::new();
        encode_frame(&mut buf, RESIZE, b"abc");
        assert!(decode_frames(&mut buf).is_err());
        let mut buf = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_frames(&mut buf).is_err());
    }

    #[test]
    fn output_frame_layout() {
        let mut out = Vec::new();
        encode_frame(&mut out, STDERR, b"ab");
        assert_eq!(out, vec![2, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn two_clients_receive_the_same_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attach");
        let mut server = AttachServer::bind(&path).unwrap();
        let mut a = UnixStream::connect(&path).unwrap();
        let mut b = UnixStream::connect(&path).unwrap();
        assert!(server.wait_for_client(Duration::from_secs(5)));
        server.accept();
        assert_eq!(server.clients.len(), 2);
        server.broadcast(STDOUT, b"hi");
        server.finish(Duration::from_secs(1));
        for client in [&mut a, &mut b] {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            assert_eq!(got, vec![1, 0, 0, 0, 2, b'h', b'i']);
        }
        drop(server);
        assert!(!path.exists());
    }
}
