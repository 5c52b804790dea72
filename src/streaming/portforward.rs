//! Port forwarding into a pod's network namespace.
//!
//! SPDY (`portforward.k8s.io`, also tunneled in WebSocket): the client opens a pair of streams
//! per connection, `error` and `data`, with the same `requestID` and a `port` header; any
//! number of pairs, for any ports, at any time. WebSocket (`v4.channel.k8s.io`, its base64 form
//! or none named): one connection per port of the request, channels `2i` (data) and `2i+1`
//! (error), each starting with the port as two little-endian bytes. A port nobody listens on gives a message on its error
//! stream; the session stays up.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::netns;
use super::spdy::{Session, Stream};
use super::stdio::Output;
use super::websocket::{Framing, Ws, WsOut, WsSession};
use crate::api;
use crate::engine::{Engine, PodError};

/// Bytes read from the pod per write to the client.
const CHUNK: usize = 32 * 1024;

fn sandbox_netns(engine: &Engine, sandbox_id: &str) -> Result<Option<PathBuf>, PodError> {
    let sandbox = engine.sandbox(sandbox_id)?;
    Ok(sandbox.record().pinned.net)
}

pub async fn spdy(engine: &Arc<Engine>, request: &api::PortForwardRequest, mut session: Session) {
    let netns = match sandbox_netns(engine, &request.pod_sandbox_id) {
        Ok(netns) => netns,
        Err(e) => {
            tracing::info!("port forward: {e}");
            session.shutdown().await;
            return;
        }
    };
    let mut pairs: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(stream) = session.streams.recv().await {
        let kind = stream.header("streamtype").unwrap_or("").to_owned();
        // Old clients name no request: the data stream follows its error stream.
        let request_id = match stream.header("requestid") {
            Some(id) => id.to_owned(),
            None if kind == "data" => stream.id.saturating_sub(2).to_string(),
            None => stream.id.to_string(),
        };
        let pair = pairs.entry(request_id.clone()).or_default();
        match kind.as_str() {
            "error" => pair.0 = Some(stream),
            "data" => pair.1 = Some(stream),
            other => {
                tracing::debug!("port forward: unexpected stream type {other:?}");
                stream.output.reset().await;
                continue;
            }
        }
        let complete = matches!(pairs.get(&request_id), Some((Some(_), Some(_))));
        if complete && let Some((Some(error), Some(data))) = pairs.remove(&request_id) {
            let (netns, sandbox) = (netns.clone(), request.pod_sandbox_id.clone());
            tokio::spawn(forward_spdy(netns, sandbox, error, data));
        }
    }
}

async fn forward_spdy(netns: Option<PathBuf>, sandbox: String, error: Stream, data: Stream) {
    let port = data.header("port").and_then(|p| p.parse::<u16>().ok());
    let Some(port) = port.filter(|p| *p > 0) else {
        let message = format!("invalid port {:?}", data.header("port").unwrap_or(""));
        error.output.write(Bytes::from(message)).await;
        error.output.close().await;
        data.output.close().await;
        return;
    };
    let Stream {
        input,
        reset,
        output,
        ..
    } = data;
    match netns::connect(netns, port).await {
        Ok(tcp) => {
            tokio::select! {
                () = pipe(tcp, input, Output::Spdy(output.clone())) => {}
                () = reset.cancelled() => {}
            }
        }
        Err(e) => {
            let message = format!("error forwarding port {port} to pod {sandbox}: {e}");
            tracing::debug!("{message}");
            error.output.write(Bytes::from(message)).await;
        }
    }
    output.close().await;
    error.output.close().await;
}

/// Both ways until both are done: client end of input shuts the socket's write side, the
/// pod's end of output ends the client's stream.
async fn pipe(tcp: TcpStream, mut input: mpsc::Receiver<Bytes>, output: Output) {
    let (mut read, mut write) = tcp.into_split();
    let up = async move {
        while let Some(data) = input.recv().await {
            if write.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !output.write(Bytes::copy_from_slice(&buf[..n])).await {
                        break;
                    }
                }
            }
        }
        output.close().await;
    };
    tokio::join!(up, down);
}

/// The ports of a WebSocket session: those of the CRI request, as the upstream server has it
/// (the `port` query parameters are the kubelet's to read; it puts them in the request).
fn ports(request: &api::PortForwardRequest) -> Result<Vec<u16>, String> {
    let ports = request
        .port
        .iter()
        .map(|p| {
            u16::try_from(*p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port {p}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.is_empty() {
        return Err("no port given".into());
    }
    Ok(ports)
}

pub async fn websocket(
    engine: &Arc<Engine>,
    request: &api::PortForwardRequest,
    ws: Ws,
    framing: Framing,
) {
    let (ports, netns) = match ports(request).and_then(|ports| {
        Ok((
            ports,
            sandbox_netns(engine, &request.pod_sandbox_id).map_err(|e| e.to_string())?,
        ))
    }) {
        Ok(found) => found,
        Err(e) => {
            tracing::info!("port forward: {e}");
            let (session, _) = WsSession::start(ws, framing, &[]);
            session.close().await;
            return;
        }
    };
    let data_channels: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let (session, mut inputs) = WsSession::start(ws, framing, &data_channels);
    let mut tasks = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let input = inputs.remove(&data_ch);
        let tx = session.out.clone();
        let (netns, sandbox) = (netns.clone(), request.pod_sandbox_id.clone());
        tasks.push(tokio::spawn(async move {
            let prefix = Bytes::copy_from_slice(&port.to_le_bytes());
            for ch in [data_ch, error_ch] {
                let _ = tx.send(WsOut::Data(ch, prefix.clone())).await;
            }
            let Some(input) = input else { return };
            match netns::connect(netns, port).await {
                Ok(tcp) => {
                    let output = Output::Ws {
                        channel: data_ch,
                        tx: tx.clone(),
                    };
                    pipe(tcp, input, output).await;
                }
                Err(e) => {
                    let message = format!("error forwarding port {port} to pod {sandbox}: {e}");
                    let _ = tx.send(WsOut::Data(error_ch, Bytes::from(message))).await;
                }
            }
        }));
    }
    let all = futures::future::join_all(tasks);
    tokio::select! {
        _ = all => {}
        () = session.gone.cancelled() => {}
    }
    session.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_ports_are_the_requests() {
        let request = |port: Vec<i32>| api::PortForwardRequest {
            port,
            ..Default::default()
        };
        assert_eq!(ports(&request(vec![80, 443])).unwrap(), vec![80, 443]);
        assert!(ports(&request(vec![0])).is_err());
        assert!(ports(&request(vec![65536])).is_err());
        assert!(ports(&request(vec![])).is_err());
    }
}
