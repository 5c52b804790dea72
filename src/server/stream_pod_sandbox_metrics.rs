//! `StreamPodSandboxMetrics`: `ListPodSandboxMetrics`' metrics in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    _request: api::StreamPodSandboxMetricsRequest,
) -> Result<ServerStream<api::StreamPodSandboxMetricsResponse>, Status> {
    let list = api::ListPodSandboxMetricsRequest {};
    let pod_metrics = super::list_pod_sandbox_metrics::handle(server, list)
        .await?
        .pod_metrics;
    Ok(rpc::stream_of(pod_metrics, |pod_sandbox_metrics| {
        api::StreamPodSandboxMetricsResponse {
            pod_sandbox_metrics,
        }
    }))
}
