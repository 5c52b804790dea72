//! WebSocket sessions (KEP-4006): every binary message starts with a channel byte. Also the
//! tunnel that carries a SPDY connection inside binary messages (`SPDY/3.1+portforward.k8s.io`,
//! what `crictl port-forward --transport websocket` speaks).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::stdio::CLOSE;

/// Messages queued for the writer before senders wait.
const OUTBOUND_DEPTH: usize = 32;
/// Messages queued per input channel before the reader waits.
const INBOUND_DEPTH: usize = 16;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message accepted from a client (stdin chunks, port-forward data).
const MAX_MESSAGE: usize = 8 << 20;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

pub enum WsOut {
    Data(u8, Bytes),
    Close,
}

pub async fn accept(upgraded: Upgraded) -> Ws {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE);
    config.max_frame_size = Some(MAX_MESSAGE);
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await
}

/// A running channel-prefixed session.
pub struct WsSession {
    pub out: mpsc::Sender<WsOut>,
    pub gone: CancellationToken,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
}

impl WsSession {
    /// Starts the session; each of `inputs` gets a receiver of what the client sends on it.
    /// With `closable` (v5), a CLOSE message ends the input channel it names.
    pub fn start(
        ws: Ws,
        inputs: &[u8],
        closable: bool,
    ) -> (WsSession, HashMap<u8, mpsc::Receiver<Bytes>>) {
        let (mut sink, mut source) = ws.split();
        let gone = CancellationToken::new();
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for ch in inputs {
            let (tx, rx) = mpsc::channel(INBOUND_DEPTH);
            senders.insert(*ch, tx);
            receivers.insert(*ch, rx);
        }
        let reader = tokio::spawn({
            let gone = gone.clone();
            async move {
                while let Some(Ok(message)) = source.next().await {
                    let data = match message {
                        Message::Binary(data) => data,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let Some((&ch, payload)) = data.split_first() else {
                        continue;
                    };
                    if ch == CLOSE && closable {
                        if let Some(which) = payload.first() {
                            senders.remove(which);
                        }
                        continue;
                    }
                    if payload.is_empty() {
                        continue;
                    }
                    if let Some(tx) = senders.get(&ch)
                        && tx.send(data.slice(1..)).await.is_err()
                    {
                        senders.remove(&ch);
                    }
                }
                gone.cancel();
            }
        });
        let (out, mut queue) = mpsc::channel::<WsOut>(OUTBOUND_DEPTH);
        let writer = tokio::spawn({
            let gone = gone.clone();
            async move {
                while let Some(item) = queue.recv().await {
                    let sent = match item {
                        WsOut::Data(ch, data) => {
                            let mut message = Vec::with_capacity(data.len() + 1);
                            message.push(ch);
                            message.extend_from_slice(&data);
                            sink.send(Message::Binary(message.into())).await
                        }
                        WsOut::Close => {
                            let frame = CloseFrame {
                                code: CloseCode::Normal,
                                reason: "".into(),
                            };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            let _ = sink.close().await;
                            return;
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                gone.cancel();
            }
        });
        let session = WsSession {
            out,
            gone,
            reader,
            writer: Some(writer),
        };
        (session, receivers)
    }

    /// Sends what is queued, then a close frame.
    pub async fn close(mut self) {
        let _ = self.out.send(WsOut::Close).await;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, writer).await;
        }
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(writer) = &self.writer {
            writer.abort();
        }
    }
}

/// Bridges a WebSocket whose binary messages carry a byte stream to a duplex pipe; the
/// returned end reads what the client sends and writes what goes back.
pub fn tunnel(ws: Ws) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut read, mut write) = tokio::io::split(ours);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        let inbound = async {
            while let Some(Ok(message)) = source.next().await {
                match message {
                    Message::Binary(data) if write.write_all(&data).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = write.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                        if sink.send(message).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = sink.close().await;
        };
        // The client closing ends both ways; our side finishing sends a close frame.
        tokio::select! {
            () = inbound => {}
            () = outbound => {}
        }
    });
    theirs
}
