//! Copies between a client session and a monitor's attach socket (docs/monitor.md, frames
//! `[kind u8][len u32 BE][payload]`): output frames to stdout/stderr, stdin and terminal sizes
//! to the monitor. Every hop waits for the next one, so a slow client slows the reading of the
//! socket instead of filling memory.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::stdio::{Output, Stdio};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const CLOSE_STDIN: u8 = 3;
const RESIZE: u8 = 4;
/// The monitor sends frames of at most 1 MiB.
const MAX_FRAME: usize = 1 << 20;

/// Why the pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The monitor closed the socket: the process exited (or the monitor dropped us).
    MonitorClosed,
    /// The client went away.
    ClientGone,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TermSize {
    width: u16,
    height: u16,
}

pub async fn run(socket: UnixStream, stdio: &mut Stdio) -> End {
    let (read, write) = socket.into_split();
    let outputs = (stdio.stdout.clone(), stdio.stderr.clone());
    let stdin = stdio.stdin.take();
    let resize = stdio.resize.take();
    tokio::select! {
        () = output(read, outputs.0, outputs.1) => End::MonitorClosed,
        () = input(write, stdin, resize) => End::MonitorClosed,
        () = stdio.gone.cancelled() => End::ClientGone,
    }
}

/// Monitor → client, until the monitor closes the socket.
async fn output(mut read: OwnedReadHalf, stdout: Option<Output>, stderr: Option<Output>) {
    loop {
        let mut head = [0u8; 5];
        if read.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return;
        }
        let mut payload = vec![0u8; len];
        if read.read_exact(&mut payload).await.is_err() {
            return;
        }
        let target = match head[0] {
            STDOUT => stdout.as_ref(),
            STDERR => stderr.as_ref(),
            _ => None,
        };
        // A client that did not ask for a stream does not get it; the client being gone is
        // noticed by `run`.
        if let Some(out) = target {
            out.write(Bytes::from(payload)).await;
        }
    }
}

/// Client → monitor. Never returns while the socket is writable: the end of input is
/// a CLOSE_STDIN frame, not the end of the session.
async fn input(
    mut write: OwnedWriteHalf,
    mut stdin: Option<mpsc::Receiver<Bytes>>,
    mut resize: Option<mpsc::Receiver<Bytes>>,
) {
    let mut sizes = Vec::new();
    loop {
        let frame = tokio::select! {
            data = recv(&mut stdin) => match data {
                Some(data) => frame(STDIN, &data),
                None => {
                    stdin = None;
                    frame(CLOSE_STDIN, &[])
                }
            },
            data = recv(&mut resize) => match data {
                Some(data) => {
                    sizes.extend_from_slice(&data);
                    let frames = take_sizes(&mut sizes);
                    if frames.is_empty() {
                        continue;
                    }
                    frames
                }
                None => {
                    resize = None;
                    continue;
                }
            },
        };
        if write.write_all(&frame).await.is_err() {
            // The monitor is gone; the output side sees it too.
            return std::future::pending().await;
        }
    }
}

/// Waits on an optional receiver; an absent one never yields.
async fn recv(rx: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The first complete size in `data`, as (rows, cols).
pub fn first_size(data: &[u8]) -> Option<(u16, u16)> {
    let size = serde_json::Deserializer::from_slice(data)
        .into_iter::<TermSize>()
        .next()?
        .ok()?;
    Some((size.height, size.width))
}

/// RESIZE frames for every complete JSON size at the front of `buf`; the rest stays.
fn take_sizes(buf: &mut Vec<u8>) -> Vec<u8> {
    let mut frames = Vec::new();
    let mut sizes = serde_json::Deserializer::from_slice(buf).into_iter::<TermSize>();
    let mut used = 0;
    loop {
        match sizes.next() {
            Some(Ok(size)) => {
                used = sizes.byte_offset();
                let mut payload = size.height.to_be_bytes().to_vec();
                payload.extend_from_slice(&size.width.to_be_bytes());
                frames.extend(frame(RESIZE, &payload));
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => {
                // Garbage: drop it all rather than wedge on it.
                used = buf.len();
                break;
            }
            None => break,
        }
    }
    buf.drain(..used);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_become_resize_frames() {
        let mut buf = br#"{"Width":80,"Height":24}{"Width":100,"#.to_vec();
        assert_eq!(take_sizes(&mut buf), vec![4, 0, 0, 0, 4, 0, 24, 0, 80]);
        assert_eq!(buf, br#"{"Width":100,"#);
        buf.extend_from_slice(br#""Height":40}"#);
        assert_eq!(take_sizes(&mut buf), vec![4, 0, 0, 0, 4, 0, 40, 0, 100]);
        assert!(buf.is_empty());
        assert_eq!(first_size(br#"{"Width":80,"Height":24}{"#), Some((24, 80)));
        assert_eq!(first_size(b"{"), None);
        let mut junk = b"nope".to_vec();
        assert!(take_sizes(&mut junk).is_empty());
        assert!(junk.is_empty());
    }
}
