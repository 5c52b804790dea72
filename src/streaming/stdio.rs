//! What exec and attach see of a client session, whichever protocol carries it: stdin and
//! resize events in, stdout, stderr and the error (status) stream out.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spdy::{Session, StreamWriter};
use super::websocket::{WsOut, WsSession};

/// The channel numbers of `channel.k8s.io` (WebSocket prefixes; SPDY uses stream types).
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: "close this channel" (the payload names it).
pub const CLOSE: u8 = 255;

/// An output stream of the session.
#[derive(Clone)]
pub enum Output {
    Spdy(StreamWriter),
    Ws {
        channel: u8,
        tx: mpsc::Sender<WsOut>,
    },
}

impl Output {
    /// Sends bytes; false once the client is gone. Waits while the client does not read.
    pub async fn write(&self, data: Bytes) -> bool {
        match self {
            Output::Spdy(w) => w.write(data).await,
            Output::Ws { channel, tx } => tx.send(WsOut::Data(*channel, data)).await.is_ok(),
        }
    }

    /// End of this stream (SPDY FIN; WebSocket channels end with the connection).
    pub async fn close(&self) {
        if let Output::Spdy(w) = self {
            w.close().await;
        }
    }
}

/// The connection under the session, to close once the work is done.
pub enum Transport {
    Spdy(Session),
    Ws(WsSession),
}

impl Transport {
    /// Sends what is queued and closes the connection.
    pub async fn close(self) {
        match self {
            Transport::Spdy(session) => session.shutdown().await,
            Transport::Ws(session) => session.close().await,
        }
    }
}

/// One exec or attach session.
pub struct Stdio {
    /// `None` at end of input; absent when the request has no stdin.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    /// Terminal sizes as JSON objects (`{"Width":80,"Height":24}`), one after another.
    pub resize: Option<mpsc::Receiver<Bytes>>,
    pub error: Option<Output>,
    /// Cancelled when the client went away.
    pub gone: CancellationToken,
    /// The `channel.k8s.io` version, 1 to 5: from 4 on the error stream carries a JSON Status.
    pub version: u8,
}

/// The `channel.k8s.io` version of a negotiated protocol name.
pub fn channel_version(protocol: &str) -> u8 {
    match protocol {
        "v5.channel.k8s.io" => 5,
        "v4.channel.k8s.io" | "v4.base64.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    }
}
