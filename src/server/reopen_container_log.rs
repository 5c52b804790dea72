//! `ReopenContainerLog`: after the kubelet rotated the log file.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::ReopenContainerLogRequest,
) -> Result<api::ReopenContainerLogResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    container::exec::reopen_log(&server.engine, &c).await?;
    Ok(api::ReopenContainerLogResponse {})
}
