//! `RemoveContainer`: idempotent; kills a running container first; keeps its log. Its
//! directories and record are deleted after the answer (`container::remove::Files`).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::engine::PodError;
use crate::lifecycle::detached;

pub async fn handle(
    server: &CriServer,
    request: api::RemoveContainerRequest,
) -> Result<api::RemoveContainerResponse, Status> {
    let c = match server.engine.container(&request.container_id) {
        Ok(c) => c,
        Err(PodError::NotFound(_)) => return Ok(api::RemoveContainerResponse {}),
        Err(e) => return Err(e.into()),
    };
    let engine = server.engine.clone();
    detached(async move {
        container::remove::remove(&engine, &c, container::remove::Files::AfterReply).await
    })
    .await?;
    Ok(api::RemoveContainerResponse {})
}
