//! Test clients of the streaming server, written from the protocol descriptions (not from
//! crius' code): SPDY/3.1 ([`spdy`]) and channel-prefixed WebSocket ([`ws`]), plus exec and
//! port-forward sessions over each.

pub mod spdy;
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
