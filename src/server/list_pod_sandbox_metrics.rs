//! `ListPodSandboxMetrics`: every pod's and container's cAdvisor metrics, from the collection
//! shared by all callers within one interval (`metrics/cri.rs`).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::metrics::cri;

pub async fn handle(
    server: &CriServer,
    _request: api::ListPodSandboxMetricsRequest,
) -> Result<api::ListPodSandboxMetricsResponse, Status> {
    let pod_metrics = cri::pod_metrics(&server.engine).await?;
    Ok(api::ListPodSandboxMetricsResponse {
        pod_metrics: pod_metrics.as_ref().clone(),
    })
}
