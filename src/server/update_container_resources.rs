//! `UpdateContainerResources`: applied to the live cgroup by the runtime's `update`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::lifecycle::detached;

pub async fn handle(
    server: &CriServer,
    request: api::UpdateContainerResourcesRequest,
) -> Result<api::UpdateContainerResourcesResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    let resources = request.linux.ok_or_else(|| {
        Status::invalid_argument("UpdateContainerResources: linux resources are required")
    })?;
    let engine = server.engine.clone();
    detached(async move { container::exec::update_resources(&engine, &c, &resources).await })
        .await?;
    Ok(api::UpdateContainerResourcesResponse {})
}
