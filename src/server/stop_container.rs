//! `StopContainer`: the stop signal, `timeout` seconds, then SIGKILL. Idempotent, also for an
//! unknown id.

use std::time::Duration;

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::lifecycle::detached;

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
    let engine = server.engine.clone();
    detached(async move { container::stop::stop(&engine, &c, grace).await }).await?;
    Ok(api::StopContainerResponse {})
}
