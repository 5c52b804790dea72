//! `Version`: who we are and which CRI we speak.

use crate::api;

/// The runtime name reported to kubelet and crictl.
pub const RUNTIME_NAME: &str = "crius";

pub fn handle(_request: api::VersionRequest) -> api::VersionResponse {
    api::VersionResponse {
        version: "0.1.0".to_string(),
        runtime_name: RUNTIME_NAME.to_string(),
        runtime_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime_api_version: api::API_VERSION.to_string(),
    }
}
