//! From an upgraded connection to the work: gather the client's streams into a [`Stdio`]
//! (SPDY: wait for the streams the request calls for; WebSocket: channels) and run exec,
//! attach or port-forward on it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

use super::server::{PORTFORWARD_TUNNEL, Upgrade};
use super::spdy::Session;
use super::stdio::{self, Output, Stdio, Transport, channel_version};
use super::tokens::Pending;
use super::websocket::{self, Framing, WsOut, WsSession};
use super::{attach, exec, portforward};
use crate::engine::Engine;

/// How long a SPDY client may take to open its streams (the kubelet's streamCreationTimeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Which streams a request calls for.
#[derive(Clone, Copy)]
pub struct Wants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub async fn run(engine: Arc<Engine>, pending: Pending, upgrade: Upgrade, upgraded: Upgraded) {
    match (pending, upgrade) {
        (Pending::PortForward(request), Upgrade::Spdy(_)) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            portforward::spdy(&engine, &request, Session::start(read, write)).await;
        }
        (Pending::PortForward(request), Upgrade::WebSocket(protocol)) => {
            let ws = websocket::accept(upgraded).await;
            if protocol == PORTFORWARD_TUNNEL {
                let (read, write) = tokio::io::split(websocket::tunnel(ws));
                portforward::spdy(&engine, &request, Session::start(read, write)).await;
            } else {
                portforward::websocket(&engine, &request, ws, Framing::of(&protocol)).await;
            }
        }
        (Pending::Exec(request), upgrade) => {
            let wants = Wants {
                stdin: request.stdin,
                stdout: request.stdout,
                stderr: request.stderr,
                tty: request.tty,
            };
            if let Some((stdio, transport)) = open(upgraded, upgrade, wants).await {
                exec::run(&engine, &request, stdio).await;
                transport.close().await;
            }
        }
        (Pending::Attach(request), upgrade) => {
            let wants = Wants {
                stdin: request.stdin,
                stdout: request.stdout,
                stderr: request.stderr,
                tty: request.tty,
            };
            if let Some((stdio, transport)) = open(upgraded, upgrade, wants).await {
                attach::run(&engine, &request, stdio).await;
                transport.close().await;
            }
        }
    }
}

async fn open(upgraded: Upgraded, upgrade: Upgrade, wants: Wants) -> Option<(Stdio, Transport)> {
    match upgrade {
        Upgrade::Spdy(protocol) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            let session = Session::start(read, write);
            spdy_stdio(session, channel_version(&protocol), wants).await
        }
        Upgrade::WebSocket(protocol) => {
            let version = channel_version(&protocol);
            let ws = websocket::accept(upgraded).await;
            let mut inputs = vec![stdio::RESIZE];
            if wants.stdin {
                inputs.push(stdio::STDIN);
            }
            let (session, mut receivers) = WsSession::start(ws, Framing::of(&protocol), &inputs);
            // As upstream: an empty message on the lowest channel the client reads tells it
            // the session is up.
            let first = match (wants.stdout, wants.stderr) {
                (true, _) => stdio::STDOUT,
                (false, true) => stdio::STDERR,
                (false, false) => stdio::ERROR,
            };
            if session
                .out
                .send(WsOut::Data(first, Bytes::new()))
                .await
                .is_err()
            {
                return None;
            }
            let output = |on: bool, channel: u8| {
                on.then(|| Output::Ws {
                    channel,
                    tx: session.out.clone(),
                })
            };
            let stdio = Stdio {
                stdin: receivers.remove(&stdio::STDIN),
                stdout: output(wants.stdout, stdio::STDOUT),
                stderr: output(wants.stderr, stdio::STDERR),
                resize: receivers.remove(&stdio::RESIZE).filter(|_| wants.tty),
                error: output(true, stdio::ERROR),
                gone: session.gone.clone(),
                version,
            };
            Some((stdio, Transport::Ws(session)))
        }
    }
}

/// Waits for the streams the request calls for, as the kubelet does: error, then one per
/// stdio stream asked for, and resize with a terminal (from v3).
async fn spdy_stdio(mut session: Session, version: u8, wants: Wants) -> Option<(Stdio, Transport)> {
    let expected = 1
        + usize::from(wants.stdin)
        + usize::from(wants.stdout)
        + usize::from(wants.stderr)
        + usize::from(wants.tty && version >= 3);
    let mut stdio = Stdio {
        stdin: None,
        stdout: None,
        stderr: None,
        resize: None,
        error: None,
        gone: session.gone.clone(),
        version,
    };
    let mut seen = 0;
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while seen < expected {
        let stream = tokio::select! {
            stream = session.streams.recv() => stream?,
            () = &mut deadline => {
                tracing::debug!("streaming: the client opened {seen} of {expected} streams in time");
                return None;
            }
        };
        let kind = stream.header("streamtype").unwrap_or("").to_owned();
        match kind.as_str() {
            "error" => stdio.error = Some(Output::Spdy(stream.output)),
            "stdin" => stdio.stdin = Some(stream.input),
            "stdout" => stdio.stdout = Some(Output::Spdy(stream.output)),
            "stderr" => stdio.stderr = Some(Output::Spdy(stream.output)),
            "resize" => stdio.resize = Some(stream.input),
            other => {
                tracing::debug!("streaming: unexpected stream type {other:?}");
                continue;
            }
        }
        seen += 1;
    }
    Some((stdio, Transport::Spdy(session)))
}
