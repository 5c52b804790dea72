//! `UpdateContainerResources`: applied to the live cgroup by the runtime's `update`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::lifecycle::detached;
use crate::validate;

pub async fn handle(
    server: &CriServer,
    request: api::UpdateContainerResourcesRequest,
) -> Result<api::UpdateContainerResourcesResponse, Status> {
    validate::id("container_id", &request.container_id)?;
    let resources = request.linux.ok_or_else(|| {
        Status::invalid_argument("UpdateContainerResources: linux resources are required")
    })?;
    validate::container_resources("linux", &resources)?;
    let c = server.engine.container(&request.container_id)?;
    let engine = server.engine.clone();
    detached(async move { container::exec::update_resources(&engine, &c, &resources).await })
        .await?;
    Ok(api::UpdateContainerResourcesResponse {})
}
