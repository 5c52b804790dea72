//! The streaming server (docs/streaming.md): `Exec`, `Attach` and `PortForward` return a URL
//! with a single-use token on this HTTP server; the client (kubelet, crictl) then upgrades its
//! connection to SPDY/3.1 or WebSocket and the session runs here.
//!
//! `server.rs` (HTTP, TLS, negotiation), `session.rs` (protocol → [`stdio::Stdio`]), `spdy/`,
//! `websocket.rs`, then the work: `exec.rs`, `attach.rs` (both through `pump.rs` and the
//! monitor's attach socket) and `portforward.rs` (with `netns.rs`).

mod attach;
mod exec;
mod netns;
mod portforward;
mod pump;
mod server;
mod session;
mod spdy;
mod stdio;
mod tokens;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

/// For the fuzz targets only (src/lib.rs' `fuzzing`).
#[cfg(fuzzing)]
pub use spdy::Session as SpdySession;
pub use tokens::Pending;

use crate::engine::{Engine, PodError};
use tokens::Tokens;

#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    #[error("streaming server: listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("streaming server: TLS: {0}")]
    Tls(String),
    #[error("streaming server: {0}")]
    Config(String),
}

/// The running server, shared by the RPC handlers (which hand out URLs) and its connections.
pub struct Streaming {
    engine: Arc<Engine>,
    tokens: Tokens,
    /// `http://127.0.0.1:10010`, no trailing slash.
    base_url: String,
}

impl Streaming {
    /// Binds the configured address and serves in the background.
    pub async fn start(engine: Arc<Engine>) -> Result<Arc<Streaming>, StreamingError> {
        let config = engine.config.streaming.clone();
        let ip: std::net::IpAddr = config
            .address
            .parse()
            .map_err(|_| StreamingError::Config(format!("bad address {:?}", config.address)))?;
        let addr = SocketAddr::new(ip, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StreamingError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StreamingError::Listen { addr, source })?;
        let tls = server::tls_acceptor(&config)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let streaming = Arc::new(Streaming {
            engine,
            tokens: Tokens::new(config.token_ttl),
            base_url: format!("{scheme}://{bound}"),
        });
        tracing::info!(url = %streaming.base_url, "streaming server listening");
        tokio::spawn(server::serve(listener, tls, streaming.clone()));
        Ok(streaming)
    }

    /// The URL the client is to open for `request`.
    pub fn url(&self, request: Pending) -> Result<String, PodError> {
        let kind = request.kind();
        let token = self
            .tokens
            .insert(request)
            .map_err(|e| PodError::FailedPrecondition(e.to_string()))?;
        Ok(format!("{}/{kind}/{token}", self.base_url))
    }
}
