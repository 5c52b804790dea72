//! A SPDY/3.1 client as the k8s Go clients behave: HTTP upgrade with
//! `X-Stream-Protocol-Version`, odd stream ids, the error stream opened half-closed.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::{Output, Streams};

const DICTIONARY: &[u8] = include_bytes!("../../../src/streaming/spdy/dictionary.bin");

#[derive(Debug)]
pub enum Event {
    Reply(u32),
    Data(u32, Bytes),
    Fin(u32),
    Reset(u32),
    Ping(u32),
    GoAway,
}

pub struct Client {
    write: OwnedWriteHalf,
    z: Compress,
    next_id: u32,
    /// Frames from the server; closed at end of connection.
    pub events: mpsc::Receiver<Event>,
    pub protocol: String,
}

/// Sends the upgrade request as a POST (as the Go clients do); returns the status and
/// headers, and the stream.
pub async fn upgrade(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Vec<(String, String)>, TcpStream)> {
    super::upgrade_request("POST", url, headers).await
}

impl Client {
    /// Upgrades to SPDY offering `protocols`; an error names the HTTP status if refused.
    pub async fn connect(url: &str, protocols: &[&str]) -> Result<Client> {
        let mut headers = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
        for p in protocols {
            headers.push(("X-Stream-Protocol-Version", p));
        }
        let (status, response, tcp) = upgrade(url, &headers).await?;
        if status != 101 {
            bail!("upgrade refused: HTTP {status}");
        }
        let protocol = response
            .iter()
            .find(|(k, _)| k == "x-stream-protocol-version")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (read, write) = tcp.into_split();
        let (tx, events) = mpsc::channel(64);
        tokio::spawn(read_frames(read, tx));
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(DICTIONARY)?;
        Ok(Client {
            write,
            z,
            next_id: 1,
            events,
            protocol,
        })
    }

    /// Opens a stream; `fin` half-closes it at once.
    pub async fn open(&mut self, headers: &[(&str, &str)], fin: bool) -> Result<u32> {
        let id = self.next_id;
        self.next_id += 2;
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (k, v) in headers {
            for s in [k.to_ascii_lowercase(), v.to_string()] {
                block.extend_from_slice(&(s.len() as u32).to_be_bytes());
                block.extend_from_slice(s.as_bytes());
            }
        }
        let mut compressed = Vec::with_capacity(block.len() + 1024);
        self.z
            .compress_vec(&block, &mut compressed, FlushCompress::Sync)?;
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&0u32.to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(&compressed);
        self.control(1, u8::from(fin), &payload).await?;
        Ok(id)
    }

    async fn control(&mut self, kind: u16, flags: u8, payload: &[u8]) -> Result<()> {
        let mut frame = vec![0x80, 3];
        frame.extend_from_slice(&kind.to_be_bytes());
        frame.push(flags);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(payload);
        self.write.write_all(&frame).await?;
        Ok(())
    }

    pub async fn data(&mut self, id: u32, data: &[u8], fin: bool) -> Result<()> {
        let mut frame = id.to_be_bytes().to_vec();
        frame.push(u8::from(fin));
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(data);
        self.write.write_all(&frame).await?;
        Ok(())
    }

    pub async fn ping(&mut self, id: u32) -> Result<()> {
        self.control(6, 0, &id.to_be_bytes()).await
    }

    pub async fn reset(&mut self, id: u32) -> Result<()> {
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&5u32.to_be_bytes());
        self.control(3, 0, &payload).await
    }
}

async fn read_frames(mut read: impl AsyncRead + Unpin, tx: mpsc::Sender<Event>) {
    let mut z = Decompress::new(true);
    loop {
        let mut head = [0u8; 8];
        if read.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let flags = head[4];
        let mut payload = vec![0u8; len];
        if read.read_exact(&mut payload).await.is_err() {
            return;
        }
        let id = |p: &[u8]| u32::from_be_bytes([p[0] & 0x7f, p[1], p[2], p[3]]);
        let event = if head[0] & 0x80 == 0 {
            let stream = id(&head);
            if !payload.is_empty() && tx.send(Event::Data(stream, payload.into())).await.is_err() {
                return;
            }
            if flags & 1 == 0 {
                continue;
            }
            Event::Fin(stream)
        } else {
            match u16::from_be_bytes([head[2], head[3]]) {
                2 => {
                    // Keep the zlib stream in step.
                    inflate(&mut z, &payload[4..]);
                    Event::Reply(id(&payload))
                }
                3 => Event::Reset(id(&payload)),
                6 => Event::Ping(id(&payload)),
                7 => Event::GoAway,
                _ => continue,
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

fn inflate(z: &mut Decompress, input: &[u8]) {
    let start = z.total_in();
    let mut out = Vec::new();
    loop {
        let done = (z.total_in() - start) as usize;
        out.reserve(4096);
        match z.decompress_vec(&input[done..], &mut out, FlushDecompress::Sync) {
            Err(e) if e.needs_dictionary().is_some() => {
                let _ = z.set_dictionary(DICTIONARY);
            }
            Err(_) => return,
            Ok(_) => {}
        }
        if (z.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// Runs an exec or attach session: opens the streams the k8s client would, sends `input` on
/// stdin (then closes it unless `keep_stdin_open`), the terminal size if given, and collects
/// everything until the server closes the connection.
pub async fn run_session(
    url: &str,
    protocol: &str,
    streams: Streams,
    input: Option<&[u8]>,
    size: Option<(u16, u16)>,
    keep: usize,
    deadline: Duration,
) -> Result<Output> {
    let mut client = Client::connect(url, &[protocol]).await?;
    let mut names = HashMap::new();
    let error = client.open(&[("streamType", "error")], true).await?;
    names.insert(error, "error");
    let mut stdin = None;
    if streams.stdin {
        stdin = Some(client.open(&[("streamType", "stdin")], false).await?);
    }
    for (on, name) in [(streams.stdout, "stdout"), (streams.stderr, "stderr")] {
        if on {
            let id = client.open(&[("streamType", name)], false).await?;
            names.insert(id, name);
        }
    }
    if streams.tty {
        let resize = client.open(&[("streamType", "resize")], false).await?;
        if let Some((w, h)) = size {
            let json = format!("{{\"Width\":{w},\"Height\":{h}}}");
            client.data(resize, json.as_bytes(), false).await?;
        }
    }
    if let (Some(id), Some(input)) = (stdin, input) {
        client.data(id, input, false).await?;
        client.data(id, &[], true).await?;
    }
    let mut output = Output::default();
    tokio::time::timeout(deadline, async {
        while let Some(event) = client.events.recv().await {
            if let Event::Data(id, data) = event {
                match names.get(&id).copied() {
                    Some("stdout") => output.take_stdout(&data, keep),
                    Some("stderr") => output.stderr.extend_from_slice(&data),
                    Some("error") => output.error.push_str(&String::from_utf8_lossy(&data)),
                    _ => {}
                }
            }
        }
    })
    .await
    .context("session did not end in time")?;
    Ok(output)
}
