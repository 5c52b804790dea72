//! WebSocket sessions (KEP-4006): every binary message starts with a channel byte; in the
//! `base64.` protocols every message is text, the channel an ASCII digit and the data base64,
//! as the upstream streaming server frames them. Also the tunnel that carries a SPDY
//! connection inside binary messages (`SPDY/3.1+portforward.k8s.io`, what
//! `crictl port-forward --transport websocket` speaks).
//!
//! As upstream, a client message for a channel nobody reads is dropped, and so is one whose
//! base64 does not decode; the session goes on. The end is a close frame, after which the
//! connection stays open until the client answers it (or goes), so that nothing the client
//! has yet to read is lost to a reset.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
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
/// How long a finished session waits for the client to read what is queued and answer the
/// close frame (upstream's finishTimeout): only a client that neither reads nor closes for
/// that long is cut off.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest message accepted from a client (stdin chunks, port-forward data).
const MAX_MESSAGE: usize = 8 << 20;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Go's `base64.StdEncoding` as upstream decodes with it: padding required, bits after the
/// last byte ignored (and line breaks, which [`Framing::decode`] drops first).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

pub enum WsOut {
    Data(u8, Bytes),
    Close,
}

/// How a negotiated protocol frames its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Text messages: `'0' + channel`, then the data in standard base64.
    base64: bool,
    /// v5: a message on channel 255 closes the input channel its payload names.
    closable: bool,
}

impl Framing {
    /// The framing of `protocol` ("" = a client that named none: binary, as upstream).
    pub fn of(protocol: &str) -> Framing {
        Framing {
            base64: protocol.starts_with("base64.") || protocol.contains(".base64."),
            closable: super::stdio::channel_version(protocol) >= 5,
        }
    }

    /// The message carrying `data` on `channel`.
    fn encode(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0'.wrapping_add(channel)));
            STANDARD.encode_string(data, &mut text);
            Message::Text(text.into())
        } else {
            let mut message = Vec::with_capacity(data.len() + 1);
            message.push(channel);
            message.extend_from_slice(data);
            Message::Binary(message.into())
        }
    }

    /// The channel and data of a client message; `Err` for base64 that does not decode.
    fn decode(self, message: Message) -> Result<Option<(u8, Bytes)>, base64::DecodeError> {
        let data: Bytes = match message {
            Message::Binary(data) => data,
            Message::Text(text) => text.into(),
            _ => return Ok(None),
        };
        let Some(&first) = data.first() else {
            return Ok(None);
        };
        if !self.base64 {
            return Ok(Some((first, data.slice(1..))));
        }
        let text = &data[1..];
        let payload = if text.contains(&b'\n') || text.contains(&b'\r') {
            let text: Vec<u8> = text
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\n' | b'\r'))
                .collect();
            GO_STD.decode(text)?
        } else {
            GO_STD.decode(text)?
        };
        Ok(Some((first.wrapping_sub(b'0'), Bytes::from(payload))))
    }
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
    writer: JoinHandle<()>,
}

