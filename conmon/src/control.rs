//! The control socket: a unix stream socket taking one text command per line and answering each
//! with `ok` or `error <reason>` on a line of its own. Commands:
//! `reopen-log` (after the log file was renamed away for rotation) and
//! `resize <rows> <cols>` (the terminal's window size; an error without a terminal).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::attach::bind_socket;

/// Longest command line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    ReopenLog,
    Resize { rows: u16, cols: u16 },
}

pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["reopen-log"] => Ok(Command::ReopenLog),
        ["resize", rows, cols] => {
            let number = |s: &str| s.parse::<u16>().map_err(|_| format!("bad size {s:?}"));
            Ok(Command::Resize {
                rows: number(rows)?,
                cols: number(cols)?,
            })
        }
        _ => Err(format!("unknown command {:?}", line.trim())),
    }
}

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
    pub fn read_commands(&mut self) -> Vec<Result<Command, String>> {
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
            commands.push(parse(&String::from_utf8_lossy(&line)));
        }
        if self.inbuf.len() > MAX_LINE {
            self.dead = true;
        }
        commands
    }

    /// Answers one command. Replies are a few bytes, so a blocking write with a timeout is fine.
    pub fn reply(&mut self, result: Result<(), String>) {
        let line = match result {
            Ok(()) => "ok\n".to_string(),
            Err(e) => format!("error {}\n", e.replace('\n', " ")),
        };
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
    fn parses_commands() {
        assert_eq!(parse("reopen-log\n"), Ok(Command::ReopenLog));
        assert_eq!(
            parse("resize 40 120"),
            Ok(Command::Resize {
                rows: 40,
                cols: 120
            })
        );
        assert!(parse("resize 40").is_err());
        assert!(parse("resize -1 5").is_err());
        assert!(parse("reboot").is_err());
        assert!(parse("").is_err());
    }

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
                Ok(Command::ReopenLog),
                Ok(Command::Resize { rows: 1, cols: 2 })
            ]
        );
        server.clients[0].reply(Ok(()));
        server.clients[0].reply(Err("no terminal".into()));
        let mut got = [0u8; 21];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok\nerror no terminal\n");
    }
}
