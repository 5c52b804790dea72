//! One SPDY connection, server side: a reader task that parses frames and hands each new
//! stream to the handler, and a writer task that sends what the handler's streams write, in
//! order.
//!
//! Flow control: the Go peers (moby/spdystream, under kubelet, kubectl and crictl) neither send
//! WINDOW_UPDATE nor honour windows, so windows are ignored both ways; back-pressure comes from
//! TCP instead. Inbound, each stream's queue is bounded and the reader waits for room, so a
//! slow consumer stops the reading of the socket; outbound, the writer's queue is bounded and
//! writers wait while the client does not read.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::SpdyError;
use super::frame::{self, Head};
use super::zlib::{HeaderCompressor, HeaderDecompressor, decode_block, encode_block};

/// DATA frames queued per inbound stream before the reader waits.
const INBOUND_DEPTH: usize = 16;
/// Frames queued for the writer before stream writers wait.
const OUTBOUND_DEPTH: usize = 32;
/// Largest DATA frame sent; bigger writes are split.
const MAX_DATA: usize = 64 * 1024;
/// How long the writer may take to flush and say goodbye.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

enum Out {
    Reply(u32),
    Data(u32, Bytes, bool),
    Reset(u32, u32),
    Pong(u32),
    Shutdown(u32),
}

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    /// What the client sends on it; `None` once it half-closed (FIN), reset it or went away.
    pub input: mpsc::Receiver<Bytes>,
    /// Cancelled when the client resets the stream.
    pub reset: CancellationToken,
    pub output: StreamWriter,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The sending half of a stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

impl StreamWriter {
    /// Sends bytes; false once the connection is gone.
    pub async fn write(&self, data: Bytes) -> bool {
        if data.is_empty() {
            return true;
        }
        self.out.send(Out::Data(self.id, data, false)).await.is_ok()
    }

    /// Half-closes the stream (FIN).
    pub async fn close(&self) {
        let _ = self.out.send(Out::Data(self.id, Bytes::new(), true)).await;
    }

    pub async fn reset(&self) {
        let _ = self.out.send(Out::Reset(self.id, frame::RST_CANCEL)).await;
    }
}

/// A running connection.
pub struct Session {
    /// Streams as the client opens them.
    pub streams: mpsc::Receiver<Stream>,
    /// Cancelled when the client closed the connection or it broke.
    pub gone: CancellationToken,
    out: mpsc::Sender<Out>,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
}

