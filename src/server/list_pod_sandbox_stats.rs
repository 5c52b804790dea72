//! `ListPodSandboxStats` with the id and label filters.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox::{stats, status};

pub async fn handle(
    server: &CriServer,
    request: api::ListPodSandboxStatsRequest,
) -> Result<api::ListPodSandboxStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut out = Vec::new();
    for sandbox in server.engine.sandboxes() {
        if status::visible(&sandbox.record()) && stats::matches(&sandbox, &filter) {
            out.push(stats::stats(&server.engine, &sandbox).await?);
        }
    }
    Ok(api::ListPodSandboxStatsResponse { stats: out })
}
