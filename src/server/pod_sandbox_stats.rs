//! `PodSandboxStats`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox::{stats, status};

pub async fn handle(
    server: &CriServer,
    request: api::PodSandboxStatsRequest,
) -> Result<api::PodSandboxStatsResponse, Status> {
    let sandbox = server.engine.sandbox(&request.pod_sandbox_id)?;
    if !status::visible(&sandbox.record()) {
        return Err(Status::not_found(format!(
            "pod sandbox {} not found",
            request.pod_sandbox_id
        )));
    }
    Ok(api::PodSandboxStatsResponse {
        stats: Some(stats::stats(&server.engine, &sandbox).await?),
    })
}
