//! `ContainerStatus`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container::status;

pub async fn handle(
    server: &CriServer,
    request: api::ContainerStatusRequest,
) -> Result<api::ContainerStatusResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    if !status::visible(&c.record()) {
        return Err(Status::not_found(format!(
            "container {} not found",
            request.container_id
        )));
    }
    Ok(status::status(&server.engine, &c, request.verbose)?)
}
