//! `StopContainer`: the stop signal, `timeout` seconds, then SIGKILL. Idempotent, also for an
//! unknown id.

use std::time::Duration;

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::StopContainerRequest,
) -> Result<api::StopContainerResponse, Status> {
    // Idempotent: an unknown container is already stopped (critest and cri-o agree).
    let c = match server.engine.container(&request.container_id) {
        Ok(c) => c,
        Err(crate::engine::PodError::NotFound(_)) => return Ok(api::StopContainerResponse {}),
        Err(e) => return Err(e.into()),
    };
    let grace = Duration::from_secs(request.timeout.max(0).unsigned_abs());
    let _op = c.op.lock().await;
    container::stop::stop(&server.engine, &c, grace).await?;
    Ok(api::StopContainerResponse {})
}
