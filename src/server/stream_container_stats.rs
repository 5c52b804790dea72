//! `StreamContainerStats`: `ListContainerStats`' stats in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StreamContainerStatsRequest,
) -> Result<ServerStream<api::StreamContainerStatsResponse>, Status> {
    let list = api::ListContainerStatsRequest {
        filter: request.filter,
    };
    let stats = super::list_container_stats::handle(server, list)
        .await?
        .stats;
    Ok(rpc::stream_of(stats, |container_stats| {
        api::StreamContainerStatsResponse { container_stats }
    }))
}
