//! Test clients of the streaming server, written from the protocol descriptions (not from
//! crius' code): SPDY/3.1 ([`spdy`]) and channel-prefixed WebSocket ([`ws`]), plus exec and
//! port-forward sessions over each.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod spdy;
pub mod urls;
pub mod ws;

/// Which streams a session asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What came back from an exec or attach session.
#[derive(Debug, Default)]
pub struct Output {
    /// The first `keep` bytes of stdout.
    pub stdout: Vec<u8>,
    pub stdout_len: u64,
    /// Whether a byte other than zero came on stdout.
    pub stdout_nonzero: bool,
    pub stderr: Vec<u8>,
    /// The error stream (the JSON status from v4 on).
    pub error: String,
    /// WebSocket: the channel and data of the server's first message.
    pub first: Option<(u8, Vec<u8>)>,
}

impl Output {
    pub fn take_stdout(&mut self, data: &[u8], keep: usize) {
        self.stdout_len += data.len() as u64;
        self.stdout_nonzero |= data.iter().any(|b| *b != 0);
        let room = keep.saturating_sub(self.stdout.len());
        self.stdout.extend_from_slice(&data[..room.min(data.len())]);
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The exit code the status says, 0 for Success.
    pub fn exit_code(&self) -> Option<i32> {
        let status: serde_json::Value = serde_json::from_str(&self.error).ok()?;
        match status["status"].as_str()? {
            "Success" => Some(0),
            _ => status["details"]["causes"][0]["message"]
                .as_str()?
                .parse()
                .ok(),
        }
    }
}

/// `(host:port, path with query)` of an `http://` URL.
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let slash = rest.find('/').unwrap_or(rest.len());
    Ok((rest[..slash].to_string(), rest[slash..].to_string()))
}

/// Sends an HTTP/1.1 upgrade request by hand (`method`, `headers` as given, no body); returns
/// the status and headers of the answer, and the stream after its head.
pub async fn upgrade_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Vec<(String, String)>, TcpStream)> {
    let (host, path) = split_url(url)?;
    let mut tcp = TcpStream::connect(&host).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await?;
    // Read the response head byte by byte: what follows it is the new protocol.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await.context("reading the response head")?;
        head.push(b);
        if head.len() > 64 * 1024 {
            bail!("response head too long");
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, tcp))
}