impl Session {
    pub fn start<R, W>(read: R, write: W) -> Session
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let gone = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_DEPTH);
        let (streams_tx, streams_rx) = mpsc::channel(8);
        let reader = tokio::spawn({
            let (gone, out) = (gone.clone(), out_tx.clone());
            async move {
                if let Err(e) = read_loop(read, &out, &streams_tx).await {
                    tracing::debug!("spdy: {e}");
                }
                gone.cancel();
            }
        });
        let writer = tokio::spawn({
            let gone = gone.clone();
            async move {
                if let Err(e) = write_loop(write, out_rx).await {
                    tracing::debug!("spdy: writing: {e}");
                }
                gone.cancel();
            }
        });
        Session {
            streams: streams_rx,
            gone,
            out: out_tx,
            reader,
            writer: Some(writer),
        }
    }

    /// Sends everything queued, then GOAWAY, and closes the connection.
    pub async fn shutdown(mut self) {
        let _ = self.out.send(Out::Shutdown(0)).await;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, writer).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(writer) = &self.writer {
            writer.abort();
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    out: &mpsc::Sender<Out>,
    new_streams: &mpsc::Sender<Stream>,
) -> Result<(), SpdyError> {
    let io = |e: std::io::Error| SpdyError::Protocol(format!("reading: {e}"));
    let mut inflate = HeaderDecompressor::new();
    let mut inputs: HashMap<u32, (mpsc::Sender<Bytes>, CancellationToken)> = HashMap::new();
    loop {
        let mut head = [0u8; 8];
        match read.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(io(e)),
        }
        let head = Head::parse(head)?;
        if head.len() > frame::MAX_FRAME {
            return Err(SpdyError::Protocol("frame too large".into()));
        }
        let mut payload = vec![0u8; head.len()];
        read.read_exact(&mut payload).await.map_err(io)?;
        match head {
            Head::Data { stream, flags, .. } => {
                if !payload.is_empty()
                    && let Some((tx, _)) = inputs.get(&stream)
                    && tx.send(Bytes::from(payload)).await.is_err()
                {
                    // Nobody reads this stream: drop what comes on it.
                    inputs.remove(&stream);
                }
                if flags & frame::FLAG_FIN != 0 {
                    inputs.remove(&stream);
                }
            }
            Head::Control { kind, flags, .. } => match kind {
                frame::SYN_STREAM => {
                    let id = frame::stream_id(&payload)?;
                    let block = payload
                        .get(10..)
                        .ok_or_else(|| SpdyError::Protocol("short SYN_STREAM".into()))?;
                    let headers = decode_block(&inflate.decompress(block)?)?;
                    let (tx, rx) = mpsc::channel(INBOUND_DEPTH);
                    let reset = CancellationToken::new();
                    if flags & frame::FLAG_FIN == 0 {
                        inputs.insert(id, (tx, reset.clone()));
                    }
                    if out.send(Out::Reply(id)).await.is_err() {
                        return Ok(());
                    }
                    let stream = Stream {
                        id,
                        headers,
                        input: rx,
                        reset,
                        output: StreamWriter {
                            id,
                            out: out.clone(),
                        },
                    };
                    if new_streams.send(stream).await.is_err() {
                        let _ = out.send(Out::Reset(id, frame::RST_REFUSED_STREAM)).await;
                    }
                }
                frame::SYN_REPLY | frame::HEADERS => {
                    // Nothing to do with them, but the zlib stream must see every block.
                    if let Some(block) = payload.get(4..) {
                        inflate.decompress(block)?;
                    }
                }
                frame::RST_STREAM => {
                    if let Some((_, reset)) = inputs.remove(&frame::stream_id(&payload)?) {
                        reset.cancel();
                    }
                }
                frame::PING => {
                    let id = frame::stream_id(&payload)?;
                    if out.send(Out::Pong(id)).await.is_err() {
                        return Ok(());
                    }
                }
                // SETTINGS, WINDOW_UPDATE (see the module comment), GOAWAY (the client's
                // streams go on until it closes the connection).
                frame::SETTINGS | frame::WINDOW_UPDATE | frame::GOAWAY => {}
                _ => {}
            },
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut queue: mpsc::Receiver<Out>,
) -> Result<(), SpdyError> {
    let io = |e: std::io::Error| SpdyError::Protocol(format!("writing: {e}"));
    let mut deflate = HeaderCompressor::new()?;
    let mut buf = Vec::with_capacity(64);
    while let Some(out) = queue.recv().await {
        buf.clear();
        match out {
            Out::Reply(id) => {
                let block = deflate.compress(&encode_block(&[]))?;
                frame::syn_reply(&mut buf, id, 0, &block);
                write.write_all(&buf).await.map_err(io)?;
            }
            Out::Data(id, data, fin) => {
                let mut chunks = data.chunks(MAX_DATA).peekable();
                if chunks.peek().is_none() {
                    frame::data_head(&mut buf, id, if fin { frame::FLAG_FIN } else { 0 }, 0);
                    write.write_all(&buf).await.map_err(io)?;
                }
                while let Some(chunk) = chunks.next() {
                    buf.clear();
                    let last = chunks.peek().is_none();
                    let flags = if fin && last { frame::FLAG_FIN } else { 0 };
                    frame::data_head(&mut buf, id, flags, chunk.len());
                    write.write_all(&buf).await.map_err(io)?;
                    write.write_all(chunk).await.map_err(io)?;
                }
            }
            Out::Reset(id, status) => {
                frame::rst_stream(&mut buf, id, status);
                write.write_all(&buf).await.map_err(io)?;
            }
            Out::Pong(id) => {
                frame::ping(&mut buf, id);
                write.write_all(&buf).await.map_err(io)?;
            }
            Out::Shutdown(last) => {
                frame::goaway(&mut buf, last);
                write.write_all(&buf).await.map_err(io)?;
                write.flush().await.map_err(io)?;
                let _ = write.shutdown().await;
                return Ok(());
            }
        }
        if queue.is_empty() {
            write.flush().await.map_err(io)?;
        }
    }
    Ok(())
}