impl WsSession {
    /// Starts the session in `framing`; each of `inputs` gets a receiver of what the client
    /// sends on it.
    pub fn start<S>(
        ws: WebSocketStream<S>,
        framing: Framing,
        inputs: &[u8],
    ) -> (WsSession, HashMap<u8, mpsc::Receiver<Bytes>>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
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
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                    let (ch, payload) = match framing.decode(message) {
                        Ok(Some(frame)) => frame,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(
                                "streaming: dropping a base64 message that does not decode: {e}"
                            );
                            continue;
                        }
                    };
                    if ch == CLOSE && framing.closable {
                        if let Some(which) = payload.first() {
                            senders.remove(which);
                        }
                        continue;
                    }
                    if payload.is_empty() {
                        continue;
                    }
                    if let Some(tx) = senders.get(&ch)
                        && tx.send(payload).await.is_err()
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
                        WsOut::Data(ch, data) => sink.send(framing.encode(ch, &data)).await,
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
            writer,
        };
        (session, receivers)
    }

    /// Sends what is queued and a close frame, then waits for the client's answer (or its
    /// going), at most [`FINISH_TIMEOUT`] in all.
    /// (Dropping the session then ends both tasks and the connection.)
    pub async fn close(mut self) {
        let finish = async {
            let _ = self.out.send(WsOut::Close).await;
            let _ = (&mut self.writer).await;
            self.gone.cancelled().await;
        };
        let _ = tokio::time::timeout(FINISH_TIMEOUT, finish).await;
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_protocols_prefix_a_channel_byte() {
        for protocol in [
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "channel.k8s.io",
            "",
        ] {
            let framing = Framing::of(protocol);
            let message = framing.encode(2, b"err");
            assert_eq!(message, Message::Binary(Bytes::from_static(b"\x02err")));
            let (ch, data) = framing.decode(message).unwrap().unwrap();
            assert_eq!((ch, &data[..]), (2, &b"err"[..]));
        }
        assert!(Framing::of("v5.channel.k8s.io").closable);
        assert!(!Framing::of("v4.channel.k8s.io").closable);
    }

    #[test]
    fn base64_protocols_send_a_digit_and_base64_text() {
        for protocol in ["base64.channel.k8s.io", "v4.base64.channel.k8s.io"] {
            let framing = Framing::of(protocol);
            assert!(!framing.closable);
            let message = framing.encode(1, b"hello\n");
            assert_eq!(message, Message::Text("1aGVsbG8K".into()));
            assert_eq!(
                framing.decode(Message::Text("0aGk=".into())).unwrap(),
                Some((0, Bytes::from_static(b"hi")))
            );
            // Binary messages are read the same way, as upstream reads either.
            assert_eq!(
                framing
                    .decode(Message::Binary(Bytes::from_static(b"4e30=")))
                    .unwrap(),
                Some((4, Bytes::from_static(b"{}")))
            );
            assert!(framing.decode(Message::Text("0!!".into())).is_err());
            // Go's decoder, as upstream: line breaks skipped, stray low bits ignored,
            // padding required.
            assert_eq!(
                framing.decode(Message::Text("0aG\r\nk=".into())).unwrap(),
                Some((0, Bytes::from_static(b"hi")))
            );
            assert_eq!(
                framing.decode(Message::Text("0Zh==".into())).unwrap(),
                Some((0, Bytes::from_static(b"f")))
            );
            assert!(framing.decode(Message::Text("0Zg".into())).is_err());
            // An empty message on a channel: the digit alone.
            assert_eq!(framing.encode(1, b""), Message::Text("1".into()));
            assert_eq!(
                framing.decode(Message::Text("3".into())).unwrap(),
                Some((3, Bytes::new()))
            );
            assert_eq!(framing.decode(Message::Text("".into())).unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_session_drops_what_it_cannot_read_and_waits_for_the_close_answer() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        let framing = Framing::of("base64.channel.k8s.io");
        let (session, mut inputs) = WsSession::start(server, framing, &[0]);
        // Bad base64, a channel that does not exist, one nobody reads, an empty message:
        // dropped, as upstream drops them, and the session goes on.
        for text in ["0!!!!", "7aGk=", "1aGk=", "0", "0aGkK"] {
            client.send(Message::Text(text.into())).await.unwrap();
        }
        let mut stdin = inputs.remove(&0).unwrap();
        assert_eq!(stdin.recv().await, Some(Bytes::from_static(b"hi\n")));
        session
            .out
            .send(WsOut::Data(1, Bytes::from_static(b"ok")))
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Text("1b2s=".into())
        );
        // The end: a close frame, and the session is over once the client has answered it.
        let closing = tokio::spawn(session.close());
        assert!(matches!(
            client.next().await,
            Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::Normal
        ));
        // (On this single-threaded runtime every task that can run has run after a few
        // yields: the session still waits.)
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        assert!(!closing.is_finished(), "ended before the client answered");
        // Reading on sends tungstenite's answer; the server then ends the connection.
        assert!(client.next().await.is_none());
        closing.await.unwrap();
        assert_eq!(stdin.recv().await, None);
    }
}
