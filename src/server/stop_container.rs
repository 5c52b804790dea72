//! `StopContainer`: the stop signal, `timeout` seconds, then SIGKILL. Idempotent.

use std::time::Duration;

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::StopContainerRequest,
) -> Result<api::StopContainerResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    let grace = Duration::from_secs(request.timeout.max(0).unsigned_abs());
    let _op = c.op.lock().await;
    container::stop::stop(&server.engine, &c, grace).await?;
    Ok(api::StopContainerResponse {})
}
