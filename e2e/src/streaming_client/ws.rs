//! A channel-prefixed WebSocket client (KEP-4006): each binary message is one channel byte
//! and the data.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Output, Streams};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects offering `protocols`; returns the socket and the protocol chosen.
pub async fn connect(url: &str, protocols: &str) -> Result<(Ws, String)> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols.parse()?);
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .context("websocket upgrade")?;
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((ws, chosen))
}

pub async fn send(ws: &mut Ws, channel: u8, data: &[u8]) -> Result<()> {
    let mut message = vec![channel];
    message.extend_from_slice(data);
    ws.send(Message::Binary(message.into())).await?;
    Ok(())
}

/// An exec or attach session over `v5.channel.k8s.io` (stdin closed with the CLOSE channel)
/// or `v4.channel.k8s.io`.
pub async fn run_session(
    url: &str,
    protocol: &str,
    streams: Streams,
    input: Option<&[u8]>,
    size: Option<(u16, u16)>,
    keep: usize,
    deadline: Duration,
) -> Result<Output> {
    let (mut ws, chosen) = connect(url, protocol).await?;
    if chosen != protocol {
        bail!("server chose {chosen:?}");
    }
    if let Some((w, h)) = size {
        send(
            &mut ws,
            4,
            format!("{{\"Width\":{w},\"Height\":{h}}}").as_bytes(),
        )
        .await?;
    }
    if let (true, Some(input)) = (streams.stdin, input) {
        send(&mut ws, 0, input).await?;
        if protocol.starts_with("v5") {
            send(&mut ws, 255, &[0]).await?;
        }
    }
    let mut output = Output::default();
    tokio::time::timeout(deadline, async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Binary(data) = message else {
                continue;
            };
            let Some((&ch, payload)) = data.split_first() else {
                continue;
            };
            match ch {
                1 => output.take_stdout(payload, keep),
                2 => output.stderr.extend_from_slice(payload),
                3 => output.error.push_str(&String::from_utf8_lossy(payload)),
                _ => {}
            }
        }
    })
    .await
    .context("session did not end in time")?;
    Ok(output)
}
