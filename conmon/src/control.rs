//! The control socket: a unix stream socket taking one text command per line and answering each
//! with `ok` or `error <reason>` on a line of its own. Commands:
//! `reopen-log` (after the log file was renamed away for rotation) and
//! `resize <rows> <cols>` (the terminal's window size; an error without a terminal). The lines
//! are `ControlRequest` and `ControlReply` of `crius_monitor_proto::control`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crius_monitor_proto::control::MAX_LINE;
use crius_monitor_proto::{ControlReply, ControlRequest};

use crate::attach::bind_socket;

pub struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    pub dead: bool,
}

impl Client {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// The complete lines received so far, parsed.
    pub fn read_commands(&mut self) -> Vec<Result<ControlRequest, String>> {
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.dead = true,
            Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.dead = true,
        }
        let mut commands = Vec::new();
        while let Some(end) = self.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=end).collect();
            commands.push(
                ControlRequest::decode(&String::from_utf8_lossy(&line)).map_err(|e| e.reason),
            );
        }
        if self.inbuf.len() > MAX_LINE {
            self.dead = true;
        }
        commands
    }

    /// Answers one command. Replies are a few bytes, so a blocking write with a timeout is fine.
    pub fn reply(&mut self, result: Result<(), String>) {
        let line = ControlReply::from(result).encode();
        let _ = self.stream.set_nonblocking(false);
        let _ = self
            .stream
            .set_write_timeout(Some(std::time::Duration::from_secs(1)));
        if self.stream.write_all(line.as_bytes()).is_err() {
            self.dead = true;
        }
        let _ = self.stream.set_nonblocking(true);
    }
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    pub clients: Vec<Client>,
}

impl ControlServer {
    pub fn bind(path: &Path) -> io::Result<Self> {
        Ok(ControlServer {
            listener: bind_socket(path)?,
            path: path.to_path_buf(),
            clients: Vec::new(),
        })
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    inbuf: Vec::new(),
                    dead: false,
                });
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut conn = UnixStream::connect(&path).unwrap();
        server.accept();
        conn.write_all(b"reopen-").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(server.clients[0].read_commands().is_empty());
        conn.write_all(b"log\nresize 1 2\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            server.clients[0].read_commands(),
            vec![
                Ok(ControlRequest::ReopenLog),
                Ok(ControlRequest::Resize { rows: 1, cols: 2 })
            ]
        );
        server.clients[0].reply(Ok(()));
        server.clients[0].reply(Err("no terminal".into()));
        let mut got = [0u8; 21];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok\nerror no terminal\n");
    }
}
