//! A channel-prefixed WebSocket client (KEP-4006): each binary message is one channel byte
//! and the data; in the `base64.` protocols each message is text, the channel an ASCII digit
//! and the data base64 (standard alphabet).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Output, Streams};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The HTTP status of a WebSocket handshake to `url` by `method` offering `protocols`, with
/// `Sec-WebSocket-Version: version`, made by hand (for refusals); and the answer's headers.
pub async fn handshake_status(
    url: &str,
    method: &str,
    protocols: &str,
    version: &str,
) -> Result<(u16, Vec<(String, String)>)> {
    let mut headers = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", version),
    ];
    if !protocols.is_empty() {
        headers.push(("Sec-WebSocket-Protocol", protocols));
    }
    let (status, headers, _) = super::upgrade_request(method, url, &headers).await?;
    Ok((status, headers))
}

/// Connects offering `protocols` (none if empty); returns the socket and the protocol chosen.
pub async fn connect(url: &str, protocols: &str) -> Result<(Ws, String)> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url.into_client_request()?;
    if !protocols.is_empty() {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse()?);
    }
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
    send_in(ws, "", channel, data).await
}

fn is_base64(protocol: &str) -> bool {
    protocol == "base64.channel.k8s.io" || protocol == "v4.base64.channel.k8s.io"
}

/// Sends `data` on `channel` as `protocol` frames it.
pub async fn send_in(ws: &mut Ws, protocol: &str, channel: u8, data: &[u8]) -> Result<()> {
    let message = if is_base64(protocol) {
        Message::Text(format!("{}{}", channel, STANDARD.encode(data)).into())
    } else {
        let mut message = vec![channel];
        message.extend_from_slice(data);
        Message::Binary(message.into())
    };
    ws.send(message).await?;
    Ok(())
}

/// The channel and data of a server message in `protocol`; None for other messages.
pub fn frame(protocol: &str, message: Message) -> Result<Option<(u8, Vec<u8>)>> {
    match message {
        Message::Text(text) if is_base64(protocol) => {
            let Some(digit) = text.chars().next() else {
                return Ok(None);
            };
            let channel = digit.to_digit(10).context("channel digit")? as u8;
            Ok(Some((channel, STANDARD.decode(&text.as_bytes()[1..])?)))
        }
        Message::Binary(_) if is_base64(protocol) => bail!("a binary message in {protocol}"),
        Message::Text(_) => bail!("a text message in {protocol:?}"),
        Message::Binary(data) => Ok(data
            .split_first()
            .map(|(&channel, payload)| (channel, payload.to_vec()))),
        _ => Ok(None),
    }
}

/// An exec or attach session over `v5.channel.k8s.io` (stdin closed with the CLOSE channel)
/// or an earlier protocol, binary or base64.
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
        send_in(
            &mut ws,
            protocol,
            4,
            format!("{{\"Width\":{w},\"Height\":{h}}}").as_bytes(),
        )
        .await?;
    }
    if let (true, Some(input)) = (streams.stdin, input) {
        send_in(&mut ws, protocol, 0, input).await?;
        if protocol.starts_with("v5") {
            send(&mut ws, 255, &[0]).await?;
        }
    }
    let mut output = Output::default();
    tokio::time::timeout(deadline, async {
        while let Some(Ok(message)) = ws.next().await {
            let Some((ch, payload)) = frame(protocol, message)? else {
                continue;
            };
            if output.first.is_none() {
                output.first = Some((ch, payload.clone()));
            }
            match ch {
                1 => output.take_stdout(&payload, keep),
                2 => output.stderr.extend_from_slice(&payload),
                3 => output.error.push_str(&String::from_utf8_lossy(&payload)),
                _ => {}
            }
        }
        anyhow::Ok(())
    })
    .await
    .context("session did not end in time")??;
    Ok(output)
}
