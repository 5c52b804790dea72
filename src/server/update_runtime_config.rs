//! `UpdateRuntimeConfig`: the kubelet passes the node's pod CIDR. crius takes pod addresses from
//! its CNI configuration, as cri-o does, so the CIDR is only logged.

use tonic::Status;

use super::CriServer;
use crate::api;

pub async fn handle(
    _server: &CriServer,
    request: api::UpdateRuntimeConfigRequest,
) -> Result<api::UpdateRuntimeConfigResponse, Status> {
    let cidr = request
        .runtime_config
        .and_then(|c| c.network_config)
        .map(|n| n.pod_cidr)
        .unwrap_or_default();
    if !cidr.is_empty() {
        tracing::info!(pod_cidr = %cidr, "the kubelet set the pod CIDR; addresses come from the CNI configuration");
    }
    Ok(api::UpdateRuntimeConfigResponse {})
}
