//! `UpdateContainerResources`: applied to the live cgroup by the runtime's `update`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::UpdateContainerResourcesRequest,
) -> Result<api::UpdateContainerResourcesResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    let resources = request.linux.ok_or_else(|| {
        Status::invalid_argument("UpdateContainerResources: linux resources are required")
    })?;
    let _op = c.op.lock().await;
    container::exec::update_resources(&server.engine, &c, &resources).await?;
    Ok(api::UpdateContainerResourcesResponse {})
}
