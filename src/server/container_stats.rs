//! `ContainerStats`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container::{stats, status};

pub async fn handle(
    server: &CriServer,
    request: api::ContainerStatsRequest,
) -> Result<api::ContainerStatsResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    if !status::visible(&c.record()) {
        return Err(Status::not_found(format!(
            "container {} not found",
            request.container_id
        )));
    }
    Ok(api::ContainerStatsResponse {
        stats: Some(stats::stats(&server.engine, &c).await?),
    })
}
