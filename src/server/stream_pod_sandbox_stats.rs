//! `StreamPodSandboxStats`: `ListPodSandboxStats`' stats in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StreamPodSandboxStatsRequest,
) -> Result<ServerStream<api::StreamPodSandboxStatsResponse>, Status> {
    let list = api::ListPodSandboxStatsRequest {
        filter: request.filter,
    };
    let stats = super::list_pod_sandbox_stats::handle(server, list)
        .await?
        .stats;
    Ok(rpc::stream_of(stats, |pod_sandbox_stats| {
        api::StreamPodSandboxStatsResponse { pod_sandbox_stats }
    }))
}
