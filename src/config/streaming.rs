//! `[streaming]`: the HTTP server `Exec`, `Attach` and `PortForward` hand out URLs of
//! (docs/streaming.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[streaming]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct StreamingConfig {
    /// IP address to listen on; it is also the host of the URLs handed out.
    pub address: String,
    /// TCP port; 0 = an ephemeral port chosen at start.
    pub port: u16,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub tls_client_ca: PathBuf,
    /// How long a URL handed out stays usable (it is single-use as well).
    #[serde(with = "super::humantime_duration")]
    pub token_ttl: Duration,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            address: "127.0.0.1".to_owned(),
            port: 0,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_client_ca: PathBuf::new(),
            // The kubelet's streaming server keeps its cached requests for one minute.
            token_ttl: Duration::from_secs(60),
        }
    }
}

impl StreamingConfig {
    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}
