//! `[metrics]`: crius' Prometheus endpoint (docs/metrics.md). Off by default, as in cri-o.

use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct MetricsConfig {
    /// Whether to serve `GET /metrics`.
    pub enable: bool,
    /// IP address to listen on.
    pub address: String,
    /// TCP port.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enable: false,
            address: "127.0.0.1".to_owned(),
            port: 9090,
        }
    }
}
