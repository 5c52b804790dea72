//! `StreamPodSandboxMetrics`: UNIMPLEMENTED, like its unary twin `ListPodSandboxMetrics`. crius
//! exports no Prometheus-style pod metrics (nor `ListMetricDescriptors`); kubelet falls back to
//! the unary call, which answers the same, and then goes without CRI metrics.

use tonic::Status;

use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    _request: api::StreamPodSandboxMetricsRequest,
) -> Result<ServerStream<api::StreamPodSandboxMetricsResponse>, Status> {
    rpc::unsupported(
        "StreamPodSandboxMetrics",
        "crius exports no pod sandbox metrics (ListPodSandboxMetrics is unimplemented too)",
    )
}
